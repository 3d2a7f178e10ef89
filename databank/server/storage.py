"""Content-addressed storage on local disk, as the local server keeps it.

Layout under the data directory: `tmp/` holds uploads in progress (same filesystem, so the final
rename is atomic); `objects/ab/cd/<sha256>` holds each file and `<sha256>.json` its metadata.
Metadata is renamed into place before the file, so a file that is visible always has metadata.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import BinaryIO

from databank.models import FileInfo


class StorageCorruptError(RuntimeError):
    """A stored file no longer has the bytes its metadata promises."""


class BelowFreeFloorError(RuntimeError):
    """Writing more of an upload would take the free disk below the floor."""


def _fsync_dir(path: Path) -> None:
    handle = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(handle)
    finally:
        os.close(handle)


class PendingFile:
    """An upload being received: bytes are written to a temporary file and hashed in one pass.

    Before each write the free disk is measured again (a statvfs per batch of about 1 MiB), so
    an upload stops where it would cross `min_free` bytes rather than fill the disk.
    """

    def __init__(self, path: Path, free_bytes: Callable[[], int], min_free: int = 0) -> None:
        self.path = path
        self._file = path.open("xb")
        self._hash = hashlib.sha256()
        self._free_bytes = free_bytes
        self._min_free = min_free
        self.size = 0

    def write(self, data: bytes | bytearray) -> None:
        """Append `data` to the file and to the hash; `BelowFreeFloorError` past the floor."""
        if self._min_free and self._free_bytes() - len(data) < self._min_free:
            raise BelowFreeFloorError(f"{len(data)} more bytes would cross the free-disk floor")
        self._hash.update(data)
        self._file.write(data)
        self.size += len(data)

    def finish(self) -> str:
        """Flush the bytes to disk and return their sha256."""
        self._file.flush()
        os.fsync(self._file.fileno())
        self._file.close()
        return self._hash.hexdigest()

    def discard(self) -> None:
        """Forget the upload; harmless after a commit moved the file away."""
        self._file.close()
        self.path.unlink(missing_ok=True)


class FileStore:
    """Files by sha256 under one directory; every write is a temp file, fsync and rename."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._objects = root / "objects"
        self._tmp = root / "tmp"
        self._objects.mkdir(parents=True, exist_ok=True)
        self._tmp.mkdir(parents=True, exist_ok=True)

    def clear_partials(self) -> int:
        """Remove uploads a previous process left unfinished; return how many."""
        removed = 0
        for partial in self._tmp.iterdir():
            partial.unlink()
            removed += 1
        return removed

    def begin(self, min_free: int = 0) -> PendingFile:
        """Start receiving an upload that must leave `min_free` bytes free (0: no floor)."""
        return PendingFile(self._tmp / f"{uuid.uuid4().hex}.part", self.free_bytes, min_free)

    def commit(self, pending: PendingFile, content_type: str) -> FileInfo:
        """Make a received upload visible under its sha256; an identical file already there wins."""
        file_id = pending.finish()
        existing = self.info(file_id)
        if existing is not None:
            pending.discard()
            return existing
        info = FileInfo(
            file_id=file_id,
            size=pending.size,
            sha256=file_id,
            content_type=content_type,
            created_at=datetime.now(UTC),
        )
        blob = self._blob(file_id)
        blob.parent.mkdir(parents=True, exist_ok=True)
        self._write_metadata(info)
        pending.path.replace(blob)
        _fsync_dir(blob.parent)
        return info

    def info(self, file_id: str) -> FileInfo | None:
        """The metadata of a stored file, or None when there is no such file."""
        if not self._blob(file_id).exists():
            return None
        return FileInfo.model_validate_json(self._metadata(file_id).read_bytes())

    def open(self, file_id: str) -> tuple[BinaryIO, FileInfo] | None:
        """An open handle on a stored file and its metadata, or None when there is no such file.

        Opened before the metadata is read, so a concurrent delete cannot pull the bytes away.
        """
        try:
            handle = self._blob(file_id).open("rb")
        except FileNotFoundError:
            return None
        try:
            info = FileInfo.model_validate_json(self._metadata(file_id).read_bytes())
        except BaseException:
            handle.close()
            raise
        return handle, info

    def delete(self, file_id: str) -> bool:
        """Remove a file and its metadata; False when there was none."""
        try:
            self._blob(file_id).unlink()
        except FileNotFoundError:
            return False
        self._metadata(file_id).unlink(missing_ok=True)
        return True

    def free_bytes(self) -> int:
        """Free space on the data directory's filesystem."""
        return shutil.disk_usage(self.root).free

    def check_writable(self) -> None:
        """Write, fsync and remove a probe; raises `OSError` when storage cannot take writes."""
        probe = self.begin()
        try:
            probe.write(b"probe")
            probe.finish()
        finally:
            probe.discard()

    def _blob(self, file_id: str) -> Path:
        return self._objects / file_id[:2] / file_id[2:4] / file_id

    def _metadata(self, file_id: str) -> Path:
        return self._objects / file_id[:2] / file_id[2:4] / f"{file_id}.json"

    def _write_metadata(self, info: FileInfo) -> None:
        staged = self._tmp / f"{uuid.uuid4().hex}.json"
        with staged.open("xb") as out:
            out.write(info.model_dump_json().encode())
            out.flush()
            os.fsync(out.fileno())
        staged.replace(self._metadata(info.file_id))


def iter_span(
    handle: BinaryIO, start: int, length: int, chunk_size: int = 4 << 20
) -> Iterator[bytes]:
    """Yield `length` bytes of `handle` from `start`, then close it.

    4 MiB pieces: each one costs a trip through the thread pool and the event loop, so larger
    pieces spend less of the server's CPU per byte sent (`bench/databank_transfer.py` prints
    the cost at 1 MiB and at 4 MiB).

    Raises `StorageCorruptError` when the file ends early: the answer's `Content-Length` is already
    sent, so the connection must break rather than end short and look complete.
    """
    with handle:
        handle.seek(start)
        remaining = length
        while remaining > 0:
            chunk = handle.read(min(chunk_size, remaining))
            if not chunk:
                raise StorageCorruptError(f"{handle.name} ended {remaining} bytes early")
            remaining -= len(chunk)
            yield chunk
