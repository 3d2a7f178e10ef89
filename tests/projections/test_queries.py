"""Typed read-model queries, sync and async, over a projected read model."""

from __future__ import annotations

import asyncio

import pytest
import redis
import redis.asyncio

from events import EventLog, names, text
from projections import AsyncReadModel, Projector, ReadModel, RunFilter, position
from projections.queries import passed
from tests.events.appending import append_all
from tests.projections.factories import (
    FILE_A,
    SIGNING_KEYS,
    TAGS,
    Clock,
    alias_events,
    completed_run,
    run_events,
    tokenizer_events,
)
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
    events += [run_events("r0", clock)["training.progress"](step=4)]
    aliases = alias_events("m0", clock)
    events += [aliases["model.alias_set"](), aliases["model.alias_set"](run="r2", alias="dev")]
    events += [
        alias_events("m1", clock)["model.alias_set"](),
        alias_events("m1", clock)["model.alias_removed"](),
    ]
    append_all(redis_client, events)
    drain(Projector(redis_client, SIGNING_KEYS, config=FAST))
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
    projector = Projector(redis_client, SIGNING_KEYS, config=FAST)
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
            wanted = RunFilter(status="completed", name="r[02]*")
            filtered = await reads.runs(limit=1, wanted=wanted)
            assert filtered == sync.runs(limit=1, wanted=wanted)
            assert await reads.run_metrics("r0") == sync.run_metrics("r0")
            assert await reads.tokenizers() == sync.tokenizers()
            assert await reads.models() == sync.models()
            checkpoint = names.checkpoint_key(names.PROJECTOR_GROUP, names.TRAINING_STREAM)
            done = text(await client.get(checkpoint) or b"")
            assert await reads.applied(done)
            assert not await reads.applied("99999999999999-0")
        finally:
            await client.aclose()

    asyncio.run(scenario())


def test_run_names_tags_and_progress_are_in_the_status(projected: redis.Redis) -> None:
    run = ReadModel(projected).run_status("r0")
    assert run is not None
    assert (run.name, run.tags) == ("r0 name", TAGS)
    assert run.progress is not None
    assert (run.progress.step, run.progress.total_steps) == (4, 20)
    assert (run.progress.train_loss, run.progress.val_loss) == (3.6, 3.5)
    plain = ReadModel(projected).run_status("r1")
    assert plain is not None
    assert plain.progress is None


def test_filters_match_status_name_pattern_and_every_tag(projected: redis.Redis) -> None:
    reads = ReadModel(projected)

    def ids(wanted: RunFilter, **page: int) -> list[str]:
        return [r.run_id for r in reads.runs(wanted=wanted, **page).items]

    assert ids(RunFilter(status="completed")) == ["r2", "r0"]
    assert ids(RunFilter(name="r3 name")) == ["r3"]
    assert ids(RunFilter(name="r*", status="queued")) == ["r4", "r3"]
    assert ids(RunFilter(tags={"dataset": "tiny"}), offset=1, limit=2) == ["r3", "r2"]
    assert reads.runs(wanted=RunFilter(tags={"dataset": "tiny"})).total == 5
    assert ids(RunFilter(tags={"dataset": "tiny", "lr": "1"})) == []
    projected.hdel(names.run_status_key("r4"), "tags", "name")
    assert ids(RunFilter(name="*")) == ["r3", "r2", "r1", "r0"]
    assert ids(RunFilter(tags={"dataset": "tiny"})) == ["r3", "r2", "r1", "r0"]


def test_metrics_hold_both_curves(projected: redis.Redis) -> None:
    metrics = ReadModel(projected).run_metrics("r0")
    assert metrics is not None
    assert (metrics.step, metrics.total_steps) == (4, 20)
    assert [(p.step, p.loss) for p in metrics.train] == [(1, 3.9), (2, 3.8), (3, 3.7), (4, 3.6)]
    assert [(p.step, p.loss) for p in metrics.validation] == [(4, 3.5)]
    quiet = ReadModel(projected).run_metrics("r3")
    assert quiet is not None
    assert (quiet.step, quiet.train) == (None, [])
    assert ReadModel(projected).run_metrics("nope") is None


def test_tokenizers_newest_first_a_page_at_a_time(projected: redis.Redis) -> None:
    make = tokenizer_events("t1", Clock())
    append_all(projected, [make["tokenizer.requested"](t=10_000)])
    drain(Projector(projected, SIGNING_KEYS, config=FAST))
    reads = ReadModel(projected)
    page = reads.tokenizers(limit=1)
    assert ([t.tokenizer_id for t in page.items], page.total, page.next_offset) == (["t1"], 2, 1)
    last = reads.tokenizers(offset=1, limit=1)
    assert ([t.tokenizer_id for t in last.items], last.next_offset) == (["t0"], None)


def test_models_list_their_live_aliases(projected: redis.Redis) -> None:
    reads = ReadModel(projected)
    found = {m.name: [(a.alias, a.run_id) for a in m.aliases] for m in reads.models()}
    assert found == {"m0": [("dev", "r2"), ("prod", "r0")], "m1": []}
    assert [m.name for m in reads.models("m0")] == ["m0"]
    assert reads.models("nobody") == []
    assert (reads.alias_run("m0", "dev"), reads.alias_run("m1", "prod")) == ("r2", None)
    projected.hset(names.alias_status_key("m2@x"), "status", "removed")  # not ours: skipped
    assert [m.name for m in reads.models()] == ["m0", "m1"]
