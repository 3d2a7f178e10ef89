"""Schemathesis over the OpenAPI schema: whatever it sends, the API never answers 5xx."""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Iterator
from typing import Protocol

import pytest
import redis
import schemathesis
import uvicorn
from hypothesis import HealthCheck, given, settings
from schemathesis.core.result import Ok

from events import Consumer, Handlers, RuntimeConfig, names
from events.engine import free_port
from httpservice import ErrorBody
from producers import ApiConfig, create_app
from projections import Projector
from tests.waiting import wait_until


@pytest.fixture(scope="module")
def api_schema(redis_url: str) -> Iterator[schemathesis.BaseSchema]:
    """The API on uvicorn (loopback, a thread), its schema loaded from `/openapi.json`."""
    client = redis.Redis.from_url(redis_url)
    client.flushdb()
    quick = RuntimeConfig(block_ms=50)
    members: list[Consumer | Projector] = [  # live, so /readyz is 200
        Consumer(
            client,
            streams=[names.TRAINING_STREAM],
            group=names.TRAINING_GROUP,
            handlers=Handlers(),
            config=quick,
        ),
        Projector(client, config=quick),
    ]
    consuming = [threading.Thread(target=member.run) for member in members]
    for thread in consuming:
        thread.start()
    config = ApiConfig(
        redis_url=redis_url, read_your_writes_timeout_s=0.05, sse_max_s=0.2, sse_block_ms=50
    )
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(create_app(config), host="127.0.0.1", port=port, log_level="warning")
    )
    thread = threading.Thread(target=server.run)
    thread.start()
    try:
        wait_until(lambda: server.started, what="uvicorn to start")
        yield schemathesis.openapi.from_url(f"http://127.0.0.1:{port}/openapi.json")
    finally:
        server.should_exit = True
        thread.join(10)
        for member, consumer in zip(members, consuming, strict=True):
            member.stop()
            consumer.join(10)
        client.close()


class Reply(Protocol):
    """What the check reads of a response."""

    status_code: int
    content: bytes


class GeneratedCase(Protocol):
    """What the check uses of a generated case."""

    method: str

    @property
    def formatted_path(self) -> str:
        """The path with its parameters filled in."""

    def call(self, *, timeout: float) -> Reply:
        """Send the request."""


def check(case: GeneratedCase) -> None:
    """No 5xx, and every error has the one JSON shape."""
    response = case.call(timeout=10)
    where = f"{case.method} {case.formatted_path}: {response.content!r}"
    assert response.status_code < 500, where
    if response.status_code >= 400:
        assert set(json.loads(response.content)) == set(ErrorBody.model_fields), where
        assert re.fullmatch(
            r"[A-Z][A-Z0-9_]*", ErrorBody.model_validate_json(response.content).code
        )


def test_no_server_errors_on_any_operation(api_schema: schemathesis.BaseSchema) -> None:
    results = list(api_schema.get_all_operations())
    operations = [result.ok() for result in results if isinstance(result, Ok)]
    assert len(operations) == len(results) >= 12
    for operation in operations:
        run = given(case=operation.as_strategy())(check)
        settings(
            max_examples=12,
            deadline=None,
            database=None,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
        )(run)()
