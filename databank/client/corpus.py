"""The corpus fetcher: corpora by file id in a local cache, downloaded once per machine.

A cache entry is used only when verified. `download_to` checks the sha256 before the entry is
renamed into place; a marker written after that records the entry's size, mtime and inode. A
later fetch trusts the entry when its stat still matches the marker (cheap); when it does not
(modified, touched, marker lost) the entry is hashed again, and downloaded again if it no longer
matches its id. Entries are made read-only and fsynced before their marker is written, so a
marker never outlives the bytes it vouches for. Limit: a corruption that keeps size and mtime
(e.g. a disk fault under an unchanged inode) is not noticed by the cheap check.

Concurrent fetches of one id, from threads or processes, serialize on an `flock` of a per-id
lock file; the first downloads, the others find a verified entry.
"""

from __future__ import annotations

import hashlib
import os
import stat
from pathlib import Path

from pydantic import BaseModel, ConfigDict, ValidationError

from databank.client.download import FileDownloader
from databank.client.errors import validate_file_id
from databank.client.locks import file_lock
from databank.ids import FileId


class _Marker(BaseModel):
    """The stat of an entry at the moment its sha256 was verified."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    file_id: FileId
    size: int
    mtime_ns: int
    inode: int

    @classmethod
    def of(cls, file_id: str, entry: Path) -> _Marker:
        info = entry.stat()
        return cls(file_id=file_id, size=info.st_size, mtime_ns=info.st_mtime_ns, inode=info.st_ino)


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


class CorpusFetcher:
    """Fetches corpora from Data Bank into `cache_dir`, keyed by file id."""

    def __init__(self, downloader: FileDownloader, cache_dir: Path) -> None:
        self._downloader = downloader
        self._cache_dir = cache_dir
        cache_dir.mkdir(parents=True, exist_ok=True)

    def fetch(self, corpus_file_id: str) -> Path:
        """The path of a verified local copy of the corpus, downloading it when needed."""
        file_id = validate_file_id(corpus_file_id)
        entry = self._cache_dir / file_id
        marker = self._cache_dir / f"{file_id}.verified"
        if self._trusted(file_id, entry, marker):
            return entry
        with file_lock(self._cache_dir / f"{file_id}.lock"):
            if self._trusted(file_id, entry, marker):
                return entry
            if entry.exists() and _sha256(entry) == file_id:
                self._mark(file_id, entry, marker)
                return entry
            marker.unlink(missing_ok=True)
            entry.unlink(missing_ok=True)
            for stale in self._cache_dir.glob(f".{file_id}.*.part"):
                stale.unlink()
            self._downloader.download_to(file_id, entry)
            self._mark(file_id, entry, marker)
        return entry

    def _trusted(self, file_id: str, entry: Path, marker: Path) -> bool:
        try:
            recorded = _Marker.model_validate_json(marker.read_bytes())
            return recorded == _Marker.of(file_id, entry)
        except (OSError, ValidationError):
            return False

    def _mark(self, file_id: str, entry: Path, marker: Path) -> None:
        """Make the entry read-only and durable, then record its stat as verified."""
        entry.chmod(stat.S_IRUSR | stat.S_IRGRP | stat.S_IROTH)
        with entry.open("rb") as handle:
            os.fsync(handle.fileno())
        staged = marker.with_name(f".{marker.name}.{os.getpid()}")
        staged.write_text(_Marker.of(file_id, entry).model_dump_json())
        staged.replace(marker)
