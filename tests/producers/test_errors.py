"""One JSON error shape everywhere, request ids, and the last-resort 500."""

from __future__ import annotations

import asyncio

import pytest
import redis
from fastapi.testclient import TestClient
from starlette.types import Message, Receive, Scope, Send

from events import names
from producers import ApiConfig
from producers.context import RequestContext
from producers.errors import validation_message
from producers.metrics import ApiMetrics
from producers.services import Services


def test_unknown_routes_and_methods(api: TestClient) -> None:
    missing = api.get("/nowhere")
    assert missing.status_code == 404
    assert missing.json() == {
        "code": "not_found",
        "message": "Not Found",
        "request_id": missing.headers["x-request-id"],
    }
    wrong = api.delete("/runs")
    assert (wrong.status_code, wrong.json()["code"]) == (405, "method_not_allowed")
    assert wrong.headers["allow"] == "GET"


def test_request_ids_are_echoed_when_sane(api: TestClient) -> None:
    echoed = api.get("/healthz", headers={"X-Request-ID": "trace-1:a.b_c"})
    assert echoed.headers["x-request-id"] == "trace-1:a.b_c"
    replaced = api.get("/healthz", headers={"X-Request-ID": "no spaces please"})
    assert replaced.headers["x-request-id"] not in ("", "no spaces please")
    assert api.get("/healthz").headers["x-request-id"] != replaced.headers["x-request-id"]


def test_an_unexpected_failure_is_a_json_500(api: TestClient, redis_client: redis.Redis) -> None:
    redis_client.hset(names.run_status_key("r1"), "status", "exploded")
    response = api.get("/runs/r1", headers={"X-Request-ID": "boom"})
    assert response.status_code == 500
    assert response.json() == {
        "code": "internal_error",
        "message": "internal error; see the server log",
        "request_id": "boom",
    }


def test_many_validation_errors_are_summarized(api: TestClient) -> None:
    body = {f"field{i}": i for i in range(7)}
    message = api.post("/tokenizers/train", json=body).json()["message"]
    assert message.endswith("(+3 more)")
    assert message.count(";") == 4


def test_validation_message_ignores_odd_entries() -> None:
    assert validation_message([1, {"loc": (), "msg": "bad"}]) == (
        "validation_error",
        "request: bad",
    )


def test_services_exist_only_within_the_lifespan() -> None:
    services = Services(ApiConfig(redis_url="redis://127.0.0.1:1/0"))
    for name in ("aio", "client", "reads", "log"):
        with pytest.raises(RuntimeError, match="lifespan"):
            getattr(services, name)


def test_the_context_passes_other_scopes_and_late_failures() -> None:
    seen: list[str] = []

    async def inner(scope: Scope, receive: Receive, send: Send) -> None:
        seen.append(str(scope["type"]))
        if scope["type"] == "http":
            await send({"type": "http.response.start", "status": 200, "headers": []})
            raise RuntimeError("failed while streaming")

    sent: list[Message] = []

    async def send(message: Message) -> None:
        sent.append(message)

    async def receive() -> Message:
        return {"type": "http.request"}

    context = RequestContext(inner, ApiMetrics(lambda: redis.Redis()))
    http = {"type": "http", "method": "GET", "path": "/", "headers": []}
    asyncio.run(context({"type": "lifespan"}, receive, send))
    asyncio.run(context(http, receive, send))
    assert seen == ["lifespan", "http"]
    assert [m["type"] for m in sent] == ["http.response.start"]
