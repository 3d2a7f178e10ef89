"""Artifacts by file id: downloaded, verified and safely extracted once per machine.

`ArtifactFetcher.fetch(file_id)` returns a directory holding the artifact's files. The tar is
downloaded with sha256 verification, extracted by `safe_extract` into a staging directory
beside the cache, and renamed into place in one step, so a directory in the cache is
complete by construction. Concurrent fetches of one id serialize on a per-id file lock.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from databank.client.download import FileDownloader
from databank.client.errors import validate_file_id
from databank.client.extract import DEFAULT_LIMITS, ExtractLimits, safe_extract
from databank.client.locks import file_lock


class ArtifactFetcher:
    """A cache of extracted artifacts keyed by file id."""

    def __init__(
        self, downloader: FileDownloader, cache_dir: Path, limits: ExtractLimits = DEFAULT_LIMITS
    ) -> None:
        self.downloader = downloader
        self.cache_dir = cache_dir
        self.limits = limits

    def fetch(self, file_id: str) -> Path:
        """The directory of artifact `file_id`, downloading and extracting it when missing."""
        validate_file_id(file_id)
        target = self.cache_dir / file_id
        self.cache_dir.mkdir(parents=True, exist_ok=True)
        with file_lock(self.cache_dir / f".{file_id}.lock"):
            if not target.is_dir():
                self._materialize(file_id, target)
        return target

    def _materialize(self, file_id: str, target: Path) -> None:
        with tempfile.TemporaryDirectory(dir=self.cache_dir, prefix=".staging-") as staging:
            archive = self.downloader.download_to(file_id, Path(staging) / "artifact.tar")
            tree = Path(staging) / "tree"
            safe_extract(archive, tree, self.limits)
            tree.rename(target)
