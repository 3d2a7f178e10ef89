"""The API's errors, answered in the one JSON shape of `httpservice`.

Each error here fixes its HTTP status and UPPER_SNAKE code. `install` adds the API's own
cases to `httpservice`'s handlers: the pointed message for the legacy `corpus_path` field,
and an unreachable engine (503 `ENGINE_UNAVAILABLE`).
"""

from __future__ import annotations

from collections.abc import Sequence

import redis
from fastapi import FastAPI, Request, Response

from httpservice import (
    FieldError,
    ServiceError,
    error_response,
    install_error_handlers,
    request_id,
)

LEGACY_CORPUS_PATH = (
    "corpus_path is no longer accepted: upload the corpus to Data Bank "
    "and send its id as corpus_file_id"
)


class ApiError(ServiceError):
    """An API error: subclasses fix `status` and `code`; raising one takes a message."""

    def __init__(self, message: str, errors: Sequence[FieldError] = ()) -> None:
        super().__init__(self.status, self.code, message, errors=errors)


class InvalidRequestError(ApiError):
    """A well-formed request the API cannot act on (an unknown position, ...)."""

    status = 422
    code = "INVALID_REQUEST"


class ParameterError(ApiError):
    """Parameters checked by hand (hot path) that do not match their patterns, all listed."""

    status = 422
    code = "VALIDATION_ERROR"

    def __init__(self, errors: Sequence[FieldError]) -> None:
        super().__init__("; ".join(f"{e.field}: {e.message}" for e in errors), errors)


class IdempotencyKeyReusedError(ApiError):
    """An `Idempotency-Key` sent again with a different body: a new request needs a new key."""

    status = 422
    code = "IDEMPOTENCY_KEY_REUSED"


class UnauthorizedError(ApiError):
    """No API key where one is required."""

    status = 401
    code = "UNAUTHORIZED"


class ForbiddenError(ApiError):
    """A wrong API key."""

    status = 403
    code = "FORBIDDEN"


class NotFoundError(ApiError):
    """No such run, tokenizer or artifact (yet)."""

    status = 404
    code = "NOT_FOUND"


class ConflictError(ApiError):
    """The request contradicts the current state (cancelling a finished run)."""

    status = 409
    code = "CONFLICT"


class NotReadyError(ApiError):
    """The engine is reachable but the consumer groups are not all there."""

    status = 503
    code = "NOT_READY"


class ReadModelBehindError(ApiError):
    """The projector did not reach `min_position` within the read-your-writes bound."""

    status = 504
    code = "READ_MODEL_BEHIND"


class LegacyCorpusPathError(ApiError):
    """A request still sending `corpus_path`: say what replaced it."""

    status = 422
    code = "LEGACY_CORPUS_PATH"


def legacy_corpus_path(errors: list[FieldError]) -> ServiceError | None:
    """The pointed error for the removed `corpus_path` field, when it is among `errors`."""
    if any(error.field == "body.corpus_path" for error in errors):
        return LegacyCorpusPathError(LEGACY_CORPUS_PATH, errors)
    return None


def install(app: FastAPI) -> None:
    """Register the handlers that give every error the one JSON shape."""
    install_error_handlers(app, legacy=legacy_corpus_path)

    async def engine_down(request: Request, error: Exception) -> Response:
        message = f"event log unreachable: {error}"
        return error_response(503, "ENGINE_UNAVAILABLE", message, request_id(request))

    app.add_exception_handler(redis.ConnectionError, engine_down)
    app.add_exception_handler(redis.TimeoutError, engine_down)
