"""Request ids: echo `X-Request-ID` (or make one), return it in a header, and turn an unhandled
exception into the protocol's 500 JSON carrying it."""

from __future__ import annotations

import logging
import uuid

from starlette.datastructures import Headers, MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from databank.httperrors import error_response

_log = logging.getLogger("databank.server")
_MAX_LENGTH = 128


def _incoming(scope: Scope) -> str | None:
    value = Headers(scope=scope).get("x-request-id", "")
    if value and len(value) <= _MAX_LENGTH and value.isascii() and value.isprintable():
        return value
    return None


class RequestIdMiddleware:
    """Pure ASGI (no response buffering), so streamed uploads and downloads pass untouched."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = _incoming(scope) or uuid.uuid4().hex
        scope.setdefault("state", {})["request_id"] = request_id
        started = False

        async def send_with_id(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                MutableHeaders(scope=message).append("X-Request-ID", request_id)
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        except Exception:
            if started:
                raise
            _log.exception("unhandled error in %s %s", scope["method"], scope["path"])
            response = error_response(500, "INTERNAL_ERROR", "internal error", request_id)
            await response(scope, receive, send_with_id)
