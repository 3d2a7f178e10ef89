"""What the training stage leaves besides the model: the run's own log (`logs.jsonl`, every
attempt) in the run directory, the weights' provenance, and a reproduction's comparison."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
import redis

from consumers import Manifest, TrainingStage, WorkerConfig
from consumers.manifest import MANIFEST_FILE
from consumers.runlog import LOG_FILE, RecordedLine
from databank import DataBankClient
from events import (
    EventLog,
    Interrupted,
    Reproduction,
    TrainingCompleted,
    TrainingRequested,
)
from tests.harness import LocalBank, delivery, events_of, tiny_spec

RUN, AGAIN = "run-1", "run-2"


@pytest.fixture
def stage(
    redis_client: redis.Redis, bank_client: DataBankClient, worker_config: WorkerConfig
) -> TrainingStage:
    return TrainingStage(redis_client, bank_client, worker_config)


@pytest.fixture
def corpus_id(local_bank: LocalBank, tmp_path: Path) -> str:
    return local_bank.put_corpus(tmp_path)


def _request(
    redis_client: redis.Redis, corpus_id: str, run_id: str = RUN, reproduces: str | None = None
) -> TrainingRequested:
    event = TrainingRequested(
        correlation_id=run_id, payload=tiny_spec(corpus_id), reproduces=reproduces
    )
    EventLog(redis_client).append(event)
    return event


def _kinds(path: Path) -> list[str]:
    return [RecordedLine.model_validate_json(line).kind for line in path.read_text().splitlines()]


def test_the_run_directory_keeps_the_lines_of_every_attempt(
    stage: TrainingStage, redis_client: redis.Redis, worker_config: WorkerConfig, corpus_id: str
) -> None:
    request = _request(redis_client, corpus_id)
    with pytest.raises(Interrupted):  # the worker shuts down before the first step
        stage.handle(request, delivery(stopping=True))
    stage.handle(request, delivery(attempt=2))

    kept = worker_config.layout.run_dir(RUN) / LOG_FILE
    assert _kinds(kept) == ["started", "started", "progress", "progress", "progress", "completed"]
    assert kept.samefile(worker_config.layout.run_log(RUN))


def test_the_completion_carries_the_provenance_of_the_weights(
    stage: TrainingStage, redis_client: redis.Redis, worker_config: WorkerConfig, corpus_id: str
) -> None:
    stage.handle(_request(redis_client, corpus_id), delivery())

    run_dir = worker_config.layout.run_dir(RUN)
    manifest = Manifest.read(run_dir / MANIFEST_FILE)
    weights = hashlib.sha256((run_dir / "model.safetensors").read_bytes()).hexdigest()
    assert manifest.model_sha256 == weights
    assert manifest.execution.node_id == "node-a"
    [completed] = events_of(EventLog(redis_client), RUN, TrainingCompleted)
    assert completed.payload.provenance == manifest.provenance()
    assert completed.payload.reproduction is None


def test_a_reproduction_on_cpu_has_byte_identical_weights(
    stage: TrainingStage, redis_client: redis.Redis, worker_config: WorkerConfig, corpus_id: str
) -> None:
    stage.handle(_request(redis_client, corpus_id), delivery())
    stage.handle(_request(redis_client, corpus_id, AGAIN, reproduces=RUN), delivery())

    layout = worker_config.layout
    original = (layout.run_dir(RUN) / "model.safetensors").read_bytes()
    assert (layout.run_dir(AGAIN) / "model.safetensors").read_bytes() == original
    [completed] = events_of(EventLog(redis_client), AGAIN, TrainingCompleted)
    assert completed.payload.reproduction == Reproduction(of=RUN, identical=True, differences=[])


def test_a_recovered_completion_still_reaches_the_run_directory_log(
    stage: TrainingStage, redis_client: redis.Redis, worker_config: WorkerConfig, corpus_id: str
) -> None:
    """A worker that died after training and before `training.completed` was appended."""
    stage.handle(_request(redis_client, corpus_id), delivery())
    redis_client.flushdb()

    stage.handle(_request(redis_client, corpus_id), delivery(attempt=2))

    kept = worker_config.layout.run_dir(RUN) / LOG_FILE
    assert _kinds(kept)[-2:] == ["completed", "completed"]
    [completed] = events_of(EventLog(redis_client), RUN, TrainingCompleted)
    manifest = Manifest.read(worker_config.layout.run_dir(RUN) / MANIFEST_FILE)
    assert completed.payload.provenance == manifest.provenance()
