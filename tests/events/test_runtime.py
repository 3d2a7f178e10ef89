"""The consumer runtime on a real engine: delivery, reclaim, heartbeat, dead letters, restarts."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import redis

from events import (
    ArtifactPointerSet,
    Consumer,
    DeadLettered,
    Delivery,
    Event,
    EventLog,
    Handlers,
    Interrupted,
    LocalEngine,
    RuntimeConfig,
    TrainingCancelRequested,
    TrainingStarted,
    connect,
    ensure_group,
    list_dead_letters,
    names,
    text,
)
from tests.events.appending import append_all
from tests.waiting import wait_until

FAST = RuntimeConfig(block_ms=20, visibility_timeout_ms=150, max_deliveries=3)
GROUP = "g"


@dataclass
class Recorder:
    """A handler that records what it handled, and can be told to fail or block."""

    seen: list[tuple[str, int]] = field(default_factory=list)
    fail_for: set[str] = field(default_factory=set)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def __call__(self, event: TrainingCancelRequested, delivery: Delivery) -> None:
        if event.correlation_id in self.fail_for:
            raise ValueError(f"cannot handle {event.correlation_id}")
        with self.lock:
            self.seen.append((event.correlation_id, delivery.attempt))

    def runs(self) -> list[str]:
        with self.lock:
            return [run for run, _ in self.seen]


def cancel(run_id: str) -> TrainingCancelRequested:
    return TrainingCancelRequested(correlation_id=run_id)


def consumer(
    client: redis.Redis, handler: Callable[[TrainingCancelRequested, Delivery], None], **config: int
) -> Consumer:
    handlers = Handlers().on(TrainingCancelRequested, handler)
    settings = RuntimeConfig(**{**FAST.__dict__, **config})
    return Consumer(
        client, streams=[names.TRAINING_STREAM], group=GROUP, handlers=handlers, config=settings
    )


@pytest.fixture
def running() -> Iterator[Callable[[Consumer], Consumer]]:
    """Start consumers in threads; stop and join them after the test."""
    started: list[tuple[Consumer, threading.Thread]] = []

    def start(member: Consumer) -> Consumer:
        thread = threading.Thread(target=member.run, daemon=True)
        thread.start()
        started.append((member, thread))
        return member

    yield start
    for member, thread in started:
        member.stop()
        thread.join(10)
        assert not thread.is_alive()


def pending_count(client: redis.Redis) -> int:
    return int(client.xpending(names.TRAINING_STREAM, GROUP)["pending"])


def test_handles_and_acknowledges_in_order(
    redis_client: redis.Redis, running: Callable[[Consumer], Consumer]
) -> None:
    append_all(redis_client, [cancel(f"run-{i}") for i in range(5)])
    recorder = Recorder()
    member = running(consumer(redis_client, recorder))
    wait_until(lambda: len(recorder.seen) == 5, what="five handled")
    assert recorder.seen == [(f"run-{i}", 1) for i in range(5)]
    wait_until(lambda: member.acked == 5, what="five acked")
    assert pending_count(redis_client) == 0


def test_types_without_a_handler_are_acknowledged_unhandled(redis_client: redis.Redis) -> None:
    EventLog(redis_client).append(TrainingStarted(correlation_id="r", payload={"node_id": "n"}))
    recorder = Recorder()
    member = consumer(redis_client, recorder)
    member.ensure_groups()
    assert member.poll() == 1
    assert recorder.seen == []
    assert pending_count(redis_client) == 0


def test_on_any_sees_every_type(redis_client: redis.Redis) -> None:
    log = EventLog(redis_client)
    log.append(TrainingStarted(correlation_id="r", payload={"node_id": "n"}))
    log.append(
        ArtifactPointerSet(
            correlation_id="r", payload={"subject": "run", "pointer": {"file_id": "a" * 64}}
        )
    )
    seen: list[str] = []

    def everything(event: Event, delivery: Delivery) -> None:
        seen.append(event.type)

    member = Consumer(
        redis_client,
        streams=names.ALL_STREAMS,
        group=GROUP,
        handlers=Handlers().on_any(everything),
        config=FAST,
    )
    member.ensure_groups()
    while member.poll():
        pass
    assert sorted(seen) == ["artifact.pointer_set", "training.started"]


def test_a_consumer_killed_mid_handler_is_reclaimed_and_finished(
    redis_url: str, redis_client: redis.Redis, running: Callable[[Consumer], Consumer]
) -> None:
    runs = [*(f"run-{i}" for i in range(5)), "slow", *(f"run-{i}" for i in range(5, 10))]
    append_all(redis_client, [cancel(run) for run in runs])
    child = subprocess.Popen(
        [sys.executable, "-m", "tests.events.consumer_process", redis_url, "doomed"],
        cwd=Path(__file__).resolve().parents[2],
    )
    try:
        wait_until(
            lambda: redis_client.get("slow:started") is not None, timeout=30, what="slow start"
        )
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait(10)
    assert pending_count(redis_client) > 0

    recorder = Recorder()
    survivor = running(consumer(redis_client, recorder, visibility_timeout_ms=600))
    wait_until(lambda: set(recorder.runs()) == set(runs), what="every run handled")
    wait_until(lambda: pending_count(redis_client) == 0, what="nothing pending")
    # Every ack it sent found the entry pending. The count is taken when the ack's reply
    # arrives, which can be just after the engine stopped listing the entry as pending.
    wait_until(lambda: survivor.acked == len(recorder.seen), what="every ack counted")
    assert dict(recorder.seen)["slow"] >= 2


def test_a_long_handler_is_not_reclaimed_while_it_runs(
    redis_client: redis.Redis, running: Callable[[Consumer], Consumer]
) -> None:
    EventLog(redis_client).append(cancel("long"))
    started, release = threading.Event(), threading.Event()
    calls: list[str] = []

    def long_handler(event: TrainingCancelRequested, delivery: Delivery) -> None:
        calls.append(delivery.consumer)
        started.set()
        release.wait(30)

    holder = running(consumer(redis_client, long_handler))
    assert started.wait(10)
    other = consumer(redis_client, long_handler)
    begin = time.monotonic()
    handled_by_other = 0
    while time.monotonic() - begin < 6 * FAST.visibility_timeout_ms / 1000:
        handled_by_other += other.poll()
    release.set()
    wait_until(lambda: holder.acked == 1, what="the holder acked")
    assert handled_by_other == 0
    assert calls == [holder.name]
    assert other.refresh_claims() == 0


def test_a_poison_entry_is_dead_lettered_after_max_deliveries(
    redis_client: redis.Redis, running: Callable[[Consumer], Consumer]
) -> None:
    log = EventLog(redis_client)
    poison = log.append(cancel("poison"))
    log.append(cancel("after"))
    recorder = Recorder(fail_for={"poison"})
    running(consumer(redis_client, recorder))
    dlq = names.dlq_stream(names.TRAINING_STREAM, GROUP)
    wait_until(lambda: redis_client.xlen(dlq) == 1, what="a dead letter")
    [letter] = list_dead_letters(redis_client, names.TRAINING_STREAM, GROUP)
    assert letter.original_id == poison.entry_id
    assert letter.attempts == FAST.max_deliveries + 1
    assert letter.error == "ValueError: cannot handle poison"
    assert letter.group == GROUP
    assert recorder.runs() == ["after"]
    wait_until(lambda: pending_count(redis_client) == 0, what="nothing pending")
    assert redis_client.hlen(names.failures_key(names.TRAINING_STREAM, GROUP)) == 0


GARBAGE: list[dict[bytes, bytes]] = [
    {b"random": b"\x00\xff", b"more": b"x"},
    {b"event": b"{not json"},
    {b"event": json.dumps({"type": "model.exploded", "correlation_id": "x"}).encode()},
    {b"event": json.dumps({"type": "training.started", "schema_version": 7}).encode()},
]


def test_garbage_is_dead_lettered_at_once_and_processing_goes_on(
    redis_client: redis.Redis, running: Callable[[Consumer], Consumer]
) -> None:
    ids = [redis_client.xadd(names.TRAINING_STREAM, dict(fields.items())) for fields in GARBAGE]
    EventLog(redis_client).append(cancel("after"))
    recorder = Recorder()
    running(consumer(redis_client, recorder))
    wait_until(lambda: recorder.runs() == ["after"], what="the good entry")
    letters = list_dead_letters(redis_client, names.TRAINING_STREAM, GROUP)
    assert [letter.original_id.encode() for letter in letters] == ids
    assert {letter.attempts for letter in letters} == {1}
    assert all(letter.error.startswith("undecodable:") for letter in letters)
    assert letters[0].original_fields == GARBAGE[0]


def test_an_entry_whose_consumers_keep_dying_is_dead_lettered(redis_client: redis.Redis) -> None:
    entry = EventLog(redis_client).append(cancel("cursed")).entry_id
    ensure_group(redis_client, names.TRAINING_STREAM, GROUP)
    redis_client.xreadgroup(GROUP, "dead-1", {names.TRAINING_STREAM: ">"})
    recorder = Recorder()
    member = consumer(redis_client, recorder, visibility_timeout_ms=0, max_deliveries=1)
    assert member.poll() == 0
    [letter] = list_dead_letters(redis_client, names.TRAINING_STREAM, GROUP)
    assert letter.original_id == entry
    assert letter.error == "delivered 2 times without being acknowledged"
    assert recorder.seen == []


def test_a_lost_connection_in_a_handler_backs_off_and_retries(
    redis_client: redis.Redis, running: Callable[[Consumer], Consumer]
) -> None:
    EventLog(redis_client).append(cancel("flaky"))
    attempts: list[int] = []

    def flaky(event: TrainingCancelRequested, delivery: Delivery) -> None:
        attempts.append(delivery.attempt)
        if len(attempts) == 1:
            raise redis.ConnectionError("engine went away")

    member = running(consumer(redis_client, flaky))
    wait_until(lambda: member.acked == 1, what="the retry acked")
    assert attempts == [1, 2]
    assert member.reconnects == 1


def test_the_engine_restarted_under_a_running_consumer(
    tmp_path: Path, running: Callable[[Consumer], Consumer]
) -> None:
    engine = LocalEngine(tmp_path / "engine")
    engine.start()
    try:
        client = connect(engine.url)
        append_all(client, [cancel(f"before-{i}") for i in range(5)])
        recorder = Recorder()
        member = running(consumer(client, recorder))
        wait_until(lambda: len(recorder.seen) == 5, what="first five")
        engine.stop()
        wait_until(lambda: member.reconnects >= 1, what="a reconnect attempt")
        engine.start()
        append_all(client, [cancel(f"after-{i}") for i in range(5)])
        wait_until(lambda: len(set(recorder.runs())) == 10, timeout=30, what="all ten")
        assert client.xlen(names.TRAINING_STREAM) == 10  # the first five survived the restart
        wait_until(lambda: pending_count(client) == 0, what="nothing pending")
    finally:
        engine.stop()


def test_sigterm_stops_without_acknowledging_unfinished_work(redis_client: redis.Redis) -> None:
    log = EventLog(redis_client)
    log.append(cancel("quick"))
    long_entry = log.append(cancel("long")).entry_id
    started = threading.Event()
    finished: list[str] = []

    def handler(event: TrainingCancelRequested, delivery: Delivery) -> None:
        if event.correlation_id == "long":
            started.set()
            while not delivery.should_stop():
                delivery.stopping.wait(0.01)
            raise Interrupted
        finished.append(event.correlation_id)

    member = consumer(redis_client, handler)
    before = signal.getsignal(signal.SIGTERM)

    def terminate_once_started() -> None:
        if started.wait(10):
            os.kill(os.getpid(), signal.SIGTERM)

    threading.Thread(target=terminate_once_started, daemon=True).start()
    member.serve()
    assert finished == ["quick"]
    pending = redis_client.xpending_range(names.TRAINING_STREAM, GROUP, "-", "+", 10)
    assert [text(row["message_id"]) for row in pending] == [long_entry]
    assert redis_client.hlen(names.failures_key(names.TRAINING_STREAM, GROUP)) == 0
    assert signal.getsignal(signal.SIGTERM) is before


def test_a_stop_mid_batch_leaves_the_rest_pending(redis_client: redis.Redis) -> None:
    append_all(redis_client, [cancel(f"r{i}") for i in range(3)])
    member: Consumer

    def stop_after_first(event: TrainingCancelRequested, delivery: Delivery) -> None:
        member.stop()

    member = consumer(redis_client, stop_after_first)
    member.ensure_groups()
    assert member.poll() == 1
    assert pending_count(redis_client) == 2


def test_ensure_group_is_idempotent_and_reports_real_errors(redis_client: redis.Redis) -> None:
    ensure_group(redis_client, names.TRAINING_STREAM, GROUP)
    ensure_group(redis_client, names.TRAINING_STREAM, GROUP)
    redis_client.set("not-a-stream", "x")
    with pytest.raises(redis.ResponseError, match="WRONGTYPE"):
        ensure_group(redis_client, "not-a-stream", GROUP)


def test_a_dead_letter_callback_learns_of_each_decodable_entry_given_up_on(
    redis_client: redis.Redis,
    running: Callable[[Consumer], Consumer],
    caplog: pytest.LogCaptureFixture,
) -> None:
    poison = EventLog(redis_client).append(cancel("poison"))
    redis_client.xadd(names.TRAINING_STREAM, {b"event": b"{not json"})
    EventLog(redis_client).append(cancel("cursed"))
    told: list[DeadLettered] = []

    def tell(letter: DeadLettered) -> None:
        told.append(letter)
        if letter.event.correlation_id == "cursed":
            raise RuntimeError("the callback broke")

    recorder = Recorder(fail_for={"poison", "cursed"})
    handlers = Handlers().on(TrainingCancelRequested, recorder)
    member = Consumer(
        redis_client,
        streams=[names.TRAINING_STREAM],
        group=GROUP,
        handlers=handlers,
        config=FAST,
        on_dead_letter=tell,
    )
    running(member)
    dlq = names.dlq_stream(names.TRAINING_STREAM, GROUP)
    wait_until(lambda: redis_client.xlen(dlq) == 3 and len(told) == 2, what="three dead letters")
    first, second = sorted(told, key=lambda letter: letter.event.correlation_id)
    assert (second.event.correlation_id, second.entry_id) == ("poison", poison.entry_id)
    assert (second.stream, second.group) == (names.TRAINING_STREAM, GROUP)
    assert second.attempts == FAST.max_deliveries + 1
    assert second.error == "ValueError: cannot handle poison"
    assert first.event.correlation_id == "cursed"
    assert "dead-letter callback failed" in caplog.text  # and the letter stands regardless
    wait_until(lambda: pending_count(redis_client) == 0, what="nothing pending")
