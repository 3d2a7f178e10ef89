"""Artifacts by file id: downloaded, verified and safely extracted once per machine, in a disk
cache bounded by bytes, least recently used out first, never what is in use.

`with fetcher.hold(file_id) as directory:` gives a directory holding the artifact's files, kept
on disk until the block ends. The tar is downloaded with sha256 verification, extracted by
`safe_extract` into a staging directory beside the cache, and renamed into place in one step, so
a directory in the cache is complete by construction. Concurrent first holds of one id, from
threads or processes, serialize on a per-id file lock: one downloads, the others find it.

The bound (`max_bytes`; None: unbounded) counts the bytes of the extracted files. Every hold
stamps its entry's mtime, so the directory itself records when it was last used, for every
process sharing the cache, across restarts. When an entry was added and when a hold ends, the
least recently used entries go until the rest fit. An entry is in use while anyone, in any
process, holds it: holders keep a shared `flock` on `.<id>.use`, and eviction takes it
exclusively without waiting and skips the entry when it cannot. An entry larger than the whole
budget is still served, and goes once its last holder lets go. A cached entry is served without
a word to Data Bank, so it keeps serving while Data Bank is down. Limit: the bound is checked
after an entry lands, so the disk briefly holds the budget, the new entry and its tar.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from pydantic import BaseModel, ConfigDict

from databank.client.download import FileDownloader
from databank.client.errors import validate_file_id
from databank.client.extract import DEFAULT_LIMITS, ExtractLimits, safe_extract
from databank.client.locks import exclusive_if_free, file_lock, shared_lease
from databank.ids import is_file_id

_EVICTED = ".evicted-"


class CacheStats(BaseModel):
    """What this fetcher did since it was made, and what the cache holds now."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    hits: int = 0
    """Holds served from the disk, without a download."""
    misses: int = 0
    """Holds that downloaded and extracted their artifact."""
    evictions: int = 0
    evicted_bytes: int = 0
    download_bytes: int = 0
    download_seconds: float = 0.0
    entries: int = 0
    bytes: int = 0
    max_bytes: int | None = None


@dataclass
class _Counters:
    hits: int = 0
    misses: int = 0
    evictions: int = 0
    evicted_bytes: int = 0
    download_bytes: int = 0
    download_seconds: float = 0.0


@dataclass(frozen=True)
class _Entry:
    used_ns: int
    file_id: str
    size: int


def _tree_bytes(directory: Path) -> int:
    total = 0
    for root, _, files in os.walk(directory):
        for name in files:
            total += os.lstat(os.path.join(root, name)).st_size
    return total


