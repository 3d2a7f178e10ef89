"""Rebuild: verify reports exactly the drift, repair fixes it, readers never lose a pointer."""

from __future__ import annotations

import threading

import pytest
import redis

from events import EventLog, names
from projections import (
    LockLostError,
    Projector,
    RebuildBusyError,
    RebuildError,
    rebuild,
    replay,
)
from projections.rebuild import _Lock
from projections.reconcile import Reconciler, canonical, chunks
from tests.projections.factories import FILE_B, Clock, completed_run, run_events, tokenizer_events
from tests.projections.helpers import FAST, drain, snapshot
from tests.waiting import wait_until


@pytest.fixture
def projected(redis_client: redis.Redis) -> redis.Redis:
    """Three completed runs and a trained tokenizer, projected live."""
    clock = Clock()
    events = [e for run in ("r0", "r1", "r2") for e in completed_run(run, clock)]
    make = tokenizer_events("t0", clock)
    events += [make["tokenizer.requested"](), make["tokenizer.completed"]()]
    EventLog(redis_client).append_many(events)
    drain(Projector(redis_client, config=FAST))
    return redis_client


def test_verify_reports_exactly_the_corrupted_keys_and_changes_nothing(
    projected: redis.Redis,
) -> None:
    client = projected
    client.hset(names.run_status_key("r1"), "status", "failed")
    client.delete(names.run_artifact_key("r2"))
    client.set(names.run_artifact_key("r0"), FILE_B)
    client.set(names.run_artifact_key("ghost"), FILE_B)
    client.hset(names.tokenizer_status_key("ghost"), "status", "queued")
    client.zadd(names.RUN_INDEX, {"r0": 1})
    client.hset("runs:not:ours:status", "x", "y")  # not an id the projector writes
    before = snapshot(client)

    report = rebuild(client, verify=True)

    assert not report.applied
    assert set(report.drift.different) == {
        names.run_status_key("r1"),
        names.run_artifact_key("r0"),
        names.RUN_INDEX,
    }
    assert set(report.drift.missing) == {names.run_artifact_key("r2")}
    assert set(report.drift.extra) == {
        names.run_artifact_key("ghost"),
        names.tokenizer_status_key("ghost"),
    }
    assert snapshot(client) == before


def test_rebuild_repairs_the_drift(projected: redis.Redis) -> None:
    client = projected
    reference = snapshot(client)
    client.hset(names.run_status_key("r1"), "status", "failed")
    client.delete(names.run_artifact_key("r2"), names.tokenizer_status_key("t0"))
    client.set(names.tokenizer_artifact_key("ghost"), FILE_B)
    client.zadd(names.RUN_INDEX, {"stranger": 5})

    report = rebuild(client)

    assert report.applied
    assert names.tokenizer_status_key("t0") in report.drift.missing
    assert names.RUN_INDEX in report.drift.different
    assert snapshot(client) == reference
    assert rebuild(client, verify=True).drift.clean


def test_a_revoked_pointer_is_deleted_and_the_index_rebuilt(redis_client: redis.Redis) -> None:
    make = run_events("r1")
    EventLog(redis_client).append_many(
        [make["artifact.pointer_set"](t=1), make["artifact.pointer_revoked"](t=2)]
    )
    redis_client.set(names.run_artifact_key("r1"), FILE_B)
    redis_client.zadd(names.RUN_INDEX, {"r1": 3})

    report = rebuild(redis_client)

    assert set(report.drift.extra) == {names.run_artifact_key("r1"), names.RUN_INDEX}
    assert redis_client.exists(names.run_artifact_key("r1"), names.RUN_INDEX) == 0
    assert redis_client.hget(names.run_status_key("r1"), "status") == b"completed"


def test_a_missing_index_is_reported_missing(projected: redis.Redis) -> None:
    projected.delete(names.RUN_INDEX)
    assert rebuild(projected, verify=True).drift.missing == (names.RUN_INDEX,)
    rebuild(projected)
    assert projected.zcard(names.RUN_INDEX) == 3


