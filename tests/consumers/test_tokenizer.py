"""The byte-level BPE tokenizer: deterministic, loadable by transformers, decodes exactly."""

from __future__ import annotations

from pathlib import Path

import pytest
from transformers import AutoTokenizer, PreTrainedTokenizerFast

from consumers.tokenizer import (
    END_OF_TEXT,
    CorpusError,
    load_tokenizer,
    read_corpus,
    train_tokenizer,
)
from events.specs import TokenizerParams

PARAMS = TokenizerParams(vocab_size=300, min_frequency=2)
TEXT = "Héllo wörld, the quick 東京 fox!\n  tabs\tand  spaces "


def test_training_is_deterministic(corpus: Path, tmp_path: Path) -> None:
    train_tokenizer(corpus, PARAMS, tmp_path / "one")
    train_tokenizer(corpus, PARAMS, tmp_path / "two")

    for name in ("tokenizer.json", "tokenizer_config.json"):
        assert (tmp_path / "one" / name).read_bytes() == (tmp_path / "two" / name).read_bytes()


def test_trained_tokenizer_round_trips_any_text(corpus: Path, tmp_path: Path) -> None:
    tokenizer = train_tokenizer(corpus, PARAMS, tmp_path / "out")

    ids = tokenizer.encode(TEXT)

    assert tokenizer.decode(ids) == TEXT
    assert len(tokenizer) == PARAMS.vocab_size
    assert tokenizer.eos_token == tokenizer.bos_token == tokenizer.pad_token == END_OF_TEXT
    assert tokenizer.eos_token_id == tokenizer.convert_tokens_to_ids(END_OF_TEXT)


def test_saved_tokenizer_loads_with_auto_tokenizer_and_load_tokenizer(
    corpus: Path, tmp_path: Path
) -> None:
    trained = train_tokenizer(corpus, PARAMS, tmp_path / "out")

    auto = AutoTokenizer.from_pretrained(tmp_path / "out")
    loaded = load_tokenizer(tmp_path / "out")

    assert isinstance(auto, PreTrainedTokenizerFast)
    for tokenizer in (auto, loaded):
        assert tokenizer.encode(TEXT) == trained.encode(TEXT)
        assert tokenizer.decode(trained.encode(TEXT)) == TEXT
        assert tokenizer.eos_token_id == trained.eos_token_id


def test_empty_corpus_is_refused(tmp_path: Path) -> None:
    empty = tmp_path / "empty.txt"
    empty.write_bytes(b"")

    with pytest.raises(CorpusError, match="empty"):
        train_tokenizer(empty, PARAMS, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_corpus_that_is_not_utf8_is_refused(tmp_path: Path) -> None:
    latin1 = tmp_path / "latin1.txt"
    latin1.write_bytes("caf\xe9\n".encode("latin-1"))

    with pytest.raises(CorpusError, match="not UTF-8"):
        train_tokenizer(latin1, PARAMS, tmp_path / "out")
    with pytest.raises(CorpusError, match="not UTF-8"):
        list(read_corpus(latin1))


def test_read_corpus_yields_batches_of_lines_with_their_newlines(tmp_path: Path) -> None:
    path = tmp_path / "lines.txt"
    path.write_bytes(b"one\ntwo\r\nthree\nfour")

    assert list(read_corpus(path, batch_lines=2)) == [["one\n", "two\r\n"], ["three\n", "four"]]
    assert list(read_corpus(path, batch_lines=3)) == [["one\n", "two\r\n", "three\n"], ["four"]]