class ArtifactFetcher:
    """A cache of extracted artifacts keyed by file id, bounded by `max_bytes`."""

    def __init__(
        self,
        downloader: FileDownloader,
        cache_dir: Path,
        limits: ExtractLimits = DEFAULT_LIMITS,
        *,
        max_bytes: int | None = None,
    ) -> None:
        self.downloader = downloader
        self.cache_dir = cache_dir
        self.limits = limits
        self.max_bytes = max_bytes
        self._sizes: dict[str, int] = {}  # content-addressed: an id's size never changes
        self._guard = threading.Lock()  # guards the two below
        self._counters = _Counters()

    def fetch(self, file_id: str) -> Path:
        """The directory of artifact `file_id`, downloading and extracting it when missing.

        Not held: in a bounded cache a later hold's eviction may remove it; use `hold` there.
        """
        with self.hold(file_id) as directory:
            return directory

    @contextmanager
    def hold(self, file_id: str) -> Iterator[Path]:
        """The directory of artifact `file_id`, fetched when missing, never evicted (by any
        process) until the block ends."""
        validate_file_id(file_id)
        self.cache_dir.mkdir(parents=True, exist_ok=True)
        target = self.cache_dir / file_id
        try:
            with shared_lease(self._lease(file_id)):
                if target.is_dir():
                    self._hit()
                else:
                    self._materialize_once(file_id, target)
                now = time.time_ns()
                os.utime(target, ns=(now, now))
                yield target
        finally:
            self.trim()

    def trim(self) -> list[str]:
        """Evict the least recently used entries that are not in use until the cache fits its
        budget (or only entries in use are left); the ids evicted."""
        if self.max_bytes is None:
            return []
        entries = sorted(self._entries(), key=lambda entry: (entry.used_ns, entry.file_id))
        total = sum(entry.size for entry in entries)
        evicted: list[str] = []
        for entry in entries:
            if total <= self.max_bytes:
                break
            if self._evict(entry.file_id):
                total -= entry.size
                evicted.append(entry.file_id)
                with self._guard:
                    self._counters.evictions += 1
                    self._counters.evicted_bytes += entry.size
        return evicted

    def stats(self) -> CacheStats:
        """Counters since this fetcher was made, with the entries and bytes on disk now."""
        entries = self._entries()
        with self._guard:
            counted = self._counters
            return CacheStats(
                hits=counted.hits,
                misses=counted.misses,
                evictions=counted.evictions,
                evicted_bytes=counted.evicted_bytes,
                download_bytes=counted.download_bytes,
                download_seconds=counted.download_seconds,
                entries=len(entries),
                bytes=sum(entry.size for entry in entries),
                max_bytes=self.max_bytes,
            )

    def _lease(self, file_id: str) -> Path:
        return self.cache_dir / f".{file_id}.use"

    def _hit(self) -> None:
        with self._guard:
            self._counters.hits += 1

    def _materialize_once(self, file_id: str, target: Path) -> None:
        with file_lock(self.cache_dir / f".{file_id}.lock"):
            if target.is_dir():  # another holder fetched it while we waited
                self._hit()
                return
            for stale in self.cache_dir.glob(f".staging-{file_id}-*"):  # left by a crash
                shutil.rmtree(stale, ignore_errors=True)
            self._materialize(file_id, target)
        self.trim()

    def _materialize(self, file_id: str, target: Path) -> None:
        prefix = f".staging-{file_id}-"
        with tempfile.TemporaryDirectory(dir=self.cache_dir, prefix=prefix) as staging:
            started = time.perf_counter()
            archive = self.downloader.download_to(file_id, Path(staging) / "artifact.tar")
            seconds = time.perf_counter() - started
            tree = Path(staging) / "tree"
            safe_extract(archive, tree, self.limits)
            size = _tree_bytes(tree)
            tree.rename(target)
            downloaded = archive.stat().st_size
        with self._guard:
            self._sizes[file_id] = size
            self._counters.misses += 1
            self._counters.download_bytes += downloaded
            self._counters.download_seconds += seconds

    def _entries(self) -> list[_Entry]:
        """The complete entries on disk now, with when they were last used and their bytes."""
        found: list[_Entry] = []
        for name in os.listdir(self.cache_dir) if self.cache_dir.is_dir() else []:
            path = self.cache_dir / name
            if name.startswith(_EVICTED):  # an evictor died before removing it
                shutil.rmtree(path, ignore_errors=True)
            elif is_file_id(name) and (entry := self._entry(name, path)) is not None:
                found.append(entry)
        return found

    def _entry(self, file_id: str, path: Path) -> _Entry | None:
        with self._guard:
            known = self._sizes.get(file_id)
        try:
            used_ns = path.stat().st_mtime_ns
            size = _tree_bytes(path) if known is None else known  # None: another process's
        except FileNotFoundError:  # evicted meanwhile (or a dangling link)
            return None
        if not path.is_dir():  # not an entry, or evicted during the walk (a partial sum)
            return None
        with self._guard:
            self._sizes[file_id] = size
        return _Entry(used_ns=used_ns, file_id=file_id, size=size)

    def _evict(self, file_id: str) -> bool:
        """Remove entry `file_id` unless someone holds it; whether it was removed."""
        lease = self._lease(file_id)
        trash = self.cache_dir / f"{_EVICTED}{file_id}-{uuid.uuid4().hex}"
        with exclusive_if_free(lease) as won:
            # Won, nobody holds it and no other evictor can: presence is stable until we let go.
            if not won or not (self.cache_dir / file_id).is_dir():
                return False
            (self.cache_dir / file_id).rename(trash)
            lease.unlink()
            (self.cache_dir / f".{file_id}.lock").unlink(missing_ok=True)
        shutil.rmtree(trash, ignore_errors=True)
        return True
