"""Request ids: echoed when sane, made otherwise, on every answer; the last-resort 500."""

from __future__ import annotations

import asyncio
import logging

import pytest
from starlette.types import Message, Receive, Scope, Send

from httpservice import RequestIdMiddleware, request_id
from tests.httpservice.tinyapp import build_app, client


def test_sane_ids_are_echoed_and_others_replaced() -> None:
    api = client(build_app())
    echoed = api.get("/id", headers={"X-Request-ID": "trace-1:a.b_c"})
    assert echoed.headers["x-request-id"] == "trace-1:a.b_c"
    assert echoed.json() == {"request": "trace-1:a.b_c", "scope": "trace-1:a.b_c"}
    made = [
        api.get("/id", headers={"X-Request-ID": given}).headers["x-request-id"]
        for given in ("no spaces please", "x" * 129, "")
    ]
    assert all(len(rid) == 32 for rid in made)
    assert len({*made, api.get("/id").headers["x-request-id"]}) == 4


def test_an_unhandled_error_is_a_json_500_logged_with_its_id(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.ERROR, logger="httpservice"):
        answer = client(build_app()).get("/boom", headers={"X-Request-ID": "boom-1"})
    assert answer.status_code == 500
    assert answer.headers["x-request-id"] == "boom-1"
    assert answer.json() == {
        "code": "INTERNAL_ERROR",
        "message": "internal error; see the server log",
        "request_id": "boom-1",
        "errors": [],
    }
    [record] = caplog.records
    assert record.getMessage() == "unhandled error in GET /boom"
    assert record.__dict__["request_id"] == "boom-1"


def test_every_request_is_observed_with_its_status() -> None:
    observed: list[tuple[str, int, float]] = []
    api = client(build_app(observed))
    api.get("/id")
    api.get("/boom")
    api.get("/teapot")
    assert [(path, status) for path, status, _ in observed] == [
        ("/id", 200),
        ("/boom", 500),
        ("/teapot", 418),
    ]
    assert all(seconds >= 0 for _, _, seconds in observed)


def _run(middleware: RequestIdMiddleware, scope: Scope) -> list[Message]:
    sent: list[Message] = []

    async def send(message: Message) -> None:
        sent.append(message)

    async def receive() -> Message:
        return {"type": "http.request"}

    asyncio.run(middleware(scope, receive, send))
    return sent


def test_other_scopes_pass_untouched_and_a_late_failure_propagates() -> None:
    seen: list[str] = []

    async def inner(scope: Scope, receive: Receive, send: Send) -> None:
        seen.append(str(scope["type"]))
        if scope["type"] == "http":
            await send({"type": "http.response.start", "status": 200, "headers": []})
            raise RuntimeError("failed while streaming")

    observed: list[int] = []
    middleware = RequestIdMiddleware(
        inner, observe=lambda scope, status, s: observed.append(status)
    )
    assert _run(middleware, {"type": "lifespan"}) == []
    http: Scope = {"type": "http", "method": "GET", "path": "/", "headers": []}
    with pytest.raises(RuntimeError, match="while streaming"):
        _run(middleware, http)
    assert seen == ["lifespan", "http"]
    assert observed == [200]
    assert request_id(http) == http["state"]["request_id"]


def test_no_id_outside_the_middleware() -> None:
    assert request_id({"type": "http"}) is None
    assert request_id({"type": "http", "state": {"request_id": 1}}) is None
