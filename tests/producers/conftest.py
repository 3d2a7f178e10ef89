"""The API served by the ASGI test client (lifespan included) over the session's engine."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
import redis
from fastapi.testclient import TestClient

from producers import ApiConfig, create_app

MakeApi = Callable[..., TestClient]


@pytest.fixture
def make_api(redis_url: str, redis_client: redis.Redis) -> Iterator[MakeApi]:
    """Build API clients on a flushed database; every one is closed after the test."""
    opened: list[TestClient] = []

    def make(
        *,
        api_key: str | None = None,
        timeout_s: float = 2.0,
        sse_max_s: float = 1.0,
        url: str | None = None,
    ) -> TestClient:
        config = ApiConfig(
            redis_url=url or redis_url,
            api_key=api_key,
            read_your_writes_timeout_s=timeout_s,
            read_your_writes_poll_s=0.005,
            sse_max_s=sse_max_s,
            sse_block_ms=50,
        )
        client = TestClient(create_app(config), raise_server_exceptions=False)
        client.__enter__()
        opened.append(client)
        return client

    yield make
    for client in opened:
        client.__exit__(None, None, None)


@pytest.fixture
def api(make_api: MakeApi) -> TestClient:
    """The API without an API key."""
    return make_api()
