"""One JSON error shape for the whole API: `{"code", "message", "request_id"}`.

Handlers here turn every failure into that shape: our own `ApiError`s, FastAPI's validation
errors (422, with a pointed message for the legacy `corpus_path` field), Starlette's 404 and
405, and an unreachable engine (503).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import redis
from fastapi import FastAPI, Request, Response
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ConfigDict
from starlette.exceptions import HTTPException

LEGACY_CORPUS_PATH = (
    "corpus_path is no longer accepted: upload the corpus to Data Bank "
    "and send its id as corpus_file_id"
)


class ErrorBody(BaseModel):
    """Every error response's body."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    code: str
    message: str
    request_id: str


class ApiError(Exception):
    """An error with its HTTP status and machine-readable code."""

    status = 500
    code = "internal_error"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class InvalidRequestError(ApiError):
    """A well-formed request the API cannot act on (an unknown position, ...)."""

    status = 422
    code = "invalid_request"


class ParameterError(ApiError):
    """A parameter checked by hand (hot path) that does not match its pattern."""

    status = 422
    code = "validation_error"


class UnauthorizedError(ApiError):
    """No API key where one is required."""

    status = 401
    code = "unauthorized"


class ForbiddenError(ApiError):
    """A wrong API key."""

    status = 403
    code = "forbidden"


class NotFoundError(ApiError):
    """No such run, tokenizer or artifact (yet)."""

    status = 404
    code = "not_found"


class ConflictError(ApiError):
    """The request contradicts the current state (cancelling a finished run)."""

    status = 409
    code = "conflict"


class NotReadyError(ApiError):
    """The engine is reachable but the consumer groups are not all there."""

    status = 503
    code = "not_ready"


class ReadModelBehindError(ApiError):
    """The projector did not reach `min_position` within the read-your-writes bound."""

    status = 504
    code = "read_model_behind"


_HTTP_CODES = {404: "not_found", 405: "method_not_allowed"}


def request_id(request: Request) -> str:
    """The id `RequestContext` gave this request."""
    value = request.scope.get("state", {}).get("request_id")
    return value if isinstance(value, str) else ""


def error_response(
    request: Request,
    status: int,
    code: str,
    message: str,
    headers: Mapping[str, str] | None = None,
) -> Response:
    """The JSON error response (`RequestContext` adds the request id header)."""
    rid = request_id(request)
    body = ErrorBody(code=code, message=message, request_id=rid).model_dump_json()
    return Response(
        body,
        status_code=status,
        media_type="application/json",
        headers=headers,
    )


def validation_message(errors: Sequence[object]) -> tuple[str, str]:
    """(code, message) for FastAPI's validation errors: one line per error, at most five."""
    parts: list[str] = []
    for error in errors:
        if not isinstance(error, dict):
            continue
        loc = tuple(str(part) for part in error.get("loc", ()))
        if loc == ("body", "corpus_path"):
            return "legacy_corpus_path", LEGACY_CORPUS_PATH
        parts.append(f"{'.'.join(loc) or 'request'}: {error.get('msg', 'invalid')}")
    extra = f" (+{len(parts) - 5} more)" if len(parts) > 5 else ""
    return "validation_error", "; ".join(parts[:5]) + extra


def install(app: FastAPI) -> None:
    """Register the handlers that give every error the one JSON shape."""

    async def api_error(request: Request, error: Exception) -> Response:
        assert isinstance(error, ApiError)
        return error_response(request, error.status, error.code, error.message)

    async def invalid(request: Request, error: Exception) -> Response:
        assert isinstance(error, RequestValidationError)
        code, message = validation_message(error.errors())
        return error_response(request, 422, code, message)

    async def http_error(request: Request, error: Exception) -> Response:
        assert isinstance(error, HTTPException)
        code = _HTTP_CODES.get(error.status_code, f"http_{error.status_code}")
        return error_response(request, error.status_code, code, str(error.detail), error.headers)

    async def engine_down(request: Request, error: Exception) -> Response:
        return error_response(request, 503, "engine_unavailable", f"event log unreachable: {error}")

    app.add_exception_handler(ApiError, api_error)
    app.add_exception_handler(RequestValidationError, invalid)
    app.add_exception_handler(HTTPException, http_error)
    app.add_exception_handler(redis.ConnectionError, engine_down)
    app.add_exception_handler(redis.TimeoutError, engine_down)
