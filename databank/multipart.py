"""Streaming `multipart/form-data` encoding of one part named `file`.

The body is produced as a generator (opening boundary and part headers, the caller's chunks,
closing boundary), so an upload never holds the file in memory.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterable, Iterator

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
