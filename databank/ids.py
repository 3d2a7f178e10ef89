"""File ids: the lowercase hex SHA-256 of a file's bytes.

Validated before any request because the deployed service answers a malformed id with a
plain-text 500, which would otherwise look like a transient failure and be retried.
"""

from __future__ import annotations

import hashlib
import re
from typing import Annotated

from pydantic import AfterValidator

from databank.errors import InvalidFileId

_FILE_ID = re.compile(r"[0-9a-f]{64}")

EMPTY_FILE_ID = hashlib.sha256(b"").hexdigest()
"""The id of the zero-byte file, which the deployed service cannot serve with GET."""


def is_file_id(value: str) -> bool:
    """True when `value` is exactly 64 lowercase hex characters."""
    return _FILE_ID.fullmatch(value) is not None


def validate_file_id(value: str) -> str:
    """Return `value` unchanged when it is a file id; raise `InvalidFileId` otherwise."""
    if not is_file_id(value):
        shown = value if len(value) <= 80 else value[:80] + "..."
        raise InvalidFileId(f"not a file id (64 lowercase hex characters): {shown!r}")
    return value


def _check(value: str) -> str:
    if not is_file_id(value):
        raise ValueError("file id must be 64 lowercase hex characters")
    return value


FileId = Annotated[str, AfterValidator(_check)]
"""A `str` field that only accepts file ids (for pydantic models)."""
