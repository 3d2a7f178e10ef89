"""The shared API key check: one `X-API-Key` rule for every trainledger service that has one."""

from __future__ import annotations

import hmac
from collections.abc import Callable
from typing import Annotated

from fastapi import Security
from fastapi.security import APIKeyHeader

from httpservice.body import ErrorBody
from httpservice.errors import ServiceError

ApiKey = Annotated[str | None, Security(APIKeyHeader(name="X-API-Key", auto_error=False))]
"""Module level: FastAPI resolves (postponed) annotations from the module's globals."""

AUTH_ERRORS: dict[int | str, dict[str, object]] = {
    401: {"model": ErrorBody, "description": "API key required"},
    403: {"model": ErrorBody, "description": "wrong API key"},
}


class UnauthorizedError(ServiceError):
    """No API key where one is required."""

    def __init__(self, message: str) -> None:
        super().__init__(401, "UNAUTHORIZED", message)


class ForbiddenError(ServiceError):
    """A wrong API key."""

    def __init__(self, message: str) -> None:
        super().__init__(403, "FORBIDDEN", message)


def api_key_required(expected: str | None, service: str) -> Callable[[ApiKey], None]:
    """A dependency that lets a request through only with `expected` in `X-API-Key` (every
    request when `expected` is None); compared in constant time."""

    def authorize(given: ApiKey) -> None:
        if expected is None:
            return
        if given is None:
            raise UnauthorizedError(f"{service} requires an X-API-Key header")
        if not hmac.compare_digest(given.encode(), expected.encode()):
            raise ForbiddenError("the X-API-Key is not valid")

    return authorize
