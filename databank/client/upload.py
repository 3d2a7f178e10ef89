"""An upload's body: one `multipart/form-data` part named `file`, streamed and hashed as it goes.

The body is produced as a generator (opening boundary and part headers, the source's chunks,
closing boundary), so an upload never holds the file in memory; the sha256 and size of the
chunks are computed on the way, for the client to compare with the service's answer.
"""

from __future__ import annotations

import hashlib
import os
import secrets
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO

UploadSource = Path | Callable[[], Iterable[bytes]]
"""A file to upload, or a zero-argument callable returning a fresh iterator of its bytes
(called again on each retry, so it must produce the same bytes every time)."""

_FILENAME_ESCAPES = str.maketrans({'"': "%22", "\r": "%0D", "\n": "%0A"})


class MultipartFile:
    """The envelope around one file part: its boundary, part headers and closing line."""

    def __init__(self, *, filename: str, content_type: str, boundary: str | None = None) -> None:
        if any(char in content_type for char in "\r\n"):
            raise ValueError("content_type must not contain line breaks")
        self.boundary = boundary or f"databank-{secrets.token_hex(16)}"
        quoted = filename.translate(_FILENAME_ESCAPES)
        self.head = (
            f"--{self.boundary}\r\n"
            f'Content-Disposition: form-data; name="file"; filename="{quoted}"\r\n'
            f"Content-Type: {content_type}\r\n\r\n"
        ).encode()
        self.tail = f"\r\n--{self.boundary}--\r\n".encode()

    @property
    def content_type(self) -> str:
        """The request's `Content-Type`, carrying the boundary."""
        return f"multipart/form-data; boundary={self.boundary}"

    def length(self, size: int) -> int:
        """The body's length for a file of `size` bytes (gives file uploads a `Content-Length`)."""
        return len(self.head) + size + len(self.tail)

    def encode(self, chunks: Iterable[bytes]) -> Iterator[bytes]:
        """Yield the body: the part's head, each non-empty chunk as is, the closing boundary."""
        yield self.head
        for chunk in chunks:
            if chunk:
                yield chunk
        yield self.tail


class Digest:
    """The sha256 and size of the bytes an upload sends, computed as they go."""

    def __init__(self) -> None:
        self._hash = hashlib.sha256()
        self.size = 0

    def feed(self, chunks: Iterable[bytes]) -> Iterator[bytes]:
        """Pass `chunks` through, hashing and counting each."""
        for chunk in chunks:
            self._hash.update(chunk)
            self.size += len(chunk)
            yield chunk

    def hexdigest(self) -> str:
        """The sha256 of every chunk fed so far."""
        return self._hash.hexdigest()


def _read_file(handle: BinaryIO, size: int, chunk_size: int) -> Iterator[bytes]:
    """At most `size` bytes: the `Content-Length` was computed from it (a file that shrinks
    meanwhile ends short, and httpx refuses the request as a local protocol error)."""
    remaining = size
    while remaining > 0 and (chunk := handle.read(min(chunk_size, remaining))):
        remaining -= len(chunk)
        yield chunk


@contextmanager
def opened(source: UploadSource, chunk_size: int) -> Iterator[tuple[Iterable[bytes], int | None]]:
    """The source's chunks and, for a file, its size (so the body gets a `Content-Length`)."""
    if isinstance(source, Path):
        with source.open("rb") as handle:
            size = os.fstat(handle.fileno()).st_size
            yield _read_file(handle, size, chunk_size), size
    else:
        yield source(), None
