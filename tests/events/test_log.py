"""EventLog: append, idempotency (also across processes), ranges and correlation reads."""

from __future__ import annotations

import multiprocessing

import pytest
import redis

from events import (
    ArtifactPointer,
    ArtifactPointerSet,
    ArtifactUploadFailed,
    ArtifactUploadRequested,
    CancelRequestedPayload,
    EventIdReused,
    EventLog,
    IdempotencyKeyReused,
    LogEntry,
    TrainingCancelRequested,
    TrainingRequested,
    TrainingSpec,
    UploadFailedPayload,
    UploadRequestedPayload,
    connect,
    fingerprint,
    names,
    stream_for,
)
from tests.events.appending import append_all


def cancel(run_id: str = "run-1") -> TrainingCancelRequested:
    return TrainingCancelRequested(correlation_id=run_id)


def test_append_returns_the_entry_and_routes_by_type(redis_client: redis.Redis) -> None:
    log = EventLog(redis_client)
    first = log.append(cancel())
    pointer = ArtifactPointerSet(
        correlation_id="run-1",
        payload={"subject": "run", "pointer": ArtifactPointer(file_id="a" * 64)},
    )
    second = log.append(pointer)
    failed = log.append(
        ArtifactUploadFailed(
            correlation_id="run-1",
            payload=UploadFailedPayload(subject="run", node_id="n", reason="boom"),
        )
    )
    assert (first.stream, failed.stream, second.stream) == names.ALL_STREAMS
    assert not first.duplicate
    [entry] = log.read_range(names.POINTER_STREAM)
    assert entry.entry_id == second.entry_id
    assert entry.event() == pointer


def test_a_request_for_an_upload_is_work_on_the_training_stream() -> None:
    """The upload stages read `stream:training`; the other `artifact.*` events are not work."""
    requested = ArtifactUploadRequested(
        correlation_id="run-1", payload=UploadRequestedPayload(subject="run")
    )
    assert stream_for(requested) == names.TRAINING_STREAM


def test_the_same_idempotency_key_appends_once(redis_client: redis.Redis) -> None:
    log = EventLog(redis_client)
    first = log.append(cancel(), idempotency_key="cmd-1")
    again = log.append(cancel(), idempotency_key="cmd-1")
    other = log.append(cancel(), idempotency_key="cmd-2")
    assert again.entry_id == first.entry_id
    assert again.duplicate
    assert other.entry_id != first.entry_id
    assert redis_client.xlen(names.TRAINING_STREAM) == 2
    assert len(log.read_correlation("run-1")) == 2


def test_a_second_event_with_an_earlier_event_id_is_refused(redis_client: redis.Redis) -> None:
    """The stages key what they record on the cause's event id: a second request under a
    repeated id would train, but every lifecycle event of it would be taken for the first
    one's and swallowed, leaving the run `queued` forever. The append refuses it instead."""
    log = EventLog(redis_client)
    spec = TrainingSpec(corpus_file_id="c" * 64)
    first = log.append(TrainingRequested(event_id="e1", correlation_id="run-1", payload=spec))
    forged = TrainingRequested(event_id="e1", correlation_id="run-2", payload=spec)

    with pytest.raises(EventIdReused) as caught:
        log.append(forged, idempotency_key="cmd-2")

    refused = caught.value
    assert (refused.event_id, refused.stream, refused.entry_id) == (
        "e1",
        first.stream,
        first.entry_id,
    )
    assert "'e1'" in str(caught.value)
    assert redis_client.xlen(names.TRAINING_STREAM) == 1
    assert log.read_correlation("run-2") == []
    assert log.first_entry("cmd-2") is None


def test_a_retry_under_its_key_still_answers_the_first_entry(redis_client: redis.Redis) -> None:
    """The id check comes after the idempotency key's: a retried command that resends the very
    same event gets its first entry back, not a refusal."""
    log = EventLog(redis_client)
    event = cancel()
    first = log.append(event, idempotency_key="cmd-1")
    again = log.append(event, idempotency_key="cmd-1")

    assert (again.entry_id, again.duplicate) == (first.entry_id, True)
    with pytest.raises(EventIdReused):
        log.append(event)
    assert redis_client.xlen(names.TRAINING_STREAM) == 1