def test_checkpoints_follow_the_replay(projected: redis.Redis) -> None:
    client = projected
    upload = names.checkpoint_key(names.PROJECTOR_GROUP, names.UPLOAD_STREAM)
    client.delete(names.UPLOAD_STREAM)
    client.xadd(names.POINTER_STREAM, {b"other": b"field"})
    report = rebuild(client)
    assert report.skipped == 1
    assert client.get(upload) is None
    pointer = names.checkpoint_key(names.PROJECTOR_GROUP, names.POINTER_STREAM)
    assert client.get(pointer) == report.positions[names.POINTER_STREAM].encode()


def test_only_one_rebuild_at_a_time(projected: redis.Redis) -> None:
    projected.set(names.PROJECTOR_LOCK, "someone")
    with pytest.raises(RebuildBusyError):
        rebuild(projected)
    assert rebuild(projected, verify=True).drift.clean
    assert projected.get(names.PROJECTOR_LOCK) == b"someone"


def test_writes_refuse_once_the_lock_is_lost(projected: redis.Redis) -> None:
    projected.delete(names.run_status_key("r0"))
    model = replay(projected).model
    with pytest.raises(LockLostError):
        Reconciler(projected, model, "not-the-holder").run()
    with pytest.raises(LockLostError):
        Reconciler(projected, model, "not-the-holder").set_checkpoints({})


def test_other_engine_errors_surface(projected: redis.Redis) -> None:
    projected.delete(names.RUN_INDEX)
    projected.set(names.RUN_INDEX, "not a sorted set")
    projected.set(names.PROJECTOR_LOCK, "token")
    with pytest.raises(redis.ResponseError, match="WRONGTYPE"):
        Reconciler(projected, replay(projected).model, "token").run()
    projected.delete(names.RUN_INDEX)
    reconciler = Reconciler(projected, replay(projected).model, "token")
    with pytest.raises(RebuildError) as raised:  # a script the engine refuses, not the lock
        reconciler._apply(reconciler._write, {"h": [["key", ["odd"]]], "s": [], "z": []})
    assert not isinstance(raised.value, LockLostError)


def test_the_lock_is_kept_alive_and_gives_up_when_taken(redis_client: redis.Redis) -> None:
    lock = _Lock(redis_client, ttl_ms=60)
    with lock as token:
        samples: list[int] = []

        def refreshed() -> bool:
            samples.append(int(redis_client.pttl(names.PROJECTOR_LOCK)))
            return len(samples) > 1 and samples[-1] > samples[-2]

        wait_until(refreshed, what="a refreshed ttl")
        assert redis_client.get(names.PROJECTOR_LOCK) == token.encode()
        redis_client.set(names.PROJECTOR_LOCK, "thief")
        wait_until(lambda: not lock._thread.is_alive(), what="the keeper to give up")
    assert redis_client.get(names.PROJECTOR_LOCK) == b"thief"


def test_a_pointer_in_the_log_never_disappears_during_rebuild(redis_client: redis.Redis) -> None:
    clock = Clock()
    runs = [f"r{i}" for i in range(120)]
    EventLog(redis_client).append_many([e for run in runs for e in completed_run(run, clock)])
    rebuild(redis_client)
    for run in runs:  # drift everywhere: every chunk rewrites hashes and pointers
        redis_client.hset(names.run_status_key(run), "status", "queued")
        redis_client.set(names.run_artifact_key(run), FILE_B)
    keys = [names.run_artifact_key(run) for run in runs]
    done = threading.Event()
    absent: list[str] = []
    reads = [0]

    def reader() -> None:
        reader_client = redis.Redis(connection_pool=redis_client.connection_pool)
        while not done.is_set():
            absent.extend(k for k, v in zip(keys, reader_client.mget(keys), strict=True) if not v)
            reads[0] += 1

    thread = threading.Thread(target=reader)
    thread.start()
    wait_until(lambda: reads[0] > 0, what="the reader to start")
    try:
        report = rebuild(redis_client, chunk=10)
    finally:
        done.set()
        thread.join(10)
    assert len(report.drift.different) == 2 * len(runs)
    assert reads[0] > 1
    assert absent == []


def test_canonical_form_and_chunks() -> None:
    assert canonical({"b": "2", "a": "é"}) == b"1:a2:\xc3\xa91:b1:2"
    assert list(chunks(iter(range(5)), 2)) == [[0, 1], [2, 3], [4]]
    assert list(chunks(iter(()), 2)) == []
