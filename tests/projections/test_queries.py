"""Typed read-model queries, sync and async, over a projected read model."""

from __future__ import annotations

import asyncio

import pytest
import redis
import redis.asyncio

from events import EventLog, names, text
from projections import AsyncReadModel, Projector, ReadModel, position
from projections.queries import passed
from tests.events.appending import append_all
from tests.projections.factories import FILE_A, Clock, completed_run, run_events, tokenizer_events
from tests.projections.helpers import FAST, drain


@pytest.fixture
def projected(redis_client: redis.Redis) -> redis.Redis:
    """Runs r0..r4 requested one second apart (r0..r2 completed), one tokenizer completed."""
    clock = Clock()
    events = [e for run in ("r0", "r1", "r2") for e in completed_run(run, clock)]
    events += [run_events(run, clock)["training.requested"]() for run in ("r3", "r4")]
    make = tokenizer_events("t0", clock)
    events += [make[k]() for k in ("tokenizer.requested", "tokenizer.completed")]
    events += [make["artifact.pointer_set"](), run_events("r1", clock)["training.failed"]()]
    append_all(redis_client, events)
    drain(Projector(redis_client, config=FAST))
    return redis_client


def test_sync_queries(projected: redis.Redis) -> None:
    reads = ReadModel(projected)
    pointer = reads.run_artifact("r0")
    assert pointer is not None
    assert pointer.file_id == FILE_A
    assert reads.run_artifact("r4") is None
    assert reads.tokenizer_artifact("t0") == pointer
    run = reads.run_status("r0")
    assert run is not None
    assert run.status == "completed"
    assert run.metrics is not None
    assert run.requested_at is not None
    assert run.completed_at is not None
    failed = reads.run_status("r1")
    assert failed is not None
    assert (failed.status, failed.message) == ("failed", "out of memory")
    assert reads.run_status("nope") is None
    tokenizer = reads.tokenizer_status("t0")
    assert tokenizer is not None
    assert (tokenizer.status, tokenizer.vocab_size) == ("completed", 512)
    assert reads.tokenizer_status("nope") is None


def test_runs_page_newest_first(projected: redis.Redis) -> None:
    reads = ReadModel(projected)
    first = reads.runs(limit=2)
    assert [r.run_id for r in first.items] == ["r4", "r3"]
    assert (first.total, first.next_offset) == (5, 2)
    last = reads.runs(offset=4, limit=2)
    assert [r.run_id for r in last.items] == ["r0"]
    assert last.next_offset is None


def test_an_index_member_without_a_record_is_skipped(projected: redis.Redis) -> None:
    projected.delete(names.run_status_key("r4"))
    assert [r.run_id for r in ReadModel(projected).runs(limit=2).items] == ["r3"]


def test_applied_needs_the_checkpoint_and_no_pending_entry(redis_client: redis.Redis) -> None:
    reads = ReadModel(redis_client)
    entry = EventLog(redis_client).append(run_events("r9")["training.requested"]()).entry_id
    assert not reads.applied(entry)
    projector = Projector(redis_client, config=FAST)
    projector.consumer.ensure_groups()
    redis_client.xreadgroup(names.PROJECTOR_GROUP, "holder", {names.TRAINING_STREAM: ">"})
    later = EventLog(redis_client).append(run_events("r9")["training.started"]()).entry_id
    checkpoint = names.checkpoint_key(names.PROJECTOR_GROUP, names.TRAINING_STREAM)
    redis_client.set(checkpoint, later)
    assert not reads.applied(entry)  # past it, but the entry itself still waits
    redis_client.xack(names.TRAINING_STREAM, names.PROJECTOR_GROUP, entry)
    assert reads.applied(entry)


def test_positions() -> None:
    assert position("12-3") == (12, 3)
    assert position("2-0") < position("10-0")
    with pytest.raises(ValueError, match="not a stream position"):
        position("12")
    with pytest.raises(ValueError, match="not a stream position"):
        position(f"{2**64}-0")
    assert position(f"{2**64 - 1}-0") == (2**64 - 1, 0)
    assert not passed(None, "1-0")
    assert passed(b"1-1", "1-0")


def test_async_queries_match_sync(projected: redis.Redis, redis_url: str) -> None:
    async def scenario() -> None:
        client = redis.asyncio.Redis.from_url(redis_url)
        reads = AsyncReadModel(client)
        sync = ReadModel(projected)
        try:
            assert await reads.run_artifact("r0") == sync.run_artifact("r0")
            assert await reads.tokenizer_artifact("t0") == sync.tokenizer_artifact("t0")
            assert await reads.run_status("r1") == sync.run_status("r1")
            assert await reads.tokenizer_status("t0") == sync.tokenizer_status("t0")
            assert await reads.runs(offset=1, limit=3) == sync.runs(offset=1, limit=3)
            checkpoint = names.checkpoint_key(names.PROJECTOR_GROUP, names.TRAINING_STREAM)
            done = text(await client.get(checkpoint) or b"")
            assert await reads.applied(done)
            assert not await reads.applied("99999999999999-0")
        finally:
            await client.aclose()

    asyncio.run(scenario())
