"""The training stage against a real engine and a real local Data Bank, handler called directly."""

from __future__ import annotations

import logging
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import redis
from transformers import PreTrainedTokenizerFast

from consumers import Manifest, TrainingStage, WorkerConfig
from consumers.manifest import MANIFEST_FILE, TokenizerRecord
from consumers.uploader import ArtifactUploader
from databank import DataBankClient, TransientError
from events import (
    EventLog,
    Interrupted,
    StartedPayload,
    TokenizerParams,
    TokenizerRef,
    TrainingCancelRequested,
    TrainingCompleted,
    TrainingFailed,
    TrainingProgressed,
    TrainingRequested,
    TrainingSpec,
    TrainingStarted,
    names,
)
from tests.databank.faults import Fault
from tests.harness import LocalBank, delivery, events_of, tiny_spec, types_of
from tests.projections.factories import signed_pointer
from tests.waiting import wait_until

RUN = "run-1"


@pytest.fixture
def stage(
    redis_client: redis.Redis, bank_client: DataBankClient, worker_config: WorkerConfig
) -> TrainingStage:
    return TrainingStage(redis_client, bank_client, worker_config)


@pytest.fixture
def corpus_id(local_bank: LocalBank, tmp_path: Path) -> str:
    return local_bank.put_corpus(tmp_path)


def _request(redis_client: redis.Redis, spec: TrainingSpec) -> TrainingRequested:
    event = TrainingRequested(correlation_id=RUN, payload=spec)
    EventLog(redis_client).append(event)
    return event


def _lines(redis_client: redis.Redis) -> list[str]:
    entries = EventLog(redis_client).read_range(names.run_logs_stream(RUN))
    return [entry.fields[b"kind"].decode() for entry in entries]


def _leftovers(config: WorkerConfig) -> list[str]:
    models = config.artifacts_root / "models"
    return sorted(path.name for path in models.iterdir()) if models.exists() else []


def test_a_request_is_trained_saved_and_completed(
    stage: TrainingStage,
    redis_client: redis.Redis,
    worker_config: WorkerConfig,
    corpus_id: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="consumers")
    stage.handle(_request(redis_client, tiny_spec(corpus_id)), delivery())

    log = EventLog(redis_client)
    assert types_of(log, RUN) == ["training.requested", "training.started", "training.completed"]
    completed = events_of(log, RUN, TrainingCompleted)[0]
    run_dir = worker_config.layout.run_dir(RUN)
    manifest = Manifest.read(run_dir / MANIFEST_FILE)
    assert completed.payload.node_id == "node-a"
    assert completed.payload.metrics == manifest.metrics
    assert (manifest.run_id, manifest.corpus_file_id) == (RUN, corpus_id)
    asked = TokenizerParams(vocab_size=300, min_frequency=2)  # tiny_spec's
    assert tiny_spec(corpus_id).tokenizer == asked
    assert manifest.tokenizer == TokenizerRecord(
        params=asked, vocab_size=manifest.model["vocab_size"]
    )
    assert manifest.versions.trainledger == worker_config.trainledger_version == "1.2.3"
    assert manifest.execution.timings.tokenizer_seconds is not None
    assert manifest.artifact_pointer is None
    assert {"model.safetensors", "tokenizer.json", "config.json"} <= {
        path.name for path in run_dir.iterdir()
    }
    assert _leftovers(worker_config) == [RUN]
    assert _lines(redis_client) == ["started", "progress", "progress", "progress", "completed"]
    started = [r for r in caplog.records if getattr(r, "event", None) == "training_started"]
    assert [getattr(r, "run_id", None) for r in started] == [RUN]


def test_a_redelivered_request_of_a_finished_run_does_nothing(
    stage: TrainingStage, redis_client: redis.Redis, corpus_id: str
) -> None:
    request = _request(redis_client, tiny_spec(corpus_id))
    stage.handle(request, delivery())
    before = types_of(EventLog(redis_client), RUN)
    stage.handle(request, delivery(attempt=2))
    assert types_of(EventLog(redis_client), RUN) == before


