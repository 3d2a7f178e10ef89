"""One factory builds every engine client: URL forms, the policy on every connection, and
Sentinel discovery against real Sentinels."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
import redis.asyncio

from events import DEFAULT_POLICY, ConnectionPolicy, connect, connect_async
from events.connection import SentinelTarget, sentinel_target
from tests.replicated import EngineProcess, ReplicatedEngine, replicated_engine
from tests.waiting import wait_until


@pytest.fixture(scope="module")
def sentinels(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ReplicatedEngine]:
    """A primary, a replica and three Sentinels for this module's tests."""
    with replicated_engine(tmp_path_factory.mktemp("replicated")) as engine:
        yield engine


def test_a_sentinel_url_names_the_sentinels_the_service_the_database_and_credentials() -> None:
    target = sentinel_target("redis+sentinel://user:p%40ss@10.0.0.1:26379,[::1]:26380/main?db=2")
    assert target == SentinelTarget(
        sentinels=(("10.0.0.1", 26379), ("::1", 26380)),
        service="main",
        db=2,
        username="user",
        password="p@ss",
    )
    assert sentinel_target("redis+sentinel://h:1/svc") == SentinelTarget(
        (("h", 1),), "svc", 0, None, None
    )
    assert sentinel_target("redis://127.0.0.1:6379/0") is None


@pytest.mark.parametrize(
    "url",
    [
        "redis+sentinel://h:1",
        "redis+sentinel:///svc",
        "redis+sentinel://h/svc",
        "redis+sentinel://:x/s",
    ],
)
def test_a_sentinel_url_without_sentinels_or_service_is_refused(url: str) -> None:
    with pytest.raises(ValueError, match="sentinel"):
        sentinel_target(url)


def test_every_client_gets_the_policy_timeouts_and_retries() -> None:
    policy = ConnectionPolicy(connect_timeout_s=2.5, socket_timeout_s=7.0, retries=4)
    sync = connect("redis://127.0.0.1:1/3", policy)
    options = sync.connection_pool.connection_kwargs
    assert (options["socket_connect_timeout"], options["socket_timeout"]) == (2.5, 7.0)
    assert options["db"] == 3
    retry = sync.get_retry()
    assert retry is not None
    assert retry.get_retries() == 4
    aio = connect_async("redis://127.0.0.1:1/0", policy)
    assert aio.connection_pool.connection_kwargs["socket_timeout"] == 7.0
    aio_retry = aio.get_retry()
    assert aio_retry is not None
    assert aio_retry.get_retries() == 4


def test_tls_options_travel_in_the_url() -> None:
    client = connect("rediss://127.0.0.1:1/0?ssl_cert_reqs=required&ssl_ca_certs=/etc/ca.pem")
    assert client.connection_pool.connection_class is redis.SSLConnection
    assert client.connection_pool.connection_kwargs["ssl_ca_certs"] == "/etc/ca.pem"
    assert client.connection_pool.connection_kwargs["socket_timeout"] == (
        DEFAULT_POLICY.socket_timeout_s
    )


def test_a_unix_socket_and_a_database_number_are_honoured(tmp_path: Path) -> None:
    socket_path = tmp_path / "engine.sock"
    server = EngineProcess(tmp_path / "unix", ["--unixsocket", str(socket_path), "--save", ""])
    server.start()
    try:
        client = connect(f"unix://{socket_path}?db=2")
        _wait_for_ping(client)
        client.set("where", "db2")
        assert connect(f"unix://{socket_path}?db=0").get("where") is None
        assert connect(f"redis://127.0.0.1:{server.port}/2").get("where") == b"db2"
    finally:
        server.stop()


def _wait_for_ping(client: redis.Redis) -> None:
    def answers() -> bool:
        try:
            return bool(client.ping())
        except redis.ConnectionError:
            return False

    wait_until(answers, what="the engine answers")


def test_a_sentinel_url_reaches_the_primary_sync_and_async(sentinels: ReplicatedEngine) -> None:
    client = connect(sentinels.url)
    client.set("through", "sentinels")
    direct = connect(f"redis://127.0.0.1:{sentinels.primary.port}/0")
    assert direct.get("through") == b"sentinels"

    async def read() -> bytes | None:
        aio = connect_async(sentinels.url)
        try:
            value = await aio.get("through")
            return value if isinstance(value, bytes) else None
        finally:
            await aio.aclose()

    assert asyncio.run(read()) == b"sentinels"
    options = client.connection_pool.connection_kwargs
    assert options["socket_timeout"] == DEFAULT_POLICY.socket_timeout_s


def test_a_policy_without_retries_fails_at_once() -> None:
    client = connect("redis://127.0.0.1:1/0", ConnectionPolicy(retries=0, connect_timeout_s=0.5))
    with pytest.raises(redis.ConnectionError):
        client.ping()
