"""One JSON error shape for every service: `{"code", "message", "request_id", "errors"}`.

Route code raises `ServiceError` (or a subclass); `install_error_handlers` turns it, FastAPI's
validation errors and Starlette's HTTP errors (unknown route, wrong method) into that shape.
Codes are UPPER_SNAKE; `errors` lists every validation failure so a client fixes them all at
once instead of one per round trip.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence

from fastapi import FastAPI, Request, Response
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException

from httpservice.body import ErrorBody, FieldError
from httpservice.requestid import request_id

log = logging.getLogger(__name__)

SUMMARIZED = 5
"""Validation failures spelled out in `message`; `errors` lists them all."""

_HTTP_CODES = {404: "NOT_FOUND", 405: "METHOD_NOT_ALLOWED"}


class ServiceError(Exception):
    """An error answered as `ErrorBody`: status, UPPER_SNAKE code, message, extra headers.

    Subclasses may fix `status` and `code` as class attributes and take only a message.
    """

    status: int = 500
    code: str = "INTERNAL_ERROR"

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        headers: Mapping[str, str] | None = None,
        errors: Sequence[FieldError] = (),
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = dict(headers or {})
        self.errors = list(errors)


def error_response(
    status: int,
    code: str,
    message: str,
    request_id: str | None,
    headers: Mapping[str, str] | None = None,
    errors: Sequence[FieldError] = (),
) -> Response:
    """The JSON error response (the middleware adds the `X-Request-ID` header)."""
    body = ErrorBody(code=code, message=message, request_id=request_id, errors=list(errors))
    return Response(
        body.model_dump_json(), status_code=status, media_type="application/json", headers=headers
    )


def field_errors(errors: Sequence[object]) -> list[FieldError]:
    """FastAPI's validation errors as `FieldError`s (entries of another shape are skipped)."""
    found: list[FieldError] = []
    for error in errors:
        if isinstance(error, dict):
            where = ".".join(str(part) for part in error.get("loc", ()))
            found.append(FieldError(field=where or "request", message=str(error.get("msg"))))
    return found


def summary(errors: Sequence[FieldError]) -> str:
    """One line for `message`: the first few failures, and how many more there are."""
    parts = [f"{error.field}: {error.message}" for error in errors[:SUMMARIZED]]
    more = f" (+{len(errors) - SUMMARIZED} more)" if len(errors) > SUMMARIZED else ""
    return ("; ".join(parts) or "invalid request") + more


def install_error_handlers(
    app: FastAPI,
    *,
    validation_status: int = 422,
    validation_code: str = "VALIDATION_ERROR",
    legacy: Callable[[list[FieldError]], ServiceError | None] | None = None,
) -> None:
    """Answer every handled error with `ErrorBody`.

    `legacy` may turn a validation failure into a pointed error (a field that was removed
    and what replaces it); when it returns None the failures are answered as they are.
    """

    def answer(request: Request, error: ServiceError) -> Response:
        return error_response(
            error.status,
            error.code,
            error.message,
            request_id(request),
            error.headers,
            error.errors,
        )

    async def service_error(request: Request, error: Exception) -> Response:
        assert isinstance(error, ServiceError)
        return answer(request, error)

    async def invalid(request: Request, error: Exception) -> Response:
        assert isinstance(error, RequestValidationError)
        errors = field_errors(error.errors())
        pointed = legacy(errors) if legacy is not None else None
        if pointed is None:
            pointed = ServiceError(
                validation_status, validation_code, summary(errors), None, errors
            )
        return answer(request, pointed)

    async def http_error(request: Request, error: Exception) -> Response:
        assert isinstance(error, HTTPException)
        code = _HTTP_CODES.get(error.status_code, f"HTTP_{error.status_code}")
        message = f"{request.method} {request.url.path}: {error.detail}"
        return answer(request, ServiceError(error.status_code, code, message, error.headers))

    app.add_exception_handler(ServiceError, service_error)
    app.add_exception_handler(RequestValidationError, invalid)
    app.add_exception_handler(HTTPException, http_error)


def install_unavailable(
    app: FastAPI, kinds: Sequence[type[Exception]], code: str, message: str
) -> None:
    """Answer the `kinds` of error (a dependency down) 503 `code` with a fixed `message`: the
    error's own text names the dependency's address, which goes to the log, not to a reader."""

    async def unavailable(request: Request, error: Exception) -> Response:
        rid = request_id(request)
        log.warning("%s: %s", message, error, extra={"request_id": rid, "error_code": code})
        return error_response(503, code, message, rid)

    for kind in kinds:
        app.add_exception_handler(kind, unavailable)
