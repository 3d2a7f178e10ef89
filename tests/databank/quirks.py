"""An ASGI layer that makes the correct local server behave like the deployed Data Bank.

Each quirk listed at the end of `docs/databank-protocol.md`, emulated on top of the real server:
suffix ranges served as `bytes=0-n`; a plain-text 500 for a malformed file id and for GET of a
zero-byte file; FastAPI's 422 for a POST without a `file` part, before any key check; 416 with
code `INVALID_RANGE`; `request_id: null` (and no `X-Request-ID` header); `; charset=utf-8`
added to the content type of a full download. The unquoted ETag needs no emulation: the local
server answers it that way too. `created_at: null` is injected per test (`Fault` answers).
"""

from __future__ import annotations

import json

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from databank import is_file_id
from tests.databank.faults import drain

_DETAIL_422 = {
    "detail": [{"type": "missing", "loc": ["body", "file"], "msg": "Field required", "input": None}]
}


async def _plain_500(send: Send) -> None:
    body = b"Internal Server Error"
    headers = [(b"content-type", b"text/plain; charset=utf-8"), (b"content-length", b"21")]
    await send({"type": "http.response.start", "status": 500, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def _json(send: Send, status: int, payload: object) -> None:
    body = json.dumps(payload).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def _replay(body: bytes) -> Receive:
    sent = False

    async def receive() -> Message:
        nonlocal sent
        if sent:
            return {"type": "http.disconnect"}
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    return receive


def _wrong_suffix(scope: Scope) -> None:
    """The deployed service reads `bytes=-n` as `bytes=0-n`."""
    headers = MutableHeaders(scope=scope)
    value = headers.get("range", "")
    if value.startswith("bytes=-"):
        headers["range"] = "bytes=0-" + value.removeprefix("bytes=-")


class _Answer:
    """Rewrites one answer on its way out."""

    def __init__(self, scope: Scope, send: Send) -> None:
        self._method = scope["method"]
        self._send = send
        self._start: Message | None = None
        self._error_body = bytearray()
        self._swallow = False

    async def send(self, message: Message) -> None:
        if self._swallow:
            return
        if message["type"] == "http.response.start":
            await self._on_start(message)
        elif self._start is not None:
            await self._on_error_body(message)
        else:
            await self._send(message)

    async def _on_start(self, message: Message) -> None:
        headers = MutableHeaders(scope=message)
        status: int = message["status"]
        if "x-request-id" in headers:
            del headers["x-request-id"]
        if self._method == "GET" and status == 200 and headers.get("accept-ranges") == "bytes":
            if headers.get("content-length") == "0":
                self._swallow = True
                await _plain_500(self._send)
                return
            headers["content-type"] = headers["content-type"] + "; charset=utf-8"
        if status >= 400 and headers.get("content-type") == "application/json":
            self._start = message
            return
        await self._send(message)

    async def _on_error_body(self, message: Message) -> None:
        self._error_body.extend(message.get("body", b""))
        if message.get("more_body", False):
            return
        assert self._start is not None
        payload = json.loads(bytes(self._error_body))
        payload["request_id"] = None
        if payload.get("code") == "RANGE_NOT_SATISFIABLE":
            payload["code"] = "INVALID_RANGE"
        body = json.dumps(payload).encode()
        MutableHeaders(scope=self._start)["content-length"] = str(len(body))
        await self._send(self._start)
        await self._send({"type": "http.response.body", "body": body})


class DeployedQuirks:
    """Wrap the local server's app to emulate the deployed service."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope["path"]
        parts = path.split("/")
        if path.startswith("/files/") and not is_file_id(parts[2]):
            await drain(receive)
            await _plain_500(send)
            return
        if scope["method"] == "POST" and path == "/files":
            body = await drain(receive)
            if b'name="file"' not in body:
                await _json(send, 422, _DETAIL_422)
                return
            receive = _replay(body)
        _wrong_suffix(scope)
        await self.app(scope, receive, _Answer(scope, send).send)
