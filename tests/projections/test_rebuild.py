"""Rebuild: repair fixes the drift, checkpoints follow the replay, one rebuild at a time under
a lock that is kept alive, and readers never lose a pointer."""

from __future__ import annotations

import threading

import pytest
import redis

from events import names
from projections import RebuildBusyError, rebuild_read_model
from projections.rebuild import RebuildLock
from tests.events.appending import append_all
from tests.projections.factories import FILE_B, SIGNING_KEYS, Clock, completed_run, run_events
from tests.projections.helpers import project_sample, snapshot
from tests.waiting import wait_until


@pytest.fixture
def projected(redis_client: redis.Redis) -> redis.Redis:
    """Three completed runs and a trained tokenizer, projected live."""
    project_sample(redis_client)
    return redis_client


def test_rebuild_repairs_the_drift(projected: redis.Redis) -> None:
    client = projected
    reference = snapshot(client)
    client.hset(names.run_status_key("r1"), "status", "failed")
    client.delete(names.run_artifact_key("r2"), names.tokenizer_status_key("t0"))
    client.set(names.tokenizer_artifact_key("ghost"), FILE_B)
    client.zadd(names.RUN_INDEX, {"stranger": 5})

    report = rebuild_read_model(client, SIGNING_KEYS)

    assert report.applied
    assert names.tokenizer_status_key("t0") in report.drift.missing
    assert names.RUN_INDEX in report.drift.different
    assert snapshot(client) == reference
    assert rebuild_read_model(client, SIGNING_KEYS, verify=True).drift.clean
    assert client.exists(names.PROJECTOR_LOCK) == 0


def test_a_rebuild_of_a_clean_read_model_writes_nothing(projected: redis.Redis) -> None:
    reference = snapshot(projected)
    report = rebuild_read_model(projected, SIGNING_KEYS)
    assert report.applied
    assert report.drift.clean
    assert snapshot(projected) == reference


def test_a_revoked_pointer_is_deleted_and_the_index_rebuilt(redis_client: redis.Redis) -> None:
    make = run_events("r1")
    append_all(
        redis_client, [make["artifact.pointer_set"](t=1), make["artifact.pointer_revoked"](t=2)]
    )
    redis_client.set(names.run_artifact_key("r1"), FILE_B)
    redis_client.zadd(names.RUN_INDEX, {"r1": 3})

    report = rebuild_read_model(redis_client, SIGNING_KEYS)

    assert set(report.drift.extra) == {names.run_artifact_key("r1"), names.RUN_INDEX}
    assert redis_client.exists(names.run_artifact_key("r1"), names.RUN_INDEX) == 0
    assert redis_client.hget(names.run_status_key("r1"), "status") == b"completed"


def test_a_missing_index_is_rebuilt(projected: redis.Redis) -> None:
    projected.delete(names.RUN_INDEX)
    rebuild_read_model(projected, SIGNING_KEYS)
    assert projected.zcard(names.RUN_INDEX) == 3


def test_checkpoints_follow_the_replay(projected: redis.Redis) -> None:
    client = projected
    upload = names.checkpoint_key(names.PROJECTOR_GROUP, names.UPLOAD_STREAM)
    client.delete(names.UPLOAD_STREAM)
    client.xadd(names.POINTER_STREAM, {b"other": b"field"})
    report = rebuild_read_model(client, SIGNING_KEYS)
    assert report.skipped == 1
    assert client.get(upload) is None
    pointer = names.checkpoint_key(names.PROJECTOR_GROUP, names.POINTER_STREAM)
    assert client.get(pointer) == report.positions[names.POINTER_STREAM].encode()


def test_only_one_rebuild_at_a_time(projected: redis.Redis) -> None:
    projected.set(names.PROJECTOR_LOCK, "someone")
    with pytest.raises(RebuildBusyError):
        rebuild_read_model(projected, SIGNING_KEYS)
    assert rebuild_read_model(projected, SIGNING_KEYS, verify=True).drift.clean
    assert projected.get(names.PROJECTOR_LOCK) == b"someone"


def test_the_lock_is_kept_alive_and_gives_up_when_taken(redis_client: redis.Redis) -> None:
    lock = RebuildLock(redis_client, ttl_ms=60)
    with lock as token:
        samples: list[int] = []

        def refreshed() -> bool:
            samples.append(int(redis_client.pttl(names.PROJECTOR_LOCK)))
            return len(samples) > 1 and samples[-1] > samples[-2]

        wait_until(refreshed, what="a refreshed ttl")
        assert redis_client.get(names.PROJECTOR_LOCK) == token
        redis_client.set(names.PROJECTOR_LOCK, "thief")
        wait_until(lambda: not lock.keeper.is_alive(), what="the keeper to give up")
    assert redis_client.get(names.PROJECTOR_LOCK) == b"thief"


def test_a_pointer_in_the_log_never_disappears_during_rebuild(redis_client: redis.Redis) -> None:
    clock = Clock()
    runs = [f"r{i}" for i in range(120)]
    append_all(redis_client, [e for run in runs for e in completed_run(run, clock)])
    rebuild_read_model(redis_client, SIGNING_KEYS)
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
        report = rebuild_read_model(redis_client, SIGNING_KEYS, chunk=10)
    finally:
        done.set()
        thread.join(10)
    assert len(report.drift.different) == 2 * len(runs)
    assert reads[0] > 1
    assert absent == []
