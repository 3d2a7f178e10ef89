"""The byte-level BPE tokenizer: trained with `tokenizers`, served as a `transformers` fast tokenizer.

Byte-level means every string encodes (no unknown characters) and the ByteLevel decoder turns
ids back into the exact text, which is what makes generated text readable.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import PreTrainedTokenizerFast

from events import TokenizerParams

END_OF_TEXT = "<|endoftext|>"
"""The one special token: beginning, end, padding and unknown, as in GPT-2."""

TOKENIZER_FILE = "tokenizer.json"


class CorpusError(ValueError):
    """The corpus cannot be used: empty, not UTF-8 text, or too short for what was asked."""


def read_corpus(corpus: Path, *, batch_lines: int = 4096) -> Iterator[list[str]]:
    """Yield the corpus as batches of lines (newlines kept), so no caller holds all of it as text."""
    batch: list[str] = []
    try:
        with corpus.open(encoding="utf-8", newline="") as handle:
            for line in handle:
                batch.append(line)
                if len(batch) == batch_lines:
                    yield batch
                    batch = []
    except UnicodeDecodeError as error:
        raise CorpusError(f"corpus is not UTF-8 text: {error}") from error
    if batch:
        yield batch


def train_tokenizer(
    corpus: Path, params: TokenizerParams, out_dir: Path
) -> PreTrainedTokenizerFast:
    """Train a byte-level BPE on `corpus`, save it to `out_dir`; the same input gives the same files."""
    if corpus.stat().st_size == 0:
        raise CorpusError("corpus is empty")
    backend = Tokenizer(models.BPE())
    backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    backend.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=params.vocab_size,
        min_frequency=params.min_frequency,
        special_tokens=[END_OF_TEXT],
        # All 256 byte symbols, seen or not, so any later text still encodes.
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    backend.train_from_iterator(read_corpus(corpus), trainer)
    tokenizer = _wrap(backend)
    out_dir.mkdir(parents=True, exist_ok=True)
    tokenizer.save_pretrained(out_dir)
    return tokenizer


def load_tokenizer(directory: Path) -> PreTrainedTokenizerFast:
    """Load a tokenizer saved by `train_tokenizer` (or saved alongside a model)."""
    return _wrap(Tokenizer.from_file(str(directory / TOKENIZER_FILE)))


def _wrap(backend: Tokenizer) -> PreTrainedTokenizerFast:
    # transformers leaves this constructor unannotated; seen as a callable, its result is typed.
    make: Callable[..., PreTrainedTokenizerFast] = PreTrainedTokenizerFast
    return make(
        tokenizer_object=backend,
        bos_token=END_OF_TEXT,
        eos_token=END_OF_TEXT,
        unk_token=END_OF_TEXT,
        pad_token=END_OF_TEXT,
    )
