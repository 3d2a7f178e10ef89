"""Request ids, as plain ASGI middleware: echo or make one, return it, never leak a bare 500.

Plain ASGI (not `BaseHTTPMiddleware`): no extra task or response buffering per request, so hot
reads stay cheap and streamed uploads and downloads pass untouched.
"""

from __future__ import annotations

import itertools
import logging
import re
import time
import uuid
from collections.abc import Callable

from starlette.requests import HTTPConnection
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from httpservice.body import ErrorBody

log = logging.getLogger(__name__)

HEADER = "X-Request-ID"
INTERNAL_MESSAGE = "internal error; see the server log"

_HEADER = HEADER.lower().encode()
_SANE = re.compile(rb"[A-Za-z0-9._:-]{1,128}")
_PREFIX = uuid.uuid4().hex[:20]
_SEQUENCE = itertools.count(1)

Observer = Callable[[Scope, int, float], None]
"""Called after each HTTP request with its scope, status and duration in seconds."""


def fresh_id() -> str:
    """A new id: this process's random prefix and a counter (unique without a system call),
    32 hex digits like a UUID."""
    return f"{_PREFIX}{next(_SEQUENCE):012x}"


def incoming_id(scope: Scope) -> str | None:
    """The caller's `X-Request-ID` when it is a sane token (it goes into logs and headers)."""
    for name, value in scope["headers"]:
        if name == _HEADER and _SANE.fullmatch(value):
            return str(value.decode())
    return None


def request_id(source: Scope | HTTPConnection) -> str | None:
    """The id the middleware gave this request (None outside it)."""
    scope = source.scope if isinstance(source, HTTPConnection) else source
    value = scope.get("state", {}).get("request_id")
    return value if isinstance(value, str) else None


class RequestIdMiddleware:
    """Give each HTTP request an id, echo it as `X-Request-ID`, time it for `observe`, and
    answer an unhandled exception as a JSON 500 carrying the id."""

    def __init__(self, app: ASGIApp, observe: Observer | None = None) -> None:
        self.app = app
        self.observe = observe

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        rid = incoming_id(scope) or fresh_id()
        scope.setdefault("state", {})["request_id"] = rid
        header = (_HEADER, rid.encode())
        status = 500
        started = False

        async def send_with_id(message: Message) -> None:
            nonlocal status, started
            if message["type"] == "http.response.start":
                status, started = message["status"], True
                message["headers"] = [*message.get("headers", ()), header]
            await send(message)

        begun = time.perf_counter()
        try:
            await self.app(scope, receive, send_with_id)
        except Exception:
            log.exception(
                "unhandled error in %s %s",
                scope["method"],
                scope["path"],
                extra={"request_id": rid},
            )
            if started:
                raise  # the server drops the connection: a cut body must not look complete
            await _internal_error(send_with_id, rid)
        finally:
            if self.observe is not None:
                self.observe(scope, status, time.perf_counter() - begun)


async def _internal_error(send: Send, rid: str) -> None:
    body = ErrorBody(code="INTERNAL_ERROR", message=INTERNAL_MESSAGE, request_id=rid)
    await send(
        {
            "type": "http.response.start",
            "status": 500,
            "headers": [(b"content-type", b"application/json")],
        }
    )
    await send({"type": "http.response.body", "body": body.model_dump_json().encode()})
