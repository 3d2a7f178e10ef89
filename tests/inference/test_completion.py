"""A sequence's text, released only once settled: partial characters and possible stop
sequences are held back, and the text ends before the first stop."""

from __future__ import annotations

from inference import Loaded
from inference.completion import PARTIAL, Completion, first_stop, unsettled


def test_first_stop_is_the_earliest() -> None:
    assert first_stop("abcdef", ["de", "bc", "zz"]) == 1
    assert first_stop("abc", ["zz"]) is None
    assert first_stop("abc", []) is None


def test_unsettled_tails_are_held_back() -> None:
    assert unsettled("hello wor", ["world"]) == 3
    assert unsettled("hello", ["world"]) == 0
    assert unsettled("x" + PARTIAL * 2, []) == 2
    assert unsettled("w" + PARTIAL, ["w" + PARTIAL + "x"]) == 2
    assert unsettled("ab", ["b"]) == 0  # a whole stop would have been found, not held


def feed(reference: Loaded, text: str, stops: list[str]) -> tuple[list[str], str, bool]:
    """`text`'s tokens fed one by one: the pieces released, the final text, whether it stopped."""
    pieces: list[str] = []
    completion = Completion(reference.tokenizer, stops, pieces.append)
    stopped = False
    for token in reference.tokenizer(text)["input_ids"]:
        if completion.add(int(token)):
            stopped = True
            break
    return pieces, completion.finish(), stopped


def test_pieces_never_hold_half_a_character(reference: Loaded) -> None:
    text = "café 東京 naïve"
    assert len(reference.tokenizer("東")["input_ids"]) > 1  # bytes of one character, apart
    pieces, final, stopped = feed(reference, text, [])
    assert (final, stopped) == (text, False)
    assert "".join(pieces) == text
    assert all(PARTIAL not in piece for piece in pieces)


def test_the_text_ends_before_the_first_stop(reference: Loaded) -> None:
    pieces, final, stopped = feed(reference, "one two three. four", ["three", "four"])
    assert (final, stopped) == ("one two ", True)
    assert "".join(pieces) == "one two "
    assert all("thr" not in piece for piece in pieces)


def test_without_a_listener_or_stops_it_decodes_once_at_the_end(reference: Loaded) -> None:
    completion = Completion(reference.tokenizer)
    for token in reference.tokenizer("quiet")["input_ids"]:
        assert completion.add(int(token)) is False
    assert completion.released == 0
    assert completion.finish() == "quiet"
