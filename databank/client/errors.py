"""The client's typed errors: catch at the level you care about.

`DataBankError` is the root; every failure the client reports is one of its subclasses, so a
caller never sees a bare parsing or transport exception. Messages never contain the API key.
"""

# The names are the design's vocabulary (`NotFound`, `Forbidden`, ...), as in httpx and starlette.
# ruff: noqa: N818

from __future__ import annotations

from databank.ids import is_file_id


class DataBankError(Exception):
    """A failure talking to Data Bank; carries what the service said, when it said anything."""

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        code: str | None = None,
        request_id: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.code = code
        self.request_id = request_id

    def __str__(self) -> str:
        parts = [self.message]
        if self.status is not None:
            parts.append(f"status={self.status}")
        if self.code is not None:
            parts.append(f"code={self.code}")
        if self.request_id is not None:
            parts.append(f"request_id={self.request_id}")
        return " ".join(parts)


class InvalidFileId(DataBankError, ValueError):
    """A file id that is not 64 lowercase hex characters; raised before any request."""


def validate_file_id(value: str) -> str:
    """Return `value` unchanged when it is a file id; raise `InvalidFileId` otherwise.

    Checked before any request because the deployed service answers a malformed id with a
    plain-text 500, which would otherwise look like a transient failure and be retried.
    """
    if not is_file_id(value):
        shown = value if len(value) <= 80 else value[:80] + "..."
        raise InvalidFileId(f"not a file id (64 lowercase hex characters): {shown!r}")
    return value


class BadRequest(DataBankError):
    """400 (`INVALID_INPUT`, `BAD_REQUEST`) or FastAPI's 422: the request itself was refused."""


class AuthError(DataBankError):
    """The key was missing or lacks the scope."""


class Unauthorized(AuthError):
    """401: no key (or one the service does not know)."""


class Forbidden(AuthError):
    """403: the key lacks the scope for this operation."""


class NotFound(DataBankError):
    """404: no file with this id."""


class PayloadTooLarge(DataBankError):
    """413: the file is over the service's `MAX_FILE_BYTES`."""


class RangeNotSatisfiable(DataBankError):
    """416 (`RANGE_NOT_SATISFIABLE` or `INVALID_RANGE`): the range lies outside the file."""


class InsufficientStorage(DataBankError):
    """507: the service's free disk is below its guard; retrying soon will not help."""


class UnexpectedStatus(DataBankError):
    """A status the protocol does not define (405, 409, 3xx...): service and client disagree."""


class IntegrityError(DataBankError):
    """The bytes do not hash to the file id (upload answer or downloaded content)."""


class InvalidAnswer(DataBankError):
    """A success status with a body or headers that do not match the protocol."""


class ProtocolError(DataBankError):
    """The request could not be made at all (bad URL, local HTTP protocol violation)."""


class TransientError(DataBankError):
    """Connection errors, timeouts, 429 or 5xx persisted past the retry budget."""

    def __init__(
        self,
        message: str,
        *,
        attempts: int,
        status: int | None = None,
        code: str | None = None,
        request_id: str | None = None,
    ) -> None:
        super().__init__(message, status=status, code=code, request_id=request_id)
        self.attempts = attempts

    def __str__(self) -> str:
        return f"{super().__str__()} attempts={self.attempts}"
