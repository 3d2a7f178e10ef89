"""The pipelined GET client: wire format, replies split anywhere, errors, reconnects, auth."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest
import redis

from events.engine import free_port
from projections.resp import GetClient, _Protocol, command, parse


class Wire(asyncio.Transport):
    """A transport that records what is written."""

    def __init__(self) -> None:
        super().__init__()
        self.sent: list[bytes] = []
        self.closed = False

    def write(self, data: bytes | bytearray | memoryview) -> None:
        self.sent.append(bytes(data))

    def close(self) -> None:
        self.closed = True


def test_command_and_parse() -> None:
    assert command(b"GET", b"k") == b"*2\r\n$3\r\nGET\r\n$1\r\nk\r\n"
    assert parse(b"$3\r\nabc\r\n$-1\r\n") == (b"abc", 9)
    assert parse(b"$-1\r\n") == (None, 5)
    assert parse(b"+OK\r\n") == (b"OK", 5)
    assert parse(b"$3\r\nab") == (None, 0)
    assert parse(b"$3") == (None, 0)
    error, used = parse(b"-ERR nope\r\n")
    assert isinstance(error, redis.ResponseError)
    assert str(error) == "ERR nope"
    assert used == 11
    with pytest.raises(redis.ConnectionError, match="unexpected reply"):
        parse(b":1\r\n")


def test_replies_resolve_in_order_however_the_bytes_arrive() -> None:
    async def scenario() -> None:
        protocol = _Protocol()
        wire = Wire()
        protocol.connection_made(wire)
        first, second, third = (protocol.send(command(b"GET", k)) for k in (b"a", b"b", b"c"))
        third.cancel()
        await asyncio.sleep(0)  # the queued commands leave in one write
        assert wire.sent == [command(b"GET", b"a") + command(b"GET", b"b") + command(b"GET", b"c")]
        for piece in (b"$1\r", b"\nx\r\n-ERR b", b"ad\r\n$-1\r\n"):
            protocol.data_received(piece)
        assert first.result() == b"x"
        with pytest.raises(redis.ResponseError, match="bad"):
            second.result()
        assert protocol.buffer == b""

    asyncio.run(scenario())


def test_a_reply_out_of_step_fails_everything_waiting() -> None:
    async def scenario() -> None:
        protocol = _Protocol()
        wire = Wire()
        protocol.connection_made(wire)
        waiter = protocol.send(command(b"GET", b"a"))
        protocol.data_received(b"*1\r\n")
        assert wire.closed
        assert protocol.lost
        with pytest.raises(redis.ConnectionError):
            waiter.result()
        protocol.connection_lost(None)

    asyncio.run(scenario())


def test_commands_queued_after_a_loss_are_not_written() -> None:
    async def scenario() -> None:
        protocol = _Protocol()
        wire = Wire()
        protocol.connection_made(wire)
        waiter = protocol.send(command(b"GET", b"a"))
        abandoned = protocol.send(command(b"GET", b"b"))
        abandoned.cancel()
        protocol.connection_lost(OSError("reset"))
        assert abandoned.cancelled()
        await asyncio.sleep(0)
        assert wire.sent == []
        with pytest.raises(redis.ConnectionError, match="reset"):
            waiter.result()

    asyncio.run(scenario())


def test_against_the_engine(redis_client: redis.Redis, redis_url: str) -> None:
    redis_client.set("k", "v")
    redis_client.hset("h", "f", "v")

    async def scenario() -> None:
        keys = GetClient.from_url(redis_url)
        assert list(await asyncio.gather(keys.get("k"), keys.get("missing"))) == [b"v", None]
        with pytest.raises(redis.ResponseError, match="WRONGTYPE"):
            await keys.get("h")
        assert keys._protocol is not None
        lost = keys._protocol
        lost.close()
        for _ in range(1000):  # bounded: the loop reports the loss within a few turns
            if lost.lost:
                break
            await asyncio.sleep(0)
        assert lost.lost
        assert await keys.get("k") == b"v"  # reconnected
        await keys.close()
        assert await keys.get("k") == b"v"
        await keys.close()
        await keys.close()

    asyncio.run(scenario())


@pytest.fixture
def acl_user(redis_client: redis.Redis) -> Iterator[str]:
    redis_client.acl_setuser(
        "tl-test", enabled=True, passwords=["+secret"], keys=["*"], commands=["+@all"]
    )
    yield "tl-test"
    redis_client.acl_deluser("tl-test")


def test_auth_and_database_from_the_url(
    redis_client: redis.Redis, redis_url: str, acl_user: str
) -> None:
    base = redis_url.rsplit("/", 1)[0].replace("redis://", "")
    redis.Redis.from_url(f"redis://{base}/1").set("k", "db1")

    async def scenario() -> None:
        authed = GetClient.from_url(f"redis://{acl_user}:secret@{base}/1")
        assert await authed.get("k") == b"db1"
        await authed.close()
        wrong = GetClient.from_url(f"redis://{acl_user}:wrong@{base}/0")
        with pytest.raises(redis.ResponseError):
            await wrong.get("k")
        assert wrong._protocol is None
        no_user = GetClient.from_url(f"redis://:secret@{base}/0")
        with pytest.raises(redis.ResponseError):
            await no_user.get("k")

    try:
        asyncio.run(scenario())
    finally:
        redis.Redis.from_url(f"redis://{base}/1").flushdb()


def test_an_unreachable_engine_is_a_connection_error() -> None:
    async def scenario() -> None:
        with pytest.raises(redis.ConnectionError, match="cannot reach"):
            await GetClient("127.0.0.1", free_port()).get("k")

    asyncio.run(scenario())


def test_urls() -> None:
    client = GetClient.from_url("rediss://user:p%40ss@example.org:7000/3")
    assert (client.host, client.port, client.db, client.tls) == ("example.org", 7000, 3, True)
    assert (client.username, client.password) == ("user", "p@ss")
    default = GetClient.from_url("redis://")
    assert (default.host, default.port, default.db, default.password) == (
        "127.0.0.1",
        6379,
        0,
        None,
    )
    with pytest.raises(ValueError, match="scheme"):
        GetClient.from_url("http://localhost")
