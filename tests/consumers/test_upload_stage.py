"""The upload stage against a real engine and a real local Data Bank: this node's completions
become pointers, once; a transient failure defers the upload (the entry stays pending) until
its window is over; every other failure becomes `artifact.upload_failed` with its reason; a
failed upload can be requested again; a pointer the deployment did not sign settles nothing."""

from __future__ import annotations

import hashlib
import logging
import os
from datetime import timedelta
from pathlib import Path

import pytest
import redis

from consumers import ArtifactUploader, Manifest, UploadStage, WorkerConfig
from consumers.manifest import MANIFEST_FILE
from consumers.upload_stage import UploadDeferred
from databank import DataBankClient
from events import (
    ArtifactPointer,
    ArtifactPointerRevoked,
    ArtifactPointerSet,
    ArtifactUploadDeferred,
    ArtifactUploaded,
    ArtifactUploadFailed,
    ArtifactUploadRequested,
    EventLog,
    PointerRefused,
    PointerRevokedPayload,
    SigningKeys,
    TokenizerCompleted,
    TokenizerCompletedPayload,
    TrainingCompleted,
    TrainingCompletedPayload,
    TrainingMetrics,
    UploadRequestedPayload,
    utc_now,
)
from tests.consumers.test_manifest import make_manifest
from tests.consumers.test_tarball import archive
from tests.databank.conftest import FAST
from tests.databank.faults import Fault
from tests.harness import LocalBank, delivery, events_of, types_of
from tests.projections.factories import (
    FORGERIES,
    SIGNING_KEYS,
    Forgery,
    forged_pointer,
    signed_pointer,
)

RUN = "run-1"
METRICS = TrainingMetrics(steps=3, tokens=384, seconds=0.5, tokens_per_second=768.0)


@pytest.fixture
def stage(
    redis_client: redis.Redis, bank_client: DataBankClient, worker_config: WorkerConfig
) -> UploadStage:
    return UploadStage(redis_client, ArtifactUploader(bank_client), worker_config)


@pytest.fixture
def run_dir(worker_config: WorkerConfig) -> Path:
    """A finished run's directory, as the training stage leaves it."""
    directory = worker_config.layout.run_dir(RUN)
    directory.mkdir(parents=True)
    (directory / "model.safetensors").write_bytes(os.urandom(2048))
    make_manifest().write(directory / MANIFEST_FILE)
    return directory


def _completed(redis_client: redis.Redis, node: str = "node-a") -> TrainingCompleted:
    payload = TrainingCompletedPayload(node_id=node, metrics=METRICS)
    event = TrainingCompleted(correlation_id=RUN, payload=payload)
    EventLog(redis_client).append(event)
    return event


def _posts(bank: LocalBank) -> int:
    return len(bank.faults.requests("POST", "/files"))


def test_a_completed_run_is_uploaded_and_pointed_to(
    stage: UploadStage,
    redis_client: redis.Redis,
    local_bank: LocalBank,
    run_dir: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="consumers")
    tar = archive(run_dir)
    file_id, size = hashlib.sha256(tar).hexdigest(), len(tar)

    stage.on_training_completed(_completed(redis_client), delivery())

    log = EventLog(redis_client)
    assert types_of(log, RUN) == [
        "training.completed",
        "artifact.uploaded",
        "artifact.pointer_set",
    ]
    uploaded = events_of(log, RUN, ArtifactUploaded)[0].payload
    assert (uploaded.subject, uploaded.node_id, uploaded.file_id) == ("run", "node-a", file_id)
    assert (uploaded.sha256, uploaded.size) == (file_id, size)
    [pointer_set] = events_of(log, RUN, ArtifactPointerSet)
    pointer = pointer_set.payload
    assert (pointer.subject, pointer.pointer.file_id, pointer.size) == ("run", file_id, size)
    SIGNING_KEYS.verify(pointer_set.signed_fields(), pointer.signature)  # signed by the node
    assert Manifest.read(run_dir / MANIFEST_FILE).artifact_pointer == pointer.pointer
    [record] = [r for r in caplog.records if getattr(r, "event", None) == "artifact_uploaded"]
    assert (getattr(record, "run_id", None), getattr(record, "file_id", None)) == (RUN, file_id)
    with local_bank.client() as client:
        assert client.head(file_id).size == size


