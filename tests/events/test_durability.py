"""An append with `Durability` returns only once the replica holds it; a replica that does not
confirm in time makes the append fail loudly (retryable), never silently unreplicated."""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from events import (
    Durability,
    EventLog,
    NotReplicatedError,
    TrainingCancelRequested,
    connect,
    names,
)
from events.durability import ReplicaCount, online_replicas
from tests.replicated import EngineProcess
from tests.waiting import wait_until


def _in_sync(primary: EngineProcess) -> bool:
    return online_replicas(primary.client().info("replication")) == 1


@pytest.fixture(scope="module")
def pair(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[EngineProcess, EngineProcess]]:
    """A primary and one replica linked to it."""
    root = tmp_path_factory.mktemp("pair")
    primary = EngineProcess(root / "primary", ["--save", ""])
    primary.start()
    replica = EngineProcess(root / "replica", ["--save", "", "--replicaof", "127.0.0.1", "0"])
    replica.arguments[-1] = str(primary.port)
    replica.start()
    try:
        wait_until(lambda: _answers(replica) and _in_sync(primary), timeout=30)
        yield primary, replica
    finally:
        replica.stop()
        primary.stop()


def _answers(server: EngineProcess) -> bool:
    try:
        return bool(server.client().ping())
    except redis.ConnectionError:
        return False


def test_an_acknowledged_append_is_already_on_the_replica(
    pair: tuple[EngineProcess, EngineProcess],
) -> None:
    primary, replica = pair
    log = EventLog(connect(primary.url), Durability(replicas=1, timeout_ms=5000))
    appended = log.append(
        TrainingCancelRequested(correlation_id="replicated"), idempotency_key="k1"
    )
    rows = connect(replica.url).xrange(names.TRAINING_STREAM, appended.entry_id, appended.entry_id)
    assert rows is not None
    assert len(rows) == 1
    again = log.append(TrainingCancelRequested(correlation_id="replicated"), idempotency_key="k1")
    assert (again.entry_id, again.duplicate) == (appended.entry_id, True)


def test_more_replicas_than_connected_waits_for_those_connected(
    pair: tuple[EngineProcess, EngineProcess],
) -> None:
    primary, replica = pair
    log = EventLog(connect(primary.url), Durability(replicas=3, timeout_ms=5000))
    appended = log.append(TrainingCancelRequested(correlation_id="capped"))
    rows = connect(replica.url).xrange(names.TRAINING_STREAM, appended.entry_id, appended.entry_id)
    assert rows is not None
    assert len(rows) == 1


def test_a_replica_that_does_not_confirm_in_time_fails_the_append(
    pair: tuple[EngineProcess, EngineProcess],
) -> None:
    primary, replica = pair
    log = EventLog(connect(primary.url), Durability(replicas=1, timeout_ms=200))
    assert replica.process is not None
    os.kill(replica.process.pid, signal.SIGSTOP)
    try:
        with pytest.raises(NotReplicatedError, match="0 of 1 replicas"):
            log.append(TrainingCancelRequested(correlation_id="stalled"))
    finally:
        os.kill(replica.process.pid, signal.SIGCONT)
    assert isinstance(NotReplicatedError("x"), redis.ConnectionError)


def test_no_replica_connected_means_the_primary_alone_acknowledges(tmp_path: Path) -> None:
    alone = EngineProcess(tmp_path / "alone", ["--save", ""])
    alone.start()
    try:
        wait_until(lambda: _answers(alone), timeout=30)
        log = EventLog(connect(alone.url), Durability(replicas=1, timeout_ms=5000))
        assert not log.append(TrainingCancelRequested(correlation_id="alone")).duplicate
    finally:
        alone.stop()


def test_only_replicas_in_sync_are_counted() -> None:
    replication: dict[str, object] = {
        "connected_slaves": 3,
        "slave0": {"state": "online"},
        "slave1": {"state": "wait_bgsave"},
        "slave2": {"state": "online"},
        "master_repl_offset": 10,
    }
    assert online_replicas(replication) == 2
    assert online_replicas({"connected_slaves": 0}) == 0


def test_the_replica_count_is_read_once_per_second(
    pair: tuple[EngineProcess, EngineProcess], monkeypatch: pytest.MonkeyPatch
) -> None:
    primary, _ = pair
    client = connect(primary.url)
    count = ReplicaCount(client)
    assert count.now() == 1

    def unreachable(section: str) -> dict[str, str]:
        raise AssertionError(f"INFO {section} asked again within the second")

    monkeypatch.setattr(client, "info", unreachable)
    assert count.now() == 1
