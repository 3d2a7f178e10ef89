"""The text of one generated sequence: cut at the first stop sequence, released as it settles.

Byte-level BPE decodes a prefix of the ids to a prefix of the text, except for a character
whose bytes are not all there yet (a trailing U+FFFD). Text is released (streamed) only once
it can no longer change: trailing U+FFFD and any tail that could still grow into a stop
sequence are held back until the next token or the end. Decoding happens per token only when
someone listens or a stop sequence is asked for; otherwise once, at the end.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from transformers import PreTrainedTokenizerBase

PARTIAL = "\ufffd"
"""What the decoder gives for a character whose bytes have not all been generated yet."""


def decode(tokenizer: PreTrainedTokenizerBase, ids: Sequence[int]) -> str:
    """`ids` as text, special tokens left out."""
    text = tokenizer.decode(list(ids), skip_special_tokens=True)
    assert isinstance(text, str)  # one sequence of ids decodes to one string
    return text


def first_stop(text: str, stops: Sequence[str]) -> int | None:
    """Where the earliest stop sequence starts in `text` (None: nowhere)."""
    found = [at for at in (text.find(stop) for stop in stops) if at >= 0]
    return min(found) if found else None


def unsettled(text: str, stops: Sequence[str]) -> int:
    """How many trailing characters of `text` may still change or turn into a stop."""
    partial = len(text) - len(text.rstrip(PARTIAL))
    longest = max((len(stop) for stop in stops), default=1)
    for length in range(min(longest - 1, len(text)), 0, -1):
        tail = text[-length:]
        if any(stop.startswith(tail) for stop in stops):
            return max(length, partial)
    return partial


class Completion:
    """One sequence's generated text, fed a token at a time."""

    def __init__(
        self,
        tokenizer: PreTrainedTokenizerBase,
        stops: Sequence[str] = (),
        on_text: Callable[[str], None] | None = None,
    ) -> None:
        self.tokenizer = tokenizer
        self.stops = list(stops)
        self.on_text = on_text
        self.ids: list[int] = []
        self.released = 0
        self.stopped: str | None = None
        """The text cut before its first stop sequence, once one appeared."""

    def add(self, token: int) -> bool:
        """Take one new token; True when the text now holds a stop sequence (it is over)."""
        self.ids.append(token)
        if not self.stops and self.on_text is None:
            return False
        text = decode(self.tokenizer, self.ids)
        at = first_stop(text, self.stops)
        if at is not None:
            self.stopped = text[:at]
            return True
        self._release(text, len(text) - unsettled(text, self.stops))
        return False

    def finish(self) -> str:
        """The final text; the part not yet released goes to the listener now."""
        text = self.stopped if self.stopped is not None else decode(self.tokenizer, self.ids)
        self._release(text, len(text))
        return text

    def _release(self, text: str, end: int) -> None:
        if self.on_text is not None and end > self.released:
            self.on_text(text[self.released : end])
        self.released = max(self.released, end)