def test_a_redelivered_completion_is_not_uploaded_again(
    stage: UploadStage, redis_client: redis.Redis, local_bank: LocalBank, run_dir: Path
) -> None:
    completed = _completed(redis_client)
    stage.on_training_completed(completed, delivery())
    stage.on_training_completed(completed, delivery(attempt=2))
    assert _posts(local_bank) == 1
    assert len(types_of(EventLog(redis_client), RUN)) == 3


def test_a_pointer_already_in_the_log_reaches_the_manifest_without_an_upload(
    stage: UploadStage, redis_client: redis.Redis, local_bank: LocalBank, run_dir: Path
) -> None:
    """A worker that died after `artifact.pointer_set` and before writing the manifest."""
    pointer = ArtifactPointer(file_id="c" * 64)
    completed = _completed(redis_client)
    EventLog(redis_client).append(signed_pointer("run", {"correlation_id": RUN}, "c" * 64))

    stage.on_training_completed(completed, delivery(attempt=2))
    stage.on_training_completed(completed, delivery(attempt=3))

    assert Manifest.read(run_dir / MANIFEST_FILE).artifact_pointer == pointer
    assert _posts(local_bank) == 0


def test_a_revoked_pointer_is_not_uploaded_again_nor_written(
    stage: UploadStage, redis_client: redis.Redis, local_bank: LocalBank, run_dir: Path
) -> None:
    completed = _completed(redis_client)
    log = EventLog(redis_client)
    log.append(signed_pointer("run", {"correlation_id": RUN}, "c" * 64))
    revoked = PointerRevokedPayload(subject="run", reason="bad weights")
    log.append(ArtifactPointerRevoked(correlation_id=RUN, payload=revoked))

    stage.on_training_completed(completed, delivery(attempt=2))

    assert Manifest.read(run_dir / MANIFEST_FILE).artifact_pointer is None
    assert _posts(local_bank) == 0


@pytest.mark.parametrize("kind", list(FORGERIES))
def test_a_forged_pointer_does_not_pass_for_the_upload(
    stage: UploadStage,
    redis_client: redis.Redis,
    local_bank: LocalBank,
    run_dir: Path,
    kind: Forgery,
) -> None:
    """A writer to the engine appends a pointer for the run before its node uploads: the node
    uploads all the same and publishes its own signed pointer, which reaches the manifest."""
    completed = _completed(redis_client)
    log = EventLog(redis_client)
    log.append(forged_pointer(kind, "run", {"correlation_id": RUN}, "c" * 64))
    file_id = _sha(run_dir)

    stage.on_training_completed(completed, delivery())

    assert _posts(local_bank) == 1
    forged, own = events_of(log, RUN, ArtifactPointerSet)
    own.verify(SIGNING_KEYS)
    assert (own.causation_id, own.payload.pointer.file_id) == (completed.event_id, file_id)
    assert forged.payload.pointer.file_id == "c" * 64
    assert Manifest.read(run_dir / MANIFEST_FILE).artifact_pointer == own.payload.pointer


def test_a_forged_pointer_after_a_failed_upload_does_not_swallow_the_request(
    stage: UploadStage, redis_client: redis.Redis, local_bank: LocalBank, run_dir: Path
) -> None:
    local_bank.faults.add(Fault(kind="answer", method="POST", status=403, body=b"{}"))
    stage.on_training_completed(_completed(redis_client), delivery())
    forged = forged_pointer("other key", "run", {"correlation_id": RUN}, "c" * 64)
    EventLog(redis_client).append(forged)
    file_id = _sha(run_dir)

    stage.on_upload_requested(_requested(redis_client), delivery())

    assert _posts(local_bank) == 2
    own = events_of(EventLog(redis_client), RUN, ArtifactPointerSet)[-1]
    own.verify(SIGNING_KEYS)
    assert own.payload.pointer.file_id == file_id


def _sha(run_dir: Path) -> str:
    """The file id the run's directory uploads as, now."""
    return hashlib.sha256(archive(run_dir)).hexdigest()


