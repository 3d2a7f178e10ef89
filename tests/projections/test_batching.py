"""The reads of one event-loop turn share one pipeline; each caller gets its own reply or
error; a caller that went away is skipped."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine

import pytest
import redis
import redis.asyncio

from events import connect_async, free_port
from projections.batching import ReadBatcher


class CountingRedis(redis.asyncio.Redis):
    """A real asyncio client that counts the pipelines made from it."""

    pipelines = 0

    def pipeline(
        self, transaction: bool = True, shard_hint: str | None = None
    ) -> redis.asyncio.client.Pipeline:
        self.pipelines += 1
        return super().pipeline(transaction, shard_hint)


def _run(scenario: Callable[[], Coroutine[None, None, None]]) -> None:
    asyncio.run(scenario())


def test_reads_of_one_turn_share_one_pipeline(redis_client: redis.Redis, redis_url: str) -> None:
    redis_client.set("pointer", "file")
    redis_client.hset("record", mapping={"status": "queued"})

    async def scenario() -> None:
        pool = redis.asyncio.ConnectionPool.from_url(redis_url)
        counting = CountingRedis(connection_pool=pool)
        batcher = ReadBatcher(counting)
        replies = await asyncio.gather(
            batcher.get("pointer"),
            batcher.get("missing"),
            batcher.hgetall("record"),
            batcher.hmget("record", ("status", "name")),
        )
        assert list(replies) == [b"file", None, {b"status": b"queued"}, [b"queued", None]]
        assert counting.pipelines == 1
        assert await batcher.get("pointer") == b"file"
        assert counting.pipelines == 2
        await counting.aclose()
        await pool.aclose()

    _run(scenario)


def test_an_error_reaches_only_its_caller(redis_client: redis.Redis, redis_url: str) -> None:
    redis_client.set("pointer", "file")

    async def scenario() -> None:
        client = connect_async(redis_url)
        batcher = ReadBatcher(client)
        wrong, right = await asyncio.gather(
            batcher.hgetall("pointer"), batcher.get("pointer"), return_exceptions=True
        )
        assert isinstance(wrong, redis.ResponseError)
        assert right == b"file"
        await client.aclose()

    _run(scenario)


def test_a_cancelled_caller_is_skipped(redis_client: redis.Redis, redis_url: str) -> None:
    redis_client.set("pointer", "file")

    async def scenario() -> None:
        client = connect_async(redis_url)
        batcher = ReadBatcher(client)
        gone = asyncio.ensure_future(batcher.get("pointer"))
        await asyncio.sleep(0)  # the read is queued
        gone.cancel()
        assert await batcher.get("pointer") == b"file"
        assert gone.cancelled()
        await client.aclose()

    _run(scenario)


def test_an_unreachable_engine_fails_every_caller() -> None:
    async def scenario() -> None:
        client = connect_async(f"redis://127.0.0.1:{free_port()}/0")
        batcher = ReadBatcher(client)
        replies = await asyncio.gather(
            batcher.get("a"), batcher.hgetall("b"), return_exceptions=True
        )
        assert all(isinstance(reply, redis.ConnectionError) for reply in replies)
        await client.aclose()

    _run(scenario)


@pytest.mark.parametrize("command", ["get", "hgetall"])
def test_a_lone_read_is_answered(redis_client: redis.Redis, redis_url: str, command: str) -> None:
    redis_client.set("k", "v")
    redis_client.hset("h", mapping={"f": "v"})

    async def scenario() -> None:
        client = connect_async(redis_url)
        batcher = ReadBatcher(client)
        reply = await (batcher.get("k") if command == "get" else batcher.hgetall("h"))
        assert reply in (b"v", {b"f": b"v"})
        await client.aclose()

    _run(scenario)
