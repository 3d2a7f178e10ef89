"""The live projector on a real engine: apply, idempotence, checkpoints, the rebuild lock."""

from __future__ import annotations

import os
import signal
import threading

import pytest
import redis

from events import Delivery, EventLog, Interrupted, names
from projections import PauseTimeoutError, Projector, ReadModel
from tests.events.appending import append_all
from tests.projections.factories import (
    FILE_A,
    SIGNING_KEYS,
    alias_events,
    completed_run,
    run_events,
)
from tests.projections.helpers import FAST, drain, snapshot
from tests.waiting import wait_until


def delivery(stream: str, entry_id: str, stopping: threading.Event | None = None) -> Delivery:
    return Delivery(stream, entry_id, 1, "test", stopping or threading.Event())


def test_a_completed_run_is_materialized_with_its_pointer(redis_client: redis.Redis) -> None:
    append_all(redis_client, completed_run("r1"))
    drain(Projector(redis_client, SIGNING_KEYS, config=FAST))
    reads = ReadModel(redis_client)
    status = reads.run_status("r1")
    assert status is not None
    assert (status.status, status.node, status.artifact) == (
        "completed",
        "n1",
        reads.run_artifact("r1"),
    )
    assert redis_client.get(names.run_artifact_key("r1")) == FILE_A.encode()
    assert redis_client.zrange(names.RUN_INDEX, 0, -1) == [b"r1"]


def test_applying_twice_changes_nothing_and_checkpoints_only_advance(
    redis_client: redis.Redis,
) -> None:
    projector = Projector(redis_client, SIGNING_KEYS, config=FAST)
    make = run_events("r1")
    log = EventLog(redis_client)
    first = log.append(make["training.requested"]())
    second_event = make["training.started"]()
    second = log.append(second_event)
    projector.handle(second_event, delivery(second.stream, second.entry_id))
    once = snapshot(redis_client)
    projector.handle(second_event, delivery(second.stream, first.entry_id))
    assert snapshot(redis_client) == once
    checkpoint = names.checkpoint_key(names.PROJECTOR_GROUP, names.TRAINING_STREAM)
    assert redis_client.get(checkpoint) == second.entry_id.encode()


def test_the_handler_waits_while_a_rebuild_holds_the_lock(redis_client: redis.Redis) -> None:
    projector = Projector(redis_client, SIGNING_KEYS, config=FAST, lock_poll_s=0.01)
    event = run_events("r1")["training.requested"]()
    appended = EventLog(redis_client).append(event)
    redis_client.set(names.PROJECTOR_LOCK, "rebuild")
    worker = threading.Thread(
        target=projector.handle, args=(event, delivery(appended.stream, appended.entry_id))
    )
    worker.start()
    assert projector.paused.wait(10)
    assert redis_client.exists(names.run_status_key("r1")) == 0
    redis_client.delete(names.PROJECTOR_LOCK)
    worker.join(10)
    assert not worker.is_alive()
    assert not projector.paused.is_set()
    assert redis_client.hget(names.run_status_key("r1"), "status") == b"queued"


def test_stopping_while_paused_interrupts(redis_client: redis.Redis) -> None:
    projector = Projector(redis_client, SIGNING_KEYS, lock_poll_s=0.01)
    redis_client.set(names.PROJECTOR_LOCK, "rebuild")
    stopping = threading.Event()
    stopping.set()
    event = run_events("r1")["training.requested"]()
    with pytest.raises(Interrupted):
        projector.handle(event, delivery(names.TRAINING_STREAM, "1-0", stopping))


def test_a_lock_held_too_long_fails_the_entry(redis_client: redis.Redis) -> None:
    projector = Projector(redis_client, SIGNING_KEYS, lock_poll_s=0.001, max_pause_s=0.01)
    redis_client.set(names.PROJECTOR_LOCK, "rebuild")
    event = run_events("r1")["training.requested"]()
    with pytest.raises(PauseTimeoutError):
        projector.handle(event, delivery(names.TRAINING_STREAM, "1-0"))


def test_run_consumes_until_stopped(redis_client: redis.Redis) -> None:
    append_all(redis_client, completed_run("r1"))
    projector = Projector(redis_client, SIGNING_KEYS, config=FAST)
    worker = threading.Thread(target=projector.run)
    worker.start()
    try:
        wait_until(lambda: ReadModel(redis_client).run_artifact("r1") is not None, what="pointer")
    finally:
        projector.stop()
        worker.join(10)
    assert not worker.is_alive()


def test_serve_stops_on_sigterm(redis_client: redis.Redis) -> None:
    append_all(redis_client, completed_run("r1"))
    projector = Projector(redis_client, SIGNING_KEYS, config=FAST)

    def terminate_once_applied() -> None:
        wait_until(lambda: ReadModel(redis_client).run_artifact("r1") is not None, what="pointer")
        os.kill(os.getpid(), signal.SIGTERM)

    killer = threading.Thread(target=terminate_once_applied)
    killer.start()
    projector.serve()
    killer.join(10)
    assert projector.consumer.stopping.is_set()


def test_a_deleted_run_leaves_the_index_and_its_pointer_for_good(
    redis_client: redis.Redis,
) -> None:
    make = run_events("r1")
    append_all(redis_client, [*completed_run("r1"), make["run.deleted"]()])
    drain(Projector(redis_client, SIGNING_KEYS, config=FAST))
    status = ReadModel(redis_client).run_status("r1")
    assert status is not None
    assert (status.status, status.message) == ("deleted", "deleted: no longer needed")
    assert redis_client.get(names.run_artifact_key("r1")) is None
    assert redis_client.zrange(names.RUN_INDEX, 0, -1) == []
    assert redis_client.hget(names.run_status_key("r1"), "file_id") == FILE_A.encode()

    append_all(redis_client, [make["training.requested"](t=99), make["artifact.pointer_set"]()])
    drain(Projector(redis_client, SIGNING_KEYS, config=FAST))
    assert redis_client.zrange(names.RUN_INDEX, 0, -1) == []
    assert redis_client.get(names.run_artifact_key("r1")) is None


def test_an_alias_follows_its_latest_event_and_a_removal_clears_it(
    redis_client: redis.Redis,
) -> None:
    make = alias_events("m0")
    append_all(redis_client, [make["model.alias_set"](t=1), make["model.alias_set.r1"](t=2)])
    drain(Projector(redis_client, SIGNING_KEYS, config=FAST))
    assert ReadModel(redis_client).alias_run("m0", "prod") == "r1"
    record = redis_client.hgetall(names.alias_status_key("m0@prod"))
    assert (record[b"status"], record[b"model"], record[b"alias"]) == (b"active", b"m0", b"prod")
    append_all(redis_client, [make["model.alias_removed"](t=3), make["model.alias_set"](t=0)])
    drain(Projector(redis_client, SIGNING_KEYS, config=FAST))
    assert ReadModel(redis_client).alias_run("m0", "prod") is None
    assert redis_client.hget(names.alias_status_key("m0@prod"), "status") == b"removed"
