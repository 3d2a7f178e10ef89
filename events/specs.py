"""What a command asks for: the training and tokenizer specifications events carry."""

from __future__ import annotations

import re
from typing import Annotated, Literal, Self

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator

_FILE_ID = re.compile(r"[0-9a-f]{64}")
_PUBLIC_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")


def _file_id(value: str) -> str:
    if not _FILE_ID.fullmatch(value):
        raise ValueError("must be a Data Bank file id: 64 lowercase hex characters")
    return value


def _public_id(value: str) -> str:
    if not _PUBLIC_ID.fullmatch(value):
        raise ValueError("must be 1-128 characters of letters, digits, '.', '_' or '-'")
    return value


_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")


def _name(value: str) -> str:
    if not _NAME.fullmatch(value):
        raise ValueError("must be 1-64 characters of letters, digits, '.', '_' or '-'")
    return value


FileId = Annotated[str, AfterValidator(_file_id)]
"""A Data Bank file id: the lowercase hex sha256 of the file."""
RunId = Annotated[str, AfterValidator(_public_id)]
"""A run or tokenizer id: safe in a key name and a path segment."""
ModelName = Annotated[str, AfterValidator(_name)]
"""A model's name or one of its aliases (`production`): safe in a key, never holding `@`."""


class Strict(BaseModel):
    """Base of every boundary model: unknown fields are an error, not a silent drop."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class ArtifactPointer(BaseModel):
    """Where an artifact lives: the one typed pointer every reader resolves."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    storage: Literal["data-bank"] = "data-bank"
    file_id: FileId


class TokenizerParams(Strict):
    """Train a byte-level BPE tokenizer."""

    vocab_size: int = Field(default=4096, ge=260, le=65536)
    min_frequency: int = Field(default=2, ge=1, le=1000)


class TokenizerRef(Strict):
    """Use a tokenizer trained before, by its id."""

    tokenizer_id: RunId


MODEL_SIZES: dict[str, tuple[int, int, int]] = {
    "tiny": (2, 2, 64),
    "mini": (4, 4, 256),
    "small": (6, 8, 512),
}
"""Named sizes as (n_layer, n_head, n_embd)."""


class ModelSpec(Strict):
    """A GPT-2 model: a named size, or explicit dimensions."""

    family: Literal["gpt2"] = "gpt2"
    size: Literal["tiny", "mini", "small"] | None = None
    n_layer: int | None = Field(default=None, ge=1, le=48)
    n_head: int | None = Field(default=None, ge=1, le=64)
    n_embd: int | None = Field(default=None, ge=8, le=4096)
    dropout: float = Field(
        default=0.1,
        ge=0,
        lt=1,
        description="GPT-2's dropout (embeddings, attention, residuals); 0 makes a "
        "data-parallel run compute what one process computes.",
    )

    @model_validator(mode="after")
    def _one_way(self) -> Self:
        explicit = (self.n_layer, self.n_head, self.n_embd)
        if self.size is None and None in explicit:
            raise ValueError("give a size, or all of n_layer, n_head and n_embd")
        if self.size is not None and explicit != (None, None, None):
            raise ValueError("give a size or explicit dimensions, not both")
        n_head, n_embd = self.dimensions()[1:]
        if n_embd % n_head:
            raise ValueError("n_embd must be a multiple of n_head")
        return self

    def dimensions(self) -> tuple[int, int, int]:
        """(n_layer, n_head, n_embd) of this model."""
        if self.size is not None:
            return MODEL_SIZES[self.size]
        return (self.n_layer or 0, self.n_head or 0, self.n_embd or 0)


class TrainingParams(Strict):
    """How to train: length, batch, optimizer, data split, evaluation, device and precision."""

    epochs: int | None = Field(default=None, ge=1, le=1000)
    max_steps: int | None = Field(default=None, ge=1, le=10_000_000)
    batch_size: int = Field(default=8, ge=1, le=1024)
    learning_rate: float = Field(default=5e-4, gt=0, le=1)
    sequence_length: int = Field(default=128, ge=8, le=4096)
    seed: int = Field(default=0, ge=0, le=2**32 - 1)
    holdout_fraction: float = Field(default=0.1, ge=0, lt=1)
    eval_every_steps: int | None = Field(
        default=None,
        ge=1,
        le=10_000_000,
        description="Validation loss every this many steps (default: five times per run).",
    )
    checkpoint_every_steps: int | None = Field(
        default=None,
        ge=1,
        le=10_000_000,
        description="A checkpoint every this many steps, besides the worker's time interval.",
    )
    device: Literal["auto", "cpu", "cuda"] = "auto"
    precision: Literal["fp32", "bf16", "fp16"] = "fp32"
    processes: int = Field(
        default=1,
        ge=1,
        le=64,
        description="Data-parallel processes on the node (one GPU each on CUDA); each step's "
        "batch of `batch_size` blocks is shared out among them.",
    )

    @model_validator(mode="after")
    def _length(self) -> Self:
        if self.epochs is not None and self.max_steps is not None:
            raise ValueError("give epochs or max_steps, not both")
        return self


_TAG_KEY = re.compile(r"[A-Za-z0-9_.-]{1,64}")
MAX_TAGS = 20


def _tags(value: dict[str, str]) -> dict[str, str]:
    if len(value) > MAX_TAGS:
        raise ValueError(f"at most {MAX_TAGS} tags")
    for key, tag in value.items():
        if not _TAG_KEY.fullmatch(key):
            raise ValueError(f"tag key {key!r}: 1-64 letters, digits, '.', '_' or '-'")
        if len(tag) > 200 or not tag.isprintable():
            raise ValueError(f"tag {key!r}: at most 200 printable characters")
    return dict(sorted(value.items()))


RunName = Annotated[str, Field(min_length=1, max_length=100, pattern=r"^[^\x00-\x1f\x7f]+$")]
"""A run's name for people: printable, not unique (the run id is)."""
Tags = Annotated[dict[str, str], AfterValidator(_tags)]
"""`key=value` labels to filter and compare runs by; kept sorted by key."""


class TrainingSpec(Strict):
    """Everything a training run needs: the corpus, the tokenizer, the model, the schedule;
    and how people find it again (`name`, `tags`), which training ignores."""

    corpus_file_id: FileId
    tokenizer: TokenizerRef | TokenizerParams = TokenizerParams()
    model: ModelSpec = ModelSpec(size="tiny")
    training: TrainingParams = TrainingParams()
    name: RunName | None = None
    tags: Tags = {}


class TokenizerSpec(Strict):
    """A tokenizer trained on its own: the corpus and the parameters."""

    corpus_file_id: FileId
    params: TokenizerParams = TokenizerParams()
