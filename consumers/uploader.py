"""`ArtifactUploader`: a directory to Data Bank as its deterministic tar, streamed, verified.

The tar is produced chunk by chunk while it is sent (`tar_stream`): no temporary tar file, and
memory stays at a few chunks whatever the model size. The sha256 of the tar is computed once,
as the bytes go out, by the client the stream passes through (`DataBankClient.upload` hashes
exactly what it sends and raises `IntegrityError` when the answered `file_id` is not that
digest); hashing it a second time here would pay for a second sha256 pass over every byte
to learn the same answer. The uploader counts the bytes it streamed and refuses an answer of
another size. A retry by the client replays the stream from the start, and identical content
gives an identical id, so a retried upload deduplicates.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from consumers.tarball import DEFAULT_CHUNK_SIZE, tar_stream
from databank import FileInfo, IntegrityError

TAR_CONTENT_TYPE = "application/x-tar"


class Uploads(Protocol):
    """What the uploader needs from a Data Bank client (`DataBankClient` is one): an upload
    whose answer is refused (`IntegrityError`) unless its `file_id` is the sha256 of the bytes
    the source produced."""

    def upload(
        self,
        source: Path | Callable[[], Iterable[bytes]],
        *,
        filename: str = ...,
        content_type: str = ...,
    ) -> FileInfo: ...


@dataclass(frozen=True, slots=True)
class Receipt:
    """A verified upload: the id Data Bank gave, which is the sha256 of the `size` bytes sent."""

    file_id: str
    size: int
    sha256: str
    seconds: float


class _Counted:
    """One attempt's stream, counted as it goes."""

    def __init__(self, chunks: Iterable[bytes]) -> None:
        self._chunks = chunks
        self.size = 0

    def __iter__(self) -> Iterator[bytes]:
        for chunk in self._chunks:
            self.size += len(chunk)
            yield chunk


class ArtifactUploader:
    """Uploads directories as deterministic tars."""

    def __init__(self, client: Uploads, *, chunk_size: int = DEFAULT_CHUNK_SIZE) -> None:
        self._client = client
        self._chunk_size = chunk_size

    def upload(self, path: Path, *, name: str) -> Receipt:
        """Upload `path` as the tar file `name`; what was sent and how long it took.

        Raises `IntegrityError` when the answer does not describe the bytes sent, an
        `ArchiveError` when the directory cannot be archived, and the client's `DataBankError`s.
        """
        attempts: list[_Counted] = []

        def source() -> Iterable[bytes]:
            # Listed (and checked) now, read as the client consumes it; fresh on every retry.
            attempts.append(_Counted(tar_stream(path, chunk_size=self._chunk_size)))
            return attempts[-1]

        started = time.perf_counter()
        info = self._client.upload(source, filename=name, content_type=TAR_CONTENT_TYPE)
        seconds = time.perf_counter() - started
        sent = attempts[-1].size
        if info.size != sent:
            raise IntegrityError(
                f"upload of {name} answered size={info.size}, but the tar sent is {sent} bytes"
            )
        return Receipt(file_id=info.file_id, size=sent, sha256=info.file_id, seconds=seconds)
