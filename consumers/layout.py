"""Where a worker node keeps its files under `${ARTIFACTS_ROOT}`, and how they appear atomically.

    models/{run_id}/              a finished run: model, tokenizer, manifest.json
    checkpoints/{run_id}/         the newest checkpoint of a run in progress (`checkpoints`)
    tokenizers/{tokenizer_id}/    a finished tokenizer
    logs/{run_id}.jsonl           a run's lines on this node, every attempt (`RunLog`); the
                                  run directory's `logs.jsonl` is a hard link to it
    cache/corpora/                corpora by file id (`CorpusFetcher`)
    cache/artifacts/              extracted artifacts by file id (`ArtifactFetcher`)

A run or tokenizer directory is written under a staging name beside its final place and
renamed into place only once complete, so a crash (even SIGKILL) never leaves a directory
that looks finished and is not; staging leftovers of a killed worker are removed on the
next attempt.
"""

from __future__ import annotations

import shutil
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

_STAGING = ".staging-"


class ArtifactsLayout:
    """The directories of one node's artifacts root."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def run_dir(self, run_id: str) -> Path:
        """Where a finished run's files live until (and after) their upload."""
        return self.root / "models" / run_id

    def run_log(self, run_id: str) -> Path:
        """Where a run's lines are appended, outside its staged directory (see `RunLog`)."""
        return self.root / "logs" / f"{run_id}.jsonl"

    def checkpoint_dir(self, run_id: str) -> Path:
        """Where a run in progress keeps its checkpoint (not staged: it outlives a crash)."""
        return self.root / "checkpoints" / run_id

    def tokenizer_dir(self, tokenizer_id: str) -> Path:
        """Where a finished tokenizer's files live."""
        return self.root / "tokenizers" / tokenizer_id

    @property
    def corpus_cache(self) -> Path:
        """The corpus cache of this node."""
        return self.root / "cache" / "corpora"

    @property
    def artifact_cache(self) -> Path:
        """The cache of artifacts downloaded by pointer (tokenizers named by id)."""
        return self.root / "cache" / "artifacts"


@contextmanager
def staged(final: Path) -> Iterator[Path]:
    """Yield an empty staging directory beside `final`; when the block ends normally, it
    replaces `final` in one rename; when it raises, it is removed and `final` is untouched."""
    final.parent.mkdir(parents=True, exist_ok=True)
    for leftover in final.parent.glob(f"{_STAGING}{final.name}-*"):
        shutil.rmtree(leftover)
    staging = final.parent / f"{_STAGING}{final.name}-{uuid.uuid4().hex[:8]}"
    staging.mkdir()
    try:
        yield staging
    except BaseException:
        shutil.rmtree(staging)
        raise
    if final.exists():
        shutil.rmtree(final)
    staging.rename(final)
