"""Data Bank failing the upload, each way it can: the run ends `failed` with the message
`artifact upload failed`, and the log holds `artifact.upload_failed` with the reason."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from databank import Timeouts
from events import ArtifactUploadFailed
from tests.databank.conftest import FAST
from tests.databank.faults import Fault
from tests.e2e.conftest import Pipeline
from tests.harness import events_of, tiny_spec

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
    "500-until-retries-run-out": (
        _error(500, "INTERNAL", "disk on fire").model_copy(update={"times": FAST.attempts}),
        f"upload failed after {FAST.attempts} attempt(s)",
    ),
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
    "timeout": (
        Fault(kind="hang", method="POST", path="/files", times=FAST.attempts),
        "ReadTimeout",
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
    assert pipeline.api.get(f"/runs/{run_id}/artifact").status_code == 404
