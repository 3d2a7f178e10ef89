"""The API's errors, answered in the one JSON shape of `httpservice`.

Each error here fixes its HTTP status and UPPER_SNAKE code. `install` adds the API's own
cases to `httpservice`'s handlers: the pointed message for the legacy `corpus_path` field,
and an unreachable engine (503 `ENGINE_UNAVAILABLE`).
"""

from __future__ import annotations

from collections.abc import Sequence

import redis
from fastapi import FastAPI

from httpservice import FieldError, ServiceError, install_error_handlers, install_unavailable

ENGINE_DOWN = "the event log's engine does not answer: try again shortly"
"""What a reader is told; the engine's address and the error stay in the log."""

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


class SpecTooLargeError(ApiError):
    """A training spec beyond the API's bounds (`SpecLimits`), every excess listed."""

    status = 422
    code = "SPEC_TOO_LARGE"

    def __init__(self, errors: Sequence[FieldError]) -> None:
        super().__init__("the spec is larger than this API accepts", errors)


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
    install_unavailable(
        app, (redis.ConnectionError, redis.TimeoutError), "ENGINE_UNAVAILABLE", ENGINE_DOWN
    )
