"""`manifest.json`: what a run directory holds and how it was made, readable without torch.

It travels inside the artifact tar, so whoever downloads a model learns its corpus, tokenizer,
parameters, results and library versions; after the upload the worker's copy gains the
`artifact_pointer`.
"""

from __future__ import annotations

import os
import platform
from importlib.metadata import version
from pathlib import Path
from typing import Literal, Self

from pydantic import BaseModel, ConfigDict, Field, JsonValue

from events import ArtifactPointer, FileId, RunId, TrainingMetrics, TrainingParams

MANIFEST_FILE = "manifest.json"

TRAINED_WITH_RUN = "trained with run"
"""The manifest's `tokenizer` when the run trained its own tokenizer."""


class _Record(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Timings(_Record):
    """Wall-clock seconds of each phase of the run."""

    tokenizer_seconds: float | None = Field(default=None, ge=0)
    """Training the tokenizer, when the run trained its own."""
    data_seconds: float = Field(ge=0)
    """Encoding the corpus and cutting it into blocks."""
    train_seconds: float = Field(ge=0)
    """Building the model, the training loop and the validation pass."""
    save_seconds: float = Field(ge=0)
    """Writing model and tokenizer files."""


class LibraryVersions(_Record):
    """The versions that produced the files, for whoever has to load them later."""

    python: str
    torch: str
    transformers: str
    tokenizers: str

    @classmethod
    def current(cls) -> Self:
        """The versions installed in this process (read from package metadata, no heavy import)."""
        return cls(
            python=platform.python_version(),
            torch=version("torch"),
            transformers=version("transformers"),
            tokenizers=version("tokenizers"),
        )


class Manifest(_Record):
    """The run's record, written as `manifest.json` beside the model and tokenizer files."""

    run_id: RunId
    model: dict[str, JsonValue]
    """The model's configuration, as in its `config.json`."""
    tokenizer: RunId | Literal["trained with run"]
    """The id of the tokenizer used, or `TRAINED_WITH_RUN`."""
    corpus_file_id: FileId
    training: TrainingParams
    metrics: TrainingMetrics
    """Final train and validation loss, perplexity, steps, tokens and throughput."""
    timings: Timings
    device: str
    versions: LibraryVersions
    artifact_pointer: ArtifactPointer | None = None

    def with_pointer(self, pointer: ArtifactPointer) -> Self:
        """This manifest, pointing at its uploaded artifact."""
        return self.model_copy(update={"artifact_pointer": pointer})

    def write(self, path: Path) -> None:
        """Write atomically: a reader (or a crash) never sees half a manifest."""
        partial = path.with_name(f".{path.name}.partial")
        partial.write_text(self.model_dump_json(indent=2) + "\n", encoding="utf-8")
        os.replace(partial, path)

    @classmethod
    def read(cls, path: Path) -> Self:
        """Read and validate a manifest; a missing file or invalid content raises."""
        return cls.model_validate_json(path.read_bytes())