def test_a_run_cancelled_while_queued_is_not_trained(
    stage: TrainingStage, redis_client: redis.Redis, worker_config: WorkerConfig, corpus_id: str
) -> None:
    request = _request(redis_client, tiny_spec(corpus_id))
    EventLog(redis_client).append(TrainingCancelRequested(correlation_id=RUN))
    stage.handle(request, delivery())
    assert types_of(EventLog(redis_client), RUN) == [
        "training.requested",
        "training.cancel_requested",
        "training.cancelled",
    ]
    assert _leftovers(worker_config) == []


def test_a_complete_run_directory_is_reported_without_retraining(
    stage: TrainingStage, redis_client: redis.Redis, worker_config: WorkerConfig, corpus_id: str
) -> None:
    """A worker that died after training and before `training.completed` left the directory."""
    stage.handle(_request(redis_client, tiny_spec(corpus_id)), delivery())
    manifest = Manifest.read(worker_config.layout.run_dir(RUN) / MANIFEST_FILE)
    redis_client.flushdb()  # a log in which `training.completed` was never appended

    stage.handle(_request(redis_client, tiny_spec(corpus_id)), delivery(attempt=2))

    log = EventLog(redis_client)
    assert types_of(log, RUN) == ["training.requested", "training.completed"]
    assert events_of(log, RUN, TrainingCompleted)[0].payload.metrics == manifest.metrics


def test_a_run_directory_without_a_valid_manifest_is_trained_again(
    stage: TrainingStage, redis_client: redis.Redis, worker_config: WorkerConfig, corpus_id: str
) -> None:
    run_dir = worker_config.layout.run_dir(RUN)
    run_dir.mkdir(parents=True)
    (run_dir / MANIFEST_FILE).write_text("{}")
    stage.handle(_request(redis_client, tiny_spec(corpus_id)), delivery())
    assert types_of(EventLog(redis_client), RUN)[-1] == "training.completed"
    assert Manifest.read(run_dir / MANIFEST_FILE).run_id == RUN


@pytest.mark.parametrize(
    ("spec_of", "code", "message"),
    [
        (lambda _: tiny_spec("ab" * 32), "corpus_not_found", f"corpus {'ab' * 32} not found"),
        (lambda c: tiny_spec(c, precision="fp16"), "training_error", "'fp16' needs CUDA"),
        (
            lambda c: tiny_spec(c).model_copy(update={"tokenizer": TokenizerRef(tokenizer_id="t")}),
            "tokenizer_unavailable",
            "tokenizer t has no verified pointer",
        ),
    ],
    ids=["unknown-corpus", "fp16-on-cpu", "tokenizer-without-pointer"],
)
def test_a_request_that_cannot_succeed_fails_with_the_reason(
    stage: TrainingStage,
    redis_client: redis.Redis,
    worker_config: WorkerConfig,
    corpus_id: str,
    spec_of: Callable[[str], TrainingSpec],
    code: str,
    message: str,
) -> None:
    stage.handle(_request(redis_client, spec_of(corpus_id)), delivery())

    failed = events_of(EventLog(redis_client), RUN, TrainingFailed)
    assert [event.payload.error_code for event in failed] == [code]
    assert message in failed[0].payload.message
    assert _lines(redis_client)[-1] == "failed"
    assert _leftovers(worker_config) == []


def test_a_corpus_that_is_not_text_fails(
    stage: TrainingStage, redis_client: redis.Redis, local_bank: LocalBank
) -> None:
    spec = tiny_spec(local_bank.put(b"\xff\xfe not utf-8 \x80" * 100))
    stage.handle(_request(redis_client, spec), delivery())
    failed = events_of(EventLog(redis_client), RUN, TrainingFailed)
    assert [event.payload.error_code for event in failed] == ["corpus_invalid"]
    assert "not UTF-8" in failed[0].payload.message


def test_a_run_uses_a_tokenizer_named_by_id(
    stage: TrainingStage,
    redis_client: redis.Redis,
    bank_client: DataBankClient,
    worker_config: WorkerConfig,
    tokenizer: PreTrainedTokenizerFast,
    corpus_id: str,
    tmp_path: Path,
) -> None:
    tokenizer.save_pretrained(tmp_path / "tok")
    file_id = ArtifactUploader(bank_client).upload(tmp_path / "tok", name="tok.tar").file_id
    EventLog(redis_client).append(signed_pointer("tokenizer", {"correlation_id": "tok-1"}, file_id))
    spec = tiny_spec(corpus_id).model_copy(update={"tokenizer": TokenizerRef(tokenizer_id="tok-1")})

    stage.handle(_request(redis_client, spec), delivery())

    manifest = Manifest.read(worker_config.layout.run_dir(RUN) / MANIFEST_FILE)
    reused = TokenizerRecord(tokenizer_id="tok-1", vocab_size=len(tokenizer))
    assert (manifest.tokenizer, manifest.execution.timings.tokenizer_seconds) == (reused, None)
    assert manifest.model["vocab_size"] == len(tokenizer)


