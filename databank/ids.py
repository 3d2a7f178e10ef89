"""File ids: the lowercase hex SHA-256 of a file's bytes, as the client and the server spell them.

The client refuses a malformed id before sending (`validate_file_id`); the server's routes
accept only `FILE_ID_PATTERN`.
"""

from __future__ import annotations

import hashlib
import re
from typing import Annotated

from pydantic import AfterValidator

FILE_ID_PATTERN = "[0-9a-f]{64}"
"""A file id, as a regular expression."""
_FILE_ID = re.compile(FILE_ID_PATTERN)

EMPTY_FILE_ID = hashlib.sha256(b"").hexdigest()
"""The id of the zero-byte file, which the deployed service cannot serve with GET."""


def is_file_id(value: str) -> bool:
    """True when `value` is exactly 64 lowercase hex characters."""
    return _FILE_ID.fullmatch(value) is not None


def _check(value: str) -> str:
    if not is_file_id(value):
        raise ValueError("file id must be 64 lowercase hex characters")
    return value


FileId = Annotated[str, AfterValidator(_check)]
"""A `str` field that only accepts file ids (for pydantic models)."""