def test_another_nodes_completions_are_not_touched(
    stage: UploadStage, redis_client: redis.Redis, local_bank: LocalBank, run_dir: Path
) -> None:
    stage.on_training_completed(_completed(redis_client, node="node-b"), delivery())
    payload = TokenizerCompletedPayload(node_id="node-b", vocab_size=300)
    stage.on_tokenizer_completed(
        TokenizerCompleted(correlation_id="tok-1", payload=payload), delivery()
    )
    assert _posts(local_bank) == 0
    assert types_of(EventLog(redis_client), RUN) == ["training.completed"]


def _reason(redis_client: redis.Redis) -> str:
    [failed] = events_of(EventLog(redis_client), RUN, ArtifactUploadFailed)
    assert (failed.payload.subject, failed.payload.node_id) == ("run", "node-a")
    return failed.payload.reason


def test_a_missing_run_directory_fails_the_upload(
    stage: UploadStage,
    redis_client: redis.Redis,
    local_bank: LocalBank,
    worker_config: WorkerConfig,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="consumers")
    completed = _completed(redis_client)
    stage.on_training_completed(completed, delivery())
    stage.on_training_completed(completed, delivery(attempt=2))
    assert _reason(redis_client).startswith("FileNotFoundError: ")
    assert "are missing on node node-a" in _reason(redis_client)
    assert _posts(local_bank) == 0
    # the event is served to anyone who reads the run: the node's path stays in its log
    directory = str(worker_config.layout.run_dir(RUN))
    assert directory not in _reason(redis_client)
    assert "/" not in _reason(redis_client)
    assert any(directory in record.getMessage() for record in caplog.records)


def test_an_unreadable_file_fails_the_upload_without_its_path(
    stage: UploadStage,
    redis_client: redis.Redis,
    run_dir: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="consumers")
    secret = str(run_dir / "model.safetensors")

    def unreadable(directory: Path, *, name: str) -> None:
        raise PermissionError(13, "Permission denied", secret)

    monkeypatch.setattr(ArtifactUploader, "upload", lambda self, d, name: unreadable(d, name=name))
    stage.on_training_completed(_completed(redis_client), delivery())
    reason = _reason(redis_client)
    assert reason.startswith("PermissionError: ")
    assert "Permission denied" in reason
    assert "node node-a" in reason
    assert "/" not in reason
    assert any(secret in record.getMessage() for record in caplog.records)


def test_a_refused_upload_fails_with_the_reason(
    stage: UploadStage, redis_client: redis.Redis, local_bank: LocalBank, run_dir: Path
) -> None:
    body = b'{"code":"FORBIDDEN","message":"the key lacks the upload scope"}'
    local_bank.faults.add(Fault(kind="answer", method="POST", status=403, body=body))
    stage.on_training_completed(_completed(redis_client), delivery())
    assert _reason(redis_client).startswith("Forbidden: POST /files: the key lacks")
    assert Manifest.read(run_dir / MANIFEST_FILE).artifact_pointer is None


def test_a_directory_that_cannot_be_archived_fails_the_upload(
    stage: UploadStage, redis_client: redis.Redis, run_dir: Path
) -> None:
    (run_dir / "link").symlink_to(run_dir / "model.safetensors")
    stage.on_training_completed(_completed(redis_client), delivery())
    assert _reason(redis_client).startswith("UnsupportedMember: link: ")


def test_a_run_directory_without_manifest_is_uploaded_as_it_is(
    stage: UploadStage, redis_client: redis.Redis, run_dir: Path
) -> None:
    (run_dir / MANIFEST_FILE).unlink()
    stage.on_training_completed(_completed(redis_client), delivery())
    assert types_of(EventLog(redis_client), RUN)[-1] == "artifact.pointer_set"
    assert not (run_dir / MANIFEST_FILE).exists()