def test_a_stopping_worker_leaves_the_run_for_another(
    stage: TrainingStage, redis_client: redis.Redis, worker_config: WorkerConfig, corpus_id: str
) -> None:
    with pytest.raises(Interrupted):
        stage.handle(_request(redis_client, tiny_spec(corpus_id)), delivery(stopping=True))
    assert types_of(EventLog(redis_client), RUN) == ["training.requested", "training.started"]
    assert _leftovers(worker_config) == []


def test_data_bank_down_leaves_the_request_for_a_later_delivery(
    stage: TrainingStage, redis_client: redis.Redis, local_bank: LocalBank, corpus_id: str
) -> None:
    local_bank.faults.add(Fault(kind="answer", method="GET", times=3))
    with pytest.raises(TransientError):
        stage.handle(_request(redis_client, tiny_spec(corpus_id)), delivery())
    assert types_of(EventLog(redis_client), RUN) == ["training.requested", "training.started"]


def test_a_cancel_during_training_stops_it_between_steps(
    stage: TrainingStage, redis_client: redis.Redis, worker_config: WorkerConfig, corpus_id: str
) -> None:
    request = _request(redis_client, tiny_spec(corpus_id, max_steps=100_000))
    with ThreadPoolExecutor(1) as pool:
        handled = pool.submit(stage.handle, request, delivery())
        wait_until(lambda: "progress" in _lines(redis_client), timeout=30, what="training")
        EventLog(redis_client).append(TrainingCancelRequested(correlation_id=RUN))
        handled.result(timeout=30)

    assert types_of(EventLog(redis_client), RUN)[-1] == "training.cancelled"
    assert _lines(redis_client)[-1] == "cancelled"
    assert _leftovers(worker_config) == []


def test_progress_reports_carry_the_loss_curves(
    stage: TrainingStage, redis_client: redis.Redis, corpus_id: str
) -> None:
    spec = tiny_spec(corpus_id, max_steps=6, eval_every_steps=2)
    stage.handle(_request(redis_client, spec), delivery())

    log = EventLog(redis_client)
    reports = events_of(log, RUN, TrainingProgressed)
    # the first report goes out at once; later ones wait out the interval, but the last
    # step's always goes, holding the whole curves and the final validation loss
    assert [r.payload.step for r in reports] == [1, 6]
    last = reports[-1].payload
    assert [p.step for p in last.train] == [1, 2, 3, 4, 5, 6]
    assert [p.step for p in last.validation] == [2, 4, 6]
    completed = events_of(log, RUN, TrainingCompleted)[0]
    assert last.validation[-1].loss == completed.payload.metrics.val_loss
    assert types_of(log, RUN, progress=True).count("training.progress") == 2


def test_a_run_another_node_started_starts_over_here_and_says_so(
    stage: TrainingStage, redis_client: redis.Redis, corpus_id: str
) -> None:
    request = _request(redis_client, tiny_spec(corpus_id))
    elsewhere = StartedPayload(node_id="node-b")
    EventLog(redis_client).append(
        TrainingStarted(correlation_id=RUN, causation_id=request.event_id, payload=elsewhere)
    )
    stage.handle(request, delivery(attempt=2))

    starts = [e.payload for e in events_of(EventLog(redis_client), RUN, TrainingStarted)]
    assert [(s.node_id, s.attempt, s.resumed_at_step) for s in starts] == [
        ("node-b", 1, None),
        ("node-a", 2, None),
    ]
    lines = EventLog(redis_client).read_range(names.run_logs_stream(RUN))
    said = [e.fields[b"message"].decode() for e in lines if e.fields[b"kind"] == b"started"]
    assert said == [
        "attempt 2: training started on node node-a, from step 0 (no checkpoint on this node)"
    ]
