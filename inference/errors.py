"""The inference service's errors, answered in `httpservice`'s one JSON shape.

Each error fixes its status and UPPER_SNAKE code; `install` adds the engine-unreachable case
(503 `ENGINE_UNAVAILABLE`) to `httpservice`'s handlers.
"""

from __future__ import annotations

import redis
from fastapi import FastAPI, Request, Response

from httpservice import ServiceError, error_response, install_error_handlers, request_id


class InferenceError(ServiceError):
    """An inference error: subclasses fix `status` and `code`; raising one takes a message."""

    def __init__(self, message: str) -> None:
        super().__init__(self.status, self.code, message)


class NotFoundError(InferenceError):
    """No such run, or no such alias."""

    status = 404
    code = "NOT_FOUND"


class NoArtifactYetError(InferenceError):
    """The run exists and may still get an artifact (queued, running, trained, uploading)."""

    status = 404
    code = "NO_ARTIFACT_YET"


class NotServableError(InferenceError):
    """The run will never serve: it failed, was cancelled or deleted, or its pointer was
    revoked."""

    status = 409
    code = "RUN_NOT_SERVABLE"


class TextTooLongError(InferenceError):
    """The text to score does not fit the model's context."""

    status = 422
    code = "TEXT_TOO_LONG"


class UnsafeArtifactError(InferenceError):
    """The artifact was refused by safe extraction."""

    status = 502
    code = "UNSAFE_ARTIFACT"


class DataBankError(InferenceError):
    """The artifact could not be downloaded."""

    status = 502
    code = "DATA_BANK_ERROR"


class UnloadableArtifactError(InferenceError):
    """The artifact's files are not a model transformers can load."""

    status = 502
    code = "UNLOADABLE_ARTIFACT"


class NotReadyError(InferenceError):
    """The event log's engine does not answer: no request could be resolved."""

    status = 503
    code = "NOT_READY"


def install(app: FastAPI) -> None:
    """Register the handlers that give every error the one JSON shape."""
    install_error_handlers(app)

    async def engine_down(request: Request, error: Exception) -> Response:
        message = f"event log unreachable: {error}"
        return error_response(503, "ENGINE_UNAVAILABLE", message, request_id(request))

    app.add_exception_handler(redis.ConnectionError, engine_down)
    app.add_exception_handler(redis.TimeoutError, engine_down)
