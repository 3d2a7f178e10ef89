"""Data Bank failing the upload, each way it can. A permanent failure ends the run `failed`
with the message `artifact upload failed` at once (the log holds `artifact.upload_failed`
with the reason); a transient one (an outage longer than the client's retries) keeps it
`uploading` and tried again until Data Bank is back, or fails it past the retry window; a
failed upload can be requested again."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from databank import Timeouts
from events import ArtifactPointerSet, ArtifactUploadDeferred, ArtifactUploadFailed, TokenizerSpec
from tests.databank.faults import Fault
from tests.e2e.conftest import Pipeline
from tests.harness import events_of, tiny_spec
from tests.waiting import wait_until

_INFO = {
    "size": 1,
    "sha256": "0" * 64,
    "content_type": "application/x-tar",
    "created_at": "2024-01-01T00:00:00Z",
}


def _error(status: int, code: str, message: str) -> Fault:
    body = json.dumps({"code": code, "message": message, "request_id": None}).encode()
    return Fault(kind="answer", method="POST", path="/files", status=status, body=body)


CASES = {
    "401": (_error(401, "UNAUTHORIZED", "missing X-API-Key"), "Unauthorized: POST /files"),
    "403": (_error(403, "FORBIDDEN", "the key lacks the upload scope"), "Forbidden: POST /files"),
    "413": (_error(413, "PAYLOAD_TOO_LARGE", "over MAX_FILE_BYTES"), "PayloadTooLarge"),
    "malformed-json": (
        Fault(kind="answer", method="POST", path="/files", status=201, body=b'{"file_id": '),
        "InvalidAnswer: POST /files: answer is not a FileInfo",
    ),
    "json-without-file-id": (
        Fault(
            kind="answer", method="POST", path="/files", status=201, body=json.dumps(_INFO).encode()
        ),
        "InvalidAnswer: POST /files: answer is not a FileInfo: file_id",
    ),
    "wrong-file-id": (
        Fault(
            kind="answer",
            method="POST",
            path="/files",
            status=201,
            body=json.dumps(_INFO | {"file_id": "0" * 64}).encode(),
        ),
        "IntegrityError: upload answered file_id=" + "0" * 64,
    ),
}


@pytest.mark.parametrize(("fault", "reason"), CASES.values(), ids=CASES.keys())
def test_a_failed_upload_fails_the_run(
    pipeline: Pipeline, tmp_path: Path, fault: Fault, reason: str
) -> None:
    spec = tiny_spec(pipeline.bank.put_corpus(tmp_path), max_steps=1)
    pipeline.bank.faults.add(fault)
    short = Timeouts(connect=2, read=5, upload=0.3)
    pipeline.start_worker(pipeline.worker_config("node-a"), pipeline.bank.client(timeouts=short))
    run_id = pipeline.train(spec)

    record = pipeline.wait_final(f"/runs/{run_id}")

    assert record["status"] == "failed"
    message = record["message"]
    assert isinstance(message, str)
    assert message == "artifact upload failed"
    [failed] = events_of(pipeline.log, run_id, ArtifactUploadFailed)
    assert reason in failed.payload.reason
    assert failed.payload.node_id == "node-a"
    assert not events_of(pipeline.log, run_id, ArtifactUploadDeferred)  # failed at once
    assert record["failed_at"] is not None
    assert pipeline.api.get(f"/runs/{run_id}/artifact").status_code == 404


OUTAGE = 10_000
"""Enough failing answers to outlast any number of client retries: the test ends the outage."""
OUTAGES = {
    "5xx": (_error(503, "UNAVAILABLE", "down for maintenance"), "status=503"),
    "timeout": (Fault(kind="hang", method="POST", path="/files"), "ReadTimeout"),
    "507": (_error(507, "INSUFFICIENT_STORAGE", "disk almost full"), "InsufficientStorage"),
}
SHORT = Timeouts(connect=2, read=5, upload=0.3)


def _deferrals(pipeline: Pipeline, run_id: str) -> list[ArtifactUploadDeferred]:
    return events_of(pipeline.log, run_id, ArtifactUploadDeferred)


@pytest.mark.parametrize(("fault", "error"), OUTAGES.values(), ids=OUTAGES.keys())
def test_a_run_that_finishes_during_an_outage_completes_once_data_bank_is_back(
    pipeline: Pipeline, tmp_path: Path, fault: Fault, error: str
) -> None:
    spec = tiny_spec(pipeline.bank.put_corpus(tmp_path), max_steps=1)
    pipeline.bank.faults.add(fault.model_copy(update={"times": OUTAGE}))
    config = pipeline.worker_config("node-a", upload_retry_window_s=120)
    pipeline.start_worker(config, pipeline.bank.client(timeouts=SHORT))
    run_id = pipeline.train(spec)
    path = f"/runs/{run_id}"

    # Tried again after the client's retries ran out, the status naming the last error.
    wait_until(lambda: len(_deferrals(pipeline, run_id)) >= 2, timeout=60, what="a retry")
    wait_until(
        lambda: "attempt 2 failed" in str(pipeline.status(path).get("message")),
        what="the status of the second attempt",
    )
    record = pipeline.status(path)
    assert record["status"] == "uploading"
    message = str(record["message"])
    assert message.startswith("artifact upload waiting for Data Bank (attempt 2 failed: ")
    assert error in message
    assert "next attempt at about " in message
    assert record["failed_at"] is None
    assert not events_of(pipeline.log, run_id, ArtifactUploadFailed)

    pipeline.bank.faults.reset()  # Data Bank is back
    record = pipeline.wait_final(path)

    assert record["status"] == "completed"
    assert record["message"] is None
    [pointer] = events_of(pipeline.log, run_id, ArtifactPointerSet)
    artifact = pipeline.api.get(f"/runs/{run_id}/artifact").json()
    assert artifact["file_id"] == pointer.payload.pointer.file_id
    with pipeline.bank.client() as client:
        assert client.head(artifact["file_id"]).file_id == artifact["file_id"]


def test_past_its_retry_window_the_upload_fails(pipeline: Pipeline, tmp_path: Path) -> None:
    spec = tiny_spec(pipeline.bank.put_corpus(tmp_path), max_steps=1)
    pipeline.bank.faults.add(OUTAGES["5xx"][0].model_copy(update={"times": OUTAGE}))
    config = pipeline.worker_config("node-a", upload_retry_window_s=0.5)
    pipeline.start_worker(config, pipeline.bank.client())
    run_id = pipeline.train(spec)

    record = pipeline.wait_final(f"/runs/{run_id}")

    assert (record["status"], record["message"]) == ("failed", "artifact upload failed")
    [deferred] = _deferrals(pipeline, run_id)
    [failed] = events_of(pipeline.log, run_id, ArtifactUploadFailed)
    assert failed.occurred_at >= deferred.payload.deadline
    assert failed.payload.reason.endswith("(gave up after 2 attempts, 0.5 s)")
    assert "status=503" in failed.payload.reason


def _wait_status(pipeline: Pipeline, path: str, status: str) -> None:
    wait_until(lambda: pipeline.status(path).get("status") == status, timeout=30, what=status)


def _post(pipeline: Pipeline, path: str, key: str = "") -> tuple[int, dict[str, object]]:
    answer = pipeline.api.post(path, headers={"Idempotency-Key": key} if key else {})
    body = answer.json()
    assert isinstance(body, dict)
    return answer.status_code, body


def test_a_failed_upload_requested_again_completes(pipeline: Pipeline, tmp_path: Path) -> None:
    corpus = pipeline.bank.put_corpus(tmp_path)
    pipeline.bank.faults.add(CASES["403"][0].model_copy(update={"times": 2}))
    pipeline.start_worker(pipeline.worker_config("node-a"), pipeline.bank.client())
    run_id = pipeline.train(tiny_spec(corpus, max_steps=1))
    tokenizer_id = pipeline.train_tokenizer(TokenizerSpec(corpus_file_id=corpus))
    assert pipeline.wait_final(f"/runs/{run_id}")["status"] == "failed"
    assert pipeline.wait_final(f"/tokenizers/{tokenizer_id}")["status"] == "failed"

    status, accepted = _post(pipeline, f"/runs/{run_id}/upload", key="again-1")
    assert (status, accepted["run_id"]) == (202, run_id)
    assert isinstance(accepted["entry_id"], str)
    accepted_run = accepted
    status, accepted = _post(pipeline, f"/tokenizers/{tokenizer_id}/upload")
    assert (status, accepted["tokenizer_id"]) == (202, tokenizer_id)

    for path in (f"/runs/{run_id}", f"/tokenizers/{tokenizer_id}"):
        _wait_status(pipeline, path, "completed")
    assert pipeline.status(f"/runs/{run_id}")["failed_at"] is None
    [pointer] = events_of(pipeline.log, run_id, ArtifactPointerSet)
    artifact = pipeline.api.get(f"/runs/{run_id}/artifact").json()
    assert artifact["file_id"] == pointer.payload.pointer.file_id
    assert len(events_of(pipeline.log, tokenizer_id, ArtifactPointerSet)) == 1

    # A retried request gets its first answer; a new one finds the pointer: nothing to upload.
    assert _post(pipeline, f"/runs/{run_id}/upload", key="again-1") == (202, accepted_run)
    status, error = _post(pipeline, f"/runs/{run_id}/upload")
    assert (status, error["code"]) == (409, "CONFLICT")
    assert error["message"] == f"run {run_id} already has its artifact"
    status, error = _post(pipeline, f"/tokenizers/{tokenizer_id}/upload")
    assert status == 409


def test_an_upload_request_needs_a_failed_upload(pipeline: Pipeline, tmp_path: Path) -> None:
    status, error = _post(pipeline, "/runs/nope/upload")
    assert (status, error["code"], error["message"]) == (404, "NOT_FOUND", "no run nope")
    status, error = _post(pipeline, "/tokenizers/nope/upload")
    assert (status, error["message"]) == (404, "no tokenizer nope")
    run_id = pipeline.train(tiny_spec(pipeline.bank.put_corpus(tmp_path)))  # no worker: queued
    _wait_status(pipeline, f"/runs/{run_id}", "queued")
    status, error = _post(pipeline, f"/runs/{run_id}/upload")
    assert (status, error["message"]) == (
        409,
        f"run {run_id} is queued: only a failed upload can be requested again",
    )
