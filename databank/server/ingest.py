"""Streaming ingest of a `multipart/form-data` upload, parsed as it arrives.

The part named `file` goes straight into a `PendingFile` (written and hashed in one pass, in
1 MiB batches off the event loop); nothing is spooled elsewhere. The size limit is enforced
while reading, so an oversized upload stops being read as soon as it passes the limit.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING

import anyio.to_thread
from python_multipart import MultipartParser
from python_multipart.exceptions import MultipartParseError
from python_multipart.multipart import parse_options_header

from databank.server.storage import PendingFile

if TYPE_CHECKING:
    from python_multipart.multipart import MultipartCallbacks

DEFAULT_CONTENT_TYPE = "application/octet-stream"
_OTHER_PARTS_LIMIT = 64 * 1024
_FLUSH_AT = 1 << 20
# What an HTTP server refuses in a header value (tab aside): such a type stored would break
# every later HEAD and GET of the file.
_CONTROL_CHARACTERS = re.compile("[\x00-\x08\x0a-\x1f\x7f]")


class MalformedUploadError(ValueError):
    """The body is not a well-formed multipart form with exactly one part named `file`."""


class UploadTooLargeError(ValueError):
    """The `file` part passed the size limit."""


class BodyStalledError(ValueError):
    """No more of the body arrived within the idle timeout."""


def header_safe(value: str) -> bool:
    """Whether `value` can be sent as a header value: it holds no control characters."""
    return _CONTROL_CHARACTERS.search(value) is None


def multipart_boundary(content_type: str | None) -> bytes:
    """The boundary of a `multipart/form-data` request, or `MalformedUploadError`."""
    kind, options = parse_options_header(content_type)
    boundary = options.get(b"boundary", b"")
    if kind != b"multipart/form-data" or not boundary:
        raise MalformedUploadError("expected multipart/form-data with a boundary")
    return boundary


class _FilePart:
    """Parser callbacks that keep the bytes of the part named `file` and count the rest."""

    def __init__(self, limit: int) -> None:
        self._limit = limit
        self._field = bytearray()
        self._value = bytearray()
        self._headers: dict[str, str] = {}
        self._in_file = False
        self._other_bytes = 0
        self.buffer = bytearray()
        self.size = 0
        self.found = False
        self.ended = False
        self.content_type = DEFAULT_CONTENT_TYPE

    def callbacks(self) -> MultipartCallbacks:
        return {
            "on_part_begin": self._headers.clear,
            "on_header_field": self._on_field,
            "on_header_value": self._on_value,
            "on_header_end": self._on_header_end,
            "on_headers_finished": self._on_headers_finished,
            "on_part_data": self._on_data,
            "on_part_end": self._on_part_end,
            "on_end": self._on_end,
        }

    def take(self) -> bytearray:
        """Hand over the collected bytes (no copy) and start collecting afresh."""
        data, self.buffer = self.buffer, bytearray()
        return data

    def _on_field(self, data: bytes, start: int, end: int) -> None:
        self._field.extend(data[start:end])

    def _on_value(self, data: bytes, start: int, end: int) -> None:
        self._value.extend(data[start:end])

    def _on_header_end(self) -> None:
        self._headers[self._field.decode("latin-1").strip().lower()] = self._value.decode(
            "latin-1"
        ).strip()
        self._field.clear()
        self._value.clear()

    def _on_headers_finished(self) -> None:
        _, options = parse_options_header(self._headers.get("content-disposition"))
        if options.get(b"name") != b"file":
            return
        if self.found:
            raise MalformedUploadError("more than one part named file")
        self.found = self._in_file = True
        self.content_type = self._headers.get("content-type") or DEFAULT_CONTENT_TYPE
        if not header_safe(self.content_type):
            raise MalformedUploadError("the file part's Content-Type holds control characters")

    def _on_data(self, data: bytes, start: int, end: int) -> None:
        if self._in_file:
            self.size += end - start
            if self._limit and self.size > self._limit:
                raise UploadTooLargeError(f"file is over the limit of {self._limit} bytes")
            self.buffer.extend(memoryview(data)[start:end])
        else:
            self._other_bytes += end - start
            if self._other_bytes > _OTHER_PARTS_LIMIT:
                raise MalformedUploadError("parts other than file are too large")

    def _on_part_end(self) -> None:
        self._in_file = False

    def _on_end(self) -> None:
        self.ended = True


async def _next_chunk(chunks: AsyncIterator[bytes], idle_timeout: float | None) -> bytes | None:
    try:
        with anyio.fail_after(idle_timeout):
            return await anext(chunks, None)
    except TimeoutError:
        raise BodyStalledError(f"no body bytes for {idle_timeout} s") from None


async def receive_file(
    chunks: AsyncIterator[bytes],
    boundary: bytes,
    pending: PendingFile,
    *,
    limit: int,
    idle_timeout: float | None = None,
) -> str:
    """Feed the body into `pending` as it arrives; return the part's content type.

    `limit` is the largest file accepted, in bytes (0: no limit); `idle_timeout` the longest
    wait for the next bytes (None: no limit), so a client that stalls cannot hold the upload.
    """
    part = _FilePart(limit)
    parser = MultipartParser(boundary, part.callbacks())
    while (chunk := await _next_chunk(chunks, idle_timeout)) is not None:
        try:
            parser.write(chunk)
        except MultipartParseError as exc:
            raise MalformedUploadError(f"malformed multipart body: {exc}") from exc
        if len(part.buffer) >= _FLUSH_AT:
            await anyio.to_thread.run_sync(pending.write, part.take())
        if part.ended:
            break
    if part.buffer:
        await anyio.to_thread.run_sync(pending.write, part.take())
    if not part.ended:
        raise MalformedUploadError("body ended before the closing boundary")
    if not part.found:
        raise MalformedUploadError("no part named file")
    return part.content_type
