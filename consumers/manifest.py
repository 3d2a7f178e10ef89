"""`manifest.json`: what a run directory holds and how it was made, readable without torch.

It travels inside the artifact tar, so whoever downloads a model learns its corpus, tokenizer
(and how it was made), parameters, results, and the versions of trainledger and the libraries
that trained it; after the upload the worker's copy gains the `artifact_pointer`.

What varies between two runs of one spec (the node, when, how long: `execution`) is kept apart
from what a reproduction must repeat: the spec (model, tokenizer, corpus, training), the
device and torch's threads, the library versions and the sha256 of the weights
(`provenance()`). The metrics sit between: their losses repeat with the weights, their
seconds and throughput do not.
"""

from __future__ import annotations

import hashlib
import os
import platform
from datetime import datetime
from importlib.metadata import version
from pathlib import Path
from typing import Self

from pydantic import BaseModel, ConfigDict, Field, JsonValue, model_validator

from events import (
    ArtifactPointer,
    FileId,
    Provenance,
    RunId,
    TokenizerParams,
    TrainingMetrics,
    TrainingParams,
)

MANIFEST_FILE = "manifest.json"
WEIGHTS_GLOB = "model*.safetensors"
"""`model.safetensors`, or the shards of a model saved in several."""
_CHUNK = 1 << 20


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


class Execution(_Record):
    """Where, when and how long: what differs between any two runs of one spec."""

    node_id: str
    finished_at: datetime
    """When the manifest was written."""
    timings: Timings


class TokenizerRecord(_Record):
    """The tokenizer the model was trained with: the run's own (with the parameters it was
    trained with) or one trained before (its id); either way the vocabulary it has."""

    params: TokenizerParams | None = None
    """Vocabulary size asked and minimum pair frequency of the run's own tokenizer."""
    tokenizer_id: RunId | None = None
    """The tokenizer reused."""
    vocab_size: int = Field(ge=1)
    """The vocabulary it has: below `params.vocab_size` when the corpus has fewer merges."""

    @model_validator(mode="after")
    def _one_source(self) -> Self:
        if (self.params is None) == (self.tokenizer_id is None):
            raise ValueError(
                "a tokenizer is trained with the run (params) or reused (tokenizer_id)"
            )
        return self


class LibraryVersions(_Record):
    """The versions that produced the files, for whoever has to load them later."""

    trainledger: str
    python: str
    torch: str
    transformers: str
    tokenizers: str

    @classmethod
    def current(cls, trainledger: str) -> Self:
        """The versions installed in this process (read from package metadata, no heavy
        import), with trainledger's as the composition root tells it (`WorkerConfig`)."""
        return cls(
            trainledger=trainledger,
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
    tokenizer: TokenizerRecord
    corpus_file_id: FileId
    training: TrainingParams
    metrics: TrainingMetrics
    """Final train and validation loss, perplexity, steps, tokens and throughput."""
    device: str
    threads: int = Field(ge=1)
    """torch's intra-op threads: on CPU another count sums floats in another order."""
    versions: LibraryVersions
    model_sha256: FileId
    """Of the weights (`weights_sha256`): equal for a byte-identical reproduction."""
    execution: Execution
    artifact_pointer: ArtifactPointer | None = None

    def provenance(self) -> Provenance:
        """What `training.completed` carries, so a reproduction compares itself from the log."""
        versions = {name: str(value) for name, value in self.versions.model_dump().items()}
        return Provenance(
            model_sha256=self.model_sha256,
            device=self.device,
            threads=self.threads,
            versions=versions,
        )

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


def weights_sha256(directory: Path) -> str:
    """The sha256 of the model's weights in `directory`: of `model.safetensors`, or of its
    shards' bytes one after the other in name order."""
    digest = hashlib.sha256()
    for path in sorted(directory.glob(WEIGHTS_GLOB)):
        with path.open("rb") as handle:
            while chunk := handle.read(_CHUNK):
                digest.update(chunk)
    return digest.hexdigest()
