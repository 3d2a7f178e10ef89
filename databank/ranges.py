"""Byte ranges: parsing `Range` (server side) and checking `Content-Range` (client side).

Only single ranges are served. A `Range` header the server cannot use (malformed, another unit,
several ranges) is ignored and the whole file is sent, as RFC 9110 allows; a well-formed range
outside the file is unsatisfiable (416).
"""

from __future__ import annotations

import re
from typing import NamedTuple


class ByteRange(NamedTuple):
    """An inclusive span `[start, end]` of a file's bytes."""

    start: int
    end: int

    @property
    def length(self) -> int:
        """How many bytes the span holds."""
        return self.end - self.start + 1


class ContentRange(NamedTuple):
    """A parsed `Content-Range: bytes start-end/size`."""

    start: int
    end: int
    size: int


class UnsatisfiableRangeError(ValueError):
    """A well-formed range that selects no byte of the file."""


_CONTENT_RANGE = re.compile(r"bytes ([0-9]+)-([0-9]+)/([0-9]+)", re.ASCII)


def _is_number(text: str) -> bool:
    return text.isascii() and text.isdigit()


def _suffix(last: str, size: int) -> ByteRange | None:
    if not _is_number(last):
        return None
    count = int(last)
    if count == 0 or size == 0:
        raise UnsatisfiableRangeError(f"suffix of {count} bytes of a {size}-byte file")
    return ByteRange(max(0, size - count), size - 1)


def _span(first: str, last: str, size: int) -> ByteRange | None:
    if not _is_number(first) or (last and not _is_number(last)):
        return None
    start = int(first)
    if last and int(last) < start:
        return None
    if start >= size:
        raise UnsatisfiableRangeError(f"range starts at {start} of a {size}-byte file")
    end = min(int(last), size - 1) if last else size - 1
    return ByteRange(start, end)


def parse_range(header: str | None, size: int) -> ByteRange | None:
    """The span a `Range` header selects in a file of `size` bytes; None to send the whole file.

    Raises `UnsatisfiableRangeError` for a well-formed range that selects nothing. Handles suffix
    ranges (`bytes=-n`: the last n bytes) correctly, unlike the deployed service.
    """
    if header is None:
        return None
    unit, equals, spec = header.partition("=")
    if not equals or unit.strip().lower() != "bytes" or "," in spec:
        return None
    first, dash, last = spec.strip().partition("-")
    if not dash:
        return None
    if not first:
        return _suffix(last, size)
    return _span(first, last, size)


def format_content_range(span: ByteRange, size: int) -> str:
    """The `Content-Range` value of a 206 answer."""
    return f"bytes {span.start}-{span.end}/{size}"


def format_unsatisfied_range(size: int) -> str:
    """The `Content-Range` value of a 416 answer."""
    return f"bytes */{size}"


def resume_from(offset: int) -> str:
    """The `Range` a client resumes with; never a suffix range (the deployed service breaks it)."""
    if offset < 0:
        raise ValueError("offset must be >= 0")
    return f"bytes={offset}-"


def parse_content_range(value: str | None) -> ContentRange | None:
    """A `Content-Range: bytes a-b/size` value, or None when absent, malformed or inconsistent."""
    if value is None:
        return None
    match = _CONTENT_RANGE.fullmatch(value.strip())
    if match is None:
        return None
    start, end, size = (int(group) for group in match.groups())
    if start > end or end >= size:
        return None
    return ContentRange(start, end, size)
