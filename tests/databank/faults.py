"""A fault-injecting ASGI layer between the client and a real server, and a request log.

Each queued `Fault` applies to the next request(s) it matches; everything else passes through.
`outage` makes every request fail for a while, as a Data Bank that is down; `applied` counts
what was done, by kind.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from typing import Literal

import anyio
from pydantic import BaseModel, ConfigDict
from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send


class Fault(BaseModel):
    """What to do to a matching request.

    `answer`: read the body, then send `status`/`body`/`headers` instead of the server
    (with a `Content-Length` unless `headers` name one; `("content-length", "")` omits it).
    `cut`: let the server answer but break the connection after `after_bytes` of its body.
    `hang`: never answer (the client's timeout must fire); with `effect`, let the request
    reach the server first and lose only its answer.
    `delay`: a slow answer: wait `delay_s`, then let the server answer.
    """

    model_config = ConfigDict(frozen=True)

    kind: Literal["answer", "cut", "hang", "delay"]
    method: str | None = None
    path: str | None = None
    ranged: bool | None = None
    status: int = 500
    body: bytes = b""
    headers: tuple[tuple[str, str], ...] = (("content-type", "application/json"),)
    after_bytes: int = 0
    effect: bool = False
    delay_s: float = 0.0
    times: int = 1

    def matches(self, scope: Scope) -> bool:
        ranged = "range" in Headers(scope=scope)
        return (
            (self.method is None or scope["method"] == self.method)
            and (self.path is None or str(scope["path"]).startswith(self.path))
            and (self.ranged is None or self.ranged == ranged)
        )


class Seen(BaseModel):
    """A request as it reached the fault layer."""

    model_config = ConfigDict(frozen=True)

    method: str
    path: str
    range: str | None
    request_id: str | None


async def drain(receive: Receive) -> bytes:
    """Read the whole request body."""
    body = bytearray()
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return bytes(body)
        body.extend(message.get("body", b""))
        if not message.get("more_body", False):
            return bytes(body)


async def _until_disconnect(receive: Receive) -> None:
    with anyio.move_on_after(30):
        while (await receive())["type"] != "http.disconnect":
            pass


async def _answer(fault: Fault, receive: Receive, send: Send) -> None:
    await drain(receive)
    headers = [(name.encode(), value.encode()) for name, value in fault.headers if value]
    if not any(name.lower() == "content-length" for name, _ in fault.headers):
        headers.append((b"content-length", str(len(fault.body)).encode()))
    await send({"type": "http.response.start", "status": fault.status, "headers": headers})
    await send({"type": "http.response.body", "body": fault.body})


OUTAGE = Fault(kind="answer", status=503, body=b'{"detail": "Data Bank is down"}', times=0)
"""The answer to every request while an outage lasts."""


class FaultInjector:
    """Wraps an app; `add` queues faults; `seen` logs every request (thread-safe)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self._lock = threading.Lock()
        self._faults: list[Fault] = []
        self._remaining: list[int] = []
        self._down_until = 0.0
        self.seen: list[Seen] = []
        self.applied: Counter[str] = Counter()
        """Requests a fault was applied to, by kind (`outage` for those an outage refused)."""

    def reset(self) -> None:
        """Forget queued faults and the request log."""
        with self._lock:
            self._faults.clear()
            self._remaining.clear()
            self._down_until = 0.0
            self.seen.clear()
            self.applied.clear()

    def add(self, fault: Fault) -> None:
        with self._lock:
            self._faults.append(fault)
            self._remaining.append(fault.times)

    def outage(self, seconds: float) -> None:
        """Answer every request 503 for the next `seconds` (queued faults wait meanwhile)."""
        with self._lock:
            self._down_until = time.monotonic() + seconds

    def requests(self, method: str, path: str) -> list[Seen]:
        with self._lock:
            return [seen for seen in self.seen if seen.method == method and seen.path == path]

    def _take(self, scope: Scope) -> Fault | None:
        with self._lock:
            headers = Headers(scope=scope)
            self.seen.append(
                Seen(
                    method=scope["method"],
                    path=scope["path"],
                    range=headers.get("range"),
                    request_id=headers.get("x-request-id"),
                )
            )
            if time.monotonic() < self._down_until:
                self.applied["outage"] += 1
                return OUTAGE
            for index, fault in enumerate(self._faults):
                if self._remaining[index] > 0 and fault.matches(scope):
                    self._remaining[index] -= 1
                    self.applied[fault.kind] += 1
                    return fault
        return None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        fault = self._take(scope) if scope["type"] == "http" else None
        if fault is None:
            await self.app(scope, receive, send)
        elif fault.kind == "answer":
            await _answer(fault, receive, send)
        elif fault.kind == "cut":
            await self._cut(fault, scope, receive, send)
        elif fault.kind == "delay":
            await anyio.sleep(fault.delay_s)
            await self.app(scope, receive, send)
        else:
            await self._hang(fault, scope, receive)

    async def _cut(self, fault: Fault, scope: Scope, receive: Receive, send: Send) -> None:
        sent = 0
        cut = False

        async def cutting(message: Message) -> None:
            nonlocal sent, cut
            if cut:
                return
            if message["type"] != "http.response.body":
                await send(message)
                return
            body: bytes = message.get("body", b"")
            kept = body[: max(0, fault.after_bytes - sent)]
            sent += len(kept)
            cut = len(kept) < len(body) or not message.get("more_body", False)
            await send({"type": "http.response.body", "body": kept, "more_body": True})

        # Returning with the answer incomplete makes uvicorn close the connection.
        await self.app(scope, receive, cutting)

    async def _hang(self, fault: Fault, scope: Scope, receive: Receive) -> None:
        async def swallow(message: Message) -> None:
            return None

        if fault.effect:
            await self.app(scope, receive, swallow)
        else:
            await drain(receive)
        await _until_disconnect(receive)
