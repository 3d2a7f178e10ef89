"""Per-request context as plain ASGI middleware: request id, metrics, last-resort 500.

Plain ASGI (not `BaseHTTPMiddleware`) keeps the hot read path free of an extra task and
stream per request. The request id is the caller's `X-Request-ID` when it is a sane token,
else a fresh one; it is echoed on every response and put in every error body.
"""

from __future__ import annotations

import itertools
import logging
import re
import time
import uuid

from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from producers.errors import ErrorBody
from producers.metrics import ApiMetrics

log = logging.getLogger(__name__)

_HEADER = b"x-request-id"
_SANE = re.compile(rb"[A-Za-z0-9._:-]{1,128}")


_PREFIX = uuid.uuid4().hex[:12]
_SEQUENCE = itertools.count(1)


def _incoming(scope: Scope) -> str:
    """The caller's id when sane, else this process's random prefix and a counter: unique
    without a system call per request."""
    for name, value in scope["headers"]:
        if name == _HEADER and _SANE.fullmatch(value):
            return str(value.decode())
    return f"{_PREFIX}-{next(_SEQUENCE):x}"


def _route(scope: Scope) -> str:
    route = scope.get("route")
    return route.path if isinstance(route, Route) else "unmatched"


class RequestContext:
    """Give each HTTP request an id, time and count it, and never leak a bare 500."""

    def __init__(self, app: ASGIApp, metrics: ApiMetrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        rid = _incoming(scope)
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
            log.exception("unhandled error", extra={"request_id": rid})
            if not started:
                await _internal_error(send_with_id, rid)
        finally:
            self.metrics.observe(
                scope["method"], _route(scope), status, time.perf_counter() - begun
            )


async def _internal_error(send: Send, rid: str) -> None:
    body = ErrorBody(
        code="internal_error", message="internal error; see the server log", request_id=rid
    ).model_dump_json()
    await send(
        {
            "type": "http.response.start",
            "status": 500,
            "headers": [(b"content-type", b"application/json")],
        }
    )
    await send({"type": "http.response.body", "body": body.encode()})
