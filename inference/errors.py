"""The inference service's errors, answered in `httpservice`'s one JSON shape.

Each error fixes its status and UPPER_SNAKE code; `install` adds the engine-unreachable case
(503 `ENGINE_UNAVAILABLE`) to `httpservice`'s handlers.
"""

from __future__ import annotations

import logging
import re

import redis
from fastapi import FastAPI

from httpservice import ServiceError, install_error_handlers, install_unavailable

ENGINE_DOWN = "the event log's engine does not answer: try again shortly"
"""What a caller is told; the engine's address and the error stay in the log."""


log = logging.getLogger(__name__)

_DIRECTORIES = re.compile(r"(?<![\w.])/(?:[^\s'\"/:]+/)+")
"""The directories of an absolute path (`/a/b/` of `/a/b/c`); a URL's path is left alone."""


def without_paths(text: str) -> str:
    """`text` with every absolute path cut to its last part: a caller of this service learns
    which file was wrong, never where this host keeps it."""
    return _DIRECTORIES.sub("", text)


def artifact_error(kind: type[InferenceError], what: str, error: Exception) -> InferenceError:
    """`kind` saying `what: error` without this host's paths; the full error is logged."""
    log.warning("%s: %s", what, error, extra={"error_code": kind.code})
    return kind(f"{what}: {without_paths(str(error))}")


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


class ModelTooLargeError(InferenceError):
    """The artifact's model has more parameters than this service loads."""

    status = 502
    code = "MODEL_TOO_LARGE"


class PointerRefusedError(InferenceError):
    """The run's pointer is unsigned or its signature does not verify under this deployment's
    keys: someone other than its workers wrote it, so its file is not fetched. The code is the
    refusal's: `POINTER_UNSIGNED`, `POINTER_KEY_UNKNOWN` or `POINTER_SIGNATURE_INVALID`."""

    status = 502
    code = "POINTER_SIGNATURE_INVALID"

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


class NotReadyError(InferenceError):
    """The event log's engine does not answer: no request could be resolved."""

    status = 503
    code = "NOT_READY"


def install(app: FastAPI) -> None:
    """Register the handlers that give every error the one JSON shape."""
    install_error_handlers(app)
    install_unavailable(
        app, (redis.ConnectionError, redis.TimeoutError), "ENGINE_UNAVAILABLE", ENGINE_DOWN
    )