def test_a_tokenizer_is_uploaded_and_pointed_to(
    stage: UploadStage,
    redis_client: redis.Redis,
    worker_config: WorkerConfig,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="consumers")
    directory = worker_config.layout.tokenizer_dir("tok-1")
    directory.mkdir(parents=True)
    (directory / "tokenizer.json").write_text("{}")
    payload = TokenizerCompletedPayload(node_id="node-a", vocab_size=300)
    completed = TokenizerCompleted(correlation_id="tok-1", payload=payload)
    EventLog(redis_client).append(completed)

    stage.on_tokenizer_completed(completed, delivery())

    [pointer] = events_of(EventLog(redis_client), "tok-1", ArtifactPointerSet)
    assert (pointer.payload.subject, pointer.payload.pointer.file_id) == (
        "tokenizer",
        hashlib.sha256(archive(directory)).hexdigest(),
    )
    SIGNING_KEYS.verify(pointer.signed_fields(), pointer.payload.signature)
    other = SigningKeys(current="someone-elses-key-" + "9" * 32)
    with pytest.raises(PointerRefused, match="POINTER_KEY_UNKNOWN"):
        other.verify(pointer.signed_fields(), pointer.payload.signature)
    [record] = [r for r in caplog.records if getattr(r, "event", None) == "artifact_uploaded"]
    assert getattr(record, "tokenizer_id", None) == "tok-1"


def test_a_failed_tokenizer_upload_names_the_tokenizer(
    stage: UploadStage,
    redis_client: redis.Redis,
    local_bank: LocalBank,
    caplog: pytest.LogCaptureFixture,
) -> None:
    payload = TokenizerCompletedPayload(node_id="node-a", vocab_size=300)
    completed = TokenizerCompleted(correlation_id="tok-1", payload=payload)
    EventLog(redis_client).append(completed)
    stage.on_tokenizer_completed(completed, delivery())
    [failed] = events_of(EventLog(redis_client), "tok-1", ArtifactUploadFailed)
    assert failed.payload.subject == "tokenizer"
    [record] = [r for r in caplog.records if getattr(r, "event", None) == "artifact_upload_failed"]
    assert getattr(record, "tokenizer_id", None) == "tok-1"


def _outage(bank: LocalBank, attempts: int = FAST.attempts, status: int = 503) -> None:
    """Data Bank answers `status` to the next `attempts` uploads: one stage attempt's worth."""
    body = b'{"code":"UNAVAILABLE","message":"down for maintenance"}'
    bank.faults.add(
        Fault(kind="answer", method="POST", path="/files", status=status, body=body, times=attempts)
    )


def _requested(redis_client: redis.Redis, subject_id: str = RUN) -> ArtifactUploadRequested:
    payload = UploadRequestedPayload(subject="run" if subject_id == RUN else "tokenizer")
    event = ArtifactUploadRequested(correlation_id=subject_id, payload=payload)
    EventLog(redis_client).append(event)
    return event


def test_a_transient_failure_defers_the_upload_until_data_bank_is_back(
    stage: UploadStage,
    redis_client: redis.Redis,
    local_bank: LocalBank,
    run_dir: Path,
    worker_config: WorkerConfig,
) -> None:
    completed = _completed(redis_client)
    _outage(local_bank)
    _outage(local_bank)
    before = utc_now()

    with pytest.raises(UploadDeferred, match="attempt 1 of the upload of run-1: TransientError"):
        stage.on_training_completed(completed, delivery())
    with pytest.raises(UploadDeferred, match="attempt 2"):
        stage.on_training_completed(completed, delivery(attempt=2))
    stage.on_training_completed(completed, delivery(attempt=3))

    log = EventLog(redis_client)
    first, second = (e.payload for e in events_of(log, RUN, ArtifactUploadDeferred))
    assert (first.attempt, second.attempt) == (1, 2)
    assert (first.subject, first.node_id) == ("run", "node-a")
    assert "TransientError" in first.error
    assert "status=503" in first.error
    window = timedelta(seconds=worker_config.upload_retry_window_s)
    assert before + window <= first.deadline <= utc_now() + window
    assert second.deadline == first.deadline
    retry = timedelta(milliseconds=worker_config.visibility_timeout_ms)
    assert second.next_attempt_at - retry >= first.next_attempt_at - retry >= before
    assert types_of(log, RUN)[-2:] == ["artifact.uploaded", "artifact.pointer_set"]
    assert not events_of(log, RUN, ArtifactUploadFailed)
    assert Manifest.read(run_dir / MANIFEST_FILE).artifact_pointer is not None


