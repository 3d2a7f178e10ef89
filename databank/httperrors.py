"""The local server's one error shape: `{"code", "message", "request_id"}`, for every error.

Route errors raise `ApiError`; FastAPI's validation errors and Starlette's HTTP errors (unknown
route, wrong method) are translated into the same JSON.
"""

from __future__ import annotations

from collections.abc import Mapping

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException
from starlette.types import Scope

from databank.models import ErrorBody

_HTTP_CODES = {404: "NOT_FOUND", 405: "METHOD_NOT_ALLOWED"}


class ApiError(Exception):
    """A protocol error answer: status, code, message and extra headers."""

    def __init__(
        self, status: int, code: str, message: str, headers: Mapping[str, str] | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = dict(headers or {})


def request_id_of(scope: Scope) -> str | None:
    """The request id the middleware put in the scope's state."""
    value = scope.get("state", {}).get("request_id")
    return value if isinstance(value, str) else None


def error_response(
    status: int,
    code: str,
    message: str,
    request_id: str | None,
    headers: Mapping[str, str] | None = None,
) -> JSONResponse:
    """The protocol's error JSON."""
    body = ErrorBody(code=code, message=message, request_id=request_id)
    return JSONResponse(body.model_dump(), status_code=status, headers=headers)


def install_error_handlers(app: FastAPI) -> None:
    """Answer every handled error with the protocol's JSON."""

    @app.exception_handler(ApiError)
    async def api_error(request: Request, exc: ApiError) -> JSONResponse:
        return error_response(
            exc.status, exc.code, exc.message, request_id_of(request.scope), exc.headers
        )

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        problems = "; ".join(
            f"{'.'.join(str(part) for part in error['loc'])}: {error['msg']}"
            for error in exc.errors()
        )
        return error_response(400, "INVALID_INPUT", problems, request_id_of(request.scope))

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException) -> JSONResponse:
        code = _HTTP_CODES.get(exc.status_code, f"HTTP_{exc.status_code}")
        message = f"{request.method} {request.url.path}: {exc.detail}"
        return error_response(
            exc.status_code, code, message, request_id_of(request.scope), exc.headers
        )