def test_a_key_reused_with_another_request_is_refused(redis_client: redis.Redis) -> None:
    log = EventLog(redis_client)
    stop, halt = (
        fingerprint(CancelRequestedPayload(reason="stop")),
        fingerprint(CancelRequestedPayload(reason="halt")),
    )
    first = log.append(cancel(), idempotency_key="cmd-1", fingerprint=stop)
    again = log.append(cancel(), idempotency_key="cmd-1", fingerprint=stop)
    with pytest.raises(IdempotencyKeyReused) as caught:
        log.append(cancel(), idempotency_key="cmd-1", fingerprint=halt)

    assert (again.entry_id, again.duplicate) == (first.entry_id, True)
    assert (caught.value.key, caught.value.entry_id) == ("cmd-1", first.entry_id)
    assert "cmd-1" in str(caught.value)
    assert redis_client.xlen(names.TRAINING_STREAM) == 1
    assert log.first_entry("cmd-1", stop) == first.entry_id
    with pytest.raises(IdempotencyKeyReused):
        log.first_entry("cmd-1", halt)


def test_fingerprints_are_compared_only_when_both_sides_have_one(
    redis_client: redis.Redis,
) -> None:
    log = EventLog(redis_client)
    unmarked = log.append(cancel(), idempotency_key="stage-1")
    marked = log.append(cancel(), idempotency_key="cmd-1", fingerprint="f" * 64)

    assert log.append(cancel(), idempotency_key="stage-1", fingerprint="a" * 64).duplicate
    assert log.append(cancel(), idempotency_key="cmd-1").entry_id == marked.entry_id
    assert log.first_entry("stage-1", "a" * 64) == unmarked.entry_id
    assert log.first_entry("cmd-1") == marked.entry_id
    assert log.first_entry("never-used", "a" * 64) is None
    assert redis_client.xlen(names.TRAINING_STREAM) == 2


def test_a_fingerprint_is_of_the_request_meant_not_its_spelling() -> None:
    stop = fingerprint(CancelRequestedPayload(reason="stop"))

    assert stop == fingerprint(CancelRequestedPayload.model_validate_json('{"reason": "stop"}'))
    assert fingerprint(CancelRequestedPayload()) == fingerprint(
        CancelRequestedPayload.model_validate({})
    )
    assert stop != fingerprint(CancelRequestedPayload(reason="halt"))
    assert len(stop) == 64


def _append_many_times(
    url: str, key: str, times: int, start: multiprocessing.synchronize.Event
) -> None:
    log = EventLog(connect(url))
    start.wait(10)
    for _ in range(times):
        log.append(cancel(), idempotency_key=key)


def test_concurrent_retries_from_two_processes_append_once(
    redis_url: str, redis_client: redis.Redis
) -> None:
    context = multiprocessing.get_context("fork")
    start = context.Event()
    workers = [
        context.Process(target=_append_many_times, args=(redis_url, f"key-{i % 5}", 50, start))
        for i in range(10)
    ]
    for worker in workers:
        worker.start()
    start.set()
    for worker in workers:
        worker.join(30)
    assert [worker.exitcode for worker in workers] == [0] * 10
    assert redis_client.xlen(names.TRAINING_STREAM) == 5


def test_read_range_bounds(redis_client: redis.Redis) -> None:
    log = EventLog(redis_client)
    ids = [a.entry_id for a in append_all(redis_client, [cancel(str(i)) for i in range(4)])]
    middle = log.read_range(names.TRAINING_STREAM, ids[1], ids[2])
    assert [entry.entry_id for entry in middle] == ids[1:3]
    assert len(log.read_range(names.TRAINING_STREAM, count=1)) == 1


def test_read_correlation_spans_streams_in_append_order(redis_client: redis.Redis) -> None:
    log = EventLog(redis_client)
    log.append(cancel("a"))
    log.append(cancel("b"))
    log.append(
        ArtifactPointerSet(
            correlation_id="a",
            payload={"subject": "run", "pointer": {"file_id": "f" * 64}},
        )
    )
    history = log.read_correlation("a")
    assert [entry.event().type for entry in history] == [
        "training.cancel_requested",
        "artifact.pointer_set",
    ]
    assert log.read_correlation("nobody") == []


def test_a_malformed_append_reply_is_refused() -> None:
    with pytest.raises(TypeError, match="unexpected append reply"):
        EventLog._appended(names.TRAINING_STREAM, b"oops")


def test_log_entry_decodes_lazily() -> None:
    entry = LogEntry(names.TRAINING_STREAM, "1-0", {b"event": b"{}"})
    with pytest.raises(ValueError, match="unknown event type"):
        entry.event()