def test_insufficient_storage_is_transient(
    stage: UploadStage, redis_client: redis.Redis, local_bank: LocalBank, run_dir: Path
) -> None:
    _outage(local_bank, attempts=1, status=507)
    with pytest.raises(UploadDeferred, match="InsufficientStorage"):
        stage.on_training_completed(_completed(redis_client), delivery())
    assert not events_of(EventLog(redis_client), RUN, ArtifactUploadFailed)


def test_past_its_window_a_transient_failure_fails_the_upload(
    redis_client: redis.Redis,
    bank_client: DataBankClient,
    local_bank: LocalBank,
    run_dir: Path,
    worker_config: WorkerConfig,
) -> None:
    config = worker_config.model_copy(update={"upload_retry_window_s": 0})
    stage = UploadStage(redis_client, ArtifactUploader(bank_client), config)
    _outage(local_bank)
    completed = _completed(redis_client)
    stage.on_training_completed(completed, delivery())
    stage.on_training_completed(completed, delivery(attempt=2))
    reason = _reason(redis_client)
    assert reason.startswith("TransientError: ")
    assert reason.endswith("(gave up after 1 attempts, 0 s)")
    assert not events_of(EventLog(redis_client), RUN, ArtifactUploadDeferred)
    assert _posts(local_bank) == FAST.attempts


def test_a_failed_upload_requested_again_is_uploaded(
    stage: UploadStage, redis_client: redis.Redis, local_bank: LocalBank, run_dir: Path
) -> None:
    local_bank.faults.add(Fault(kind="answer", method="POST", status=403, body=b"{}"))
    stage.on_training_completed(_completed(redis_client), delivery())
    request = _requested(redis_client)

    stage.on_upload_requested(request, delivery())
    stage.on_upload_requested(request, delivery(attempt=2))
    stage.on_upload_requested(_requested(redis_client), delivery())

    log = EventLog(redis_client)
    [pointer] = events_of(log, RUN, ArtifactPointerSet)
    assert pointer.causation_id == request.event_id
    assert Manifest.read(run_dir / MANIFEST_FILE).artifact_pointer == pointer.payload.pointer
    assert _posts(local_bank) == 2


def test_a_requested_upload_has_its_own_deferrals(
    stage: UploadStage, redis_client: redis.Redis, local_bank: LocalBank, run_dir: Path
) -> None:
    local_bank.faults.add(Fault(kind="answer", method="POST", status=413, body=b"{}"))
    stage.on_training_completed(_completed(redis_client), delivery())
    request = _requested(redis_client)
    _outage(local_bank)

    with pytest.raises(UploadDeferred, match="attempt 1"):
        stage.on_upload_requested(request, delivery())
    stage.on_upload_requested(_requested(redis_client), delivery())  # one is pending: ignored
    stage.on_upload_requested(request, delivery(attempt=2))

    log = EventLog(redis_client)
    [deferred] = events_of(log, RUN, ArtifactUploadDeferred)
    assert deferred.causation_id == request.event_id
    [pointer] = events_of(log, RUN, ArtifactPointerSet)
    assert pointer.causation_id == request.event_id


def test_a_request_does_nothing_unless_an_upload_of_this_node_failed(
    stage: UploadStage, redis_client: redis.Redis, local_bank: LocalBank, run_dir: Path
) -> None:
    stage.on_upload_requested(_requested(redis_client), delivery())  # not trained yet
    stage.on_upload_requested(_requested(redis_client, "tok-1"), delivery())
    _completed(redis_client)
    stage.on_upload_requested(_requested(redis_client), delivery())  # first upload still due
    _completed(redis_client, node="node-b")
    other = TokenizerCompletedPayload(node_id="node-b", vocab_size=300)
    EventLog(redis_client).append(TokenizerCompleted(correlation_id="tok-1", payload=other))
    stage.on_upload_requested(_requested(redis_client, "tok-1"), delivery())
    assert _posts(local_bank) == 0


def test_the_upload_group_allows_the_deliveries_its_window_holds(
    worker_config: WorkerConfig,
) -> None:
    config = worker_config.model_copy(
        update={"upload_retry_window_s": 60, "visibility_timeout_ms": 1000, "max_deliveries": 5}
    )
    assert config.upload_runtime().max_deliveries == 5 + 90 + 1
    assert config.upload_runtime().visibility_timeout_ms == 1000
    assert config.runtime().max_deliveries == 5
