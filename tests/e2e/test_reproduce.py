"""Reproduce through the whole pipeline: the new run trains the recorded spec again, its
artifact carries the same weights (CPU: byte for byte) and its own log, and its record says so."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from consumers import Manifest
from consumers.manifest import MANIFEST_FILE
from consumers.runlog import LOG_FILE, RecordedLine
from databank.client.extract import safe_extract
from events import ArtifactPointer
from tests.e2e.conftest import Pipeline
from tests.harness import tiny_spec


def _artifact(pipeline: Pipeline, run_id: str, target: Path) -> Path:
    answer = pipeline.api.get(f"/runs/{run_id}/artifact")
    assert answer.status_code == 200, answer.text
    pointer = ArtifactPointer.model_validate_json(answer.content)
    with pipeline.bank.client() as client:
        archive = client.download_to(pointer.file_id, target.with_suffix(".tar"))
    safe_extract(archive, target)
    return target


def test_a_reproduced_cpu_run_ships_byte_identical_weights_and_its_own_log(
    pipeline: Pipeline, tmp_path: Path
) -> None:
    pipeline.start_worker(pipeline.worker_config("node-a"))
    original = pipeline.train(tiny_spec(pipeline.bank.put_corpus(tmp_path)))
    assert pipeline.wait_final(f"/runs/{original}")["status"] == "completed"

    answer = pipeline.api.post(f"/runs/{original}/reproduce")
    assert answer.status_code == 202, answer.text
    again = answer.json()["run_id"]
    record = pipeline.wait_final(f"/runs/{again}")

    assert record["status"] == "completed"
    assert record["reproduction"] == {"of": original, "identical": True, "differences": []}
    first = _artifact(pipeline, original, tmp_path / "first")
    second = _artifact(pipeline, again, tmp_path / "second")
    weights = (first / "model.safetensors").read_bytes()
    assert (second / "model.safetensors").read_bytes() == weights
    manifests = [Manifest.read(directory / MANIFEST_FILE) for directory in (first, second)]
    assert manifests[0].model_sha256 == hashlib.sha256(weights).hexdigest()
    assert manifests[0].provenance() == manifests[1].provenance()
    assert manifests[0].execution != manifests[1].execution

    shipped = [
        RecordedLine.model_validate_json(line)
        for line in (second / LOG_FILE).read_text().splitlines()
    ]
    streamed = pipeline.api.get(f"/runs/{again}/logs", params={"follow": "false"}).text
    data = [json.loads(line[6:]) for line in streamed.splitlines() if line[:6] == "data: "]
    assert [line.kind for line in shipped] == [line["kind"] for line in data[:-1]]
    assert (shipped[0].kind, shipped[-1].kind) == ("started", "completed")
