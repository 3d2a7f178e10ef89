"""Schemathesis over the OpenAPI schema: whatever it sends, the API never answers 5xx."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest
import redis
import schemathesis
import uvicorn

from events import Consumer, Handlers, RuntimeConfig, names
from events.engine import free_port
from producers import ApiConfig, create_app
from projections import Projector
from tests.fuzzing import check, probe_all
from tests.projections.factories import SIGNING_KEYS
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
        Projector(client, SIGNING_KEYS, config=quick),
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


def test_no_server_errors_on_any_operation(api_schema: schemathesis.BaseSchema) -> None:
    probe_all(api_schema, check, operations=12, max_examples=12)
