"""A resumed run is still a run: a cancel during the resumed attempt stops it between steps,
and a cancel after it leaves it cancelled; either way its checkpoints are removed."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import redis

from consumers import TrainingStage, WorkerConfig
from databank import DataBankClient
from events import (
    Delivery,
    EventLog,
    Interrupted,
    TrainingCancelRequested,
    TrainingRequested,
    TrainingStarted,
    names,
)
from tests.harness import LocalBank, events_of, tiny_spec, types_of
from tests.waiting import wait_until

RUN = "run-resumed"


@pytest.fixture
def stage(
    redis_client: redis.Redis, bank_client: DataBankClient, worker_config: WorkerConfig
) -> TrainingStage:
    return TrainingStage(redis_client, bank_client, worker_config)


def _checkpointed(config: WorkerConfig) -> bool:
    return any(config.layout.checkpoint_dir(RUN).glob("step-*"))


def _interrupted_after_a_checkpoint(
    stage: TrainingStage, redis_client: redis.Redis, config: WorkerConfig, corpus_id: str
) -> TrainingRequested:
    """Attempt 1 trains until it holds a checkpoint, then its worker shuts down."""
    request = TrainingRequested(
        correlation_id=RUN,
        payload=tiny_spec(corpus_id, max_steps=100_000, checkpoint_every_steps=2),
    )
    EventLog(redis_client).append(request)
    stop = threading.Event()
    with ThreadPoolExecutor(1) as pool:
        handled = pool.submit(
            stage.handle, request, Delivery(names.TRAINING_STREAM, "1-0", 1, "a", stop)
        )
        wait_until(lambda: _checkpointed(config), timeout=60, what="a checkpoint")
        stop.set()
        with pytest.raises(Interrupted):
            handled.result(timeout=60)
    return request


def test_a_cancel_during_a_resumed_attempt_stops_it(
    stage: TrainingStage,
    redis_client: redis.Redis,
    worker_config: WorkerConfig,
    local_bank: LocalBank,
    tmp_path: Path,
) -> None:
    corpus_id = local_bank.put_corpus(tmp_path)
    request = _interrupted_after_a_checkpoint(stage, redis_client, worker_config, corpus_id)
    log = EventLog(redis_client)
    second = Delivery(names.TRAINING_STREAM, "1-0", 2, "b", threading.Event())
    with ThreadPoolExecutor(1) as pool:
        handled = pool.submit(stage.handle, request, second)
        wait_until(lambda: len(events_of(log, RUN, TrainingStarted)) == 2, timeout=60)
        resumed = events_of(log, RUN, TrainingStarted)[1].payload.resumed_at_step
        assert resumed is not None
        assert resumed % 2 == 0
        log.append(TrainingCancelRequested(correlation_id=RUN))
        handled.result(timeout=60)
    assert types_of(log, RUN)[-1] == "training.cancelled"
    assert not worker_config.layout.checkpoint_dir(RUN).exists()


def test_a_cancel_after_an_interrupted_attempt_ends_the_run_without_resuming(
    stage: TrainingStage,
    redis_client: redis.Redis,
    worker_config: WorkerConfig,
    local_bank: LocalBank,
    tmp_path: Path,
) -> None:
    corpus_id = local_bank.put_corpus(tmp_path)
    request = _interrupted_after_a_checkpoint(stage, redis_client, worker_config, corpus_id)
    log = EventLog(redis_client)
    log.append(TrainingCancelRequested(correlation_id=RUN))
    stage.handle(request, Delivery(names.TRAINING_STREAM, "1-0", 2, "b", threading.Event()))
    assert types_of(log, RUN)[-2:] == ["training.cancel_requested", "training.cancelled"]
    assert len(events_of(log, RUN, TrainingStarted)) == 1  # not started again
    lines = log.read_range(names.run_logs_stream(RUN))
    assert lines[-1].fields[b"message"] == b"cancelled before training resumed"
    assert not worker_config.layout.checkpoint_dir(RUN).exists()
