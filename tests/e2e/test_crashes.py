"""SIGKILL of a worker process, during training and between training and upload: the node,
restarted, still ends the run completed with exactly one pointer, and retrains only what was
not finished. The killed worker is a real `python -m trainledger worker` process; the restarted
node (same node id, same artifacts root) runs in this process."""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path

import pytest

from consumers import WorkerConfig
from events import ArtifactPointerSet, TrainingCompleted, TrainingSpec, TrainingStarted, names
from tests.databank.faults import Fault
from tests.e2e.conftest import Pipeline
from tests.harness import events_of, tiny_spec, types_of
from tests.waiting import wait_until

STARTUP = 180.0
"""Seconds a worker process may take to import torch and transformers on a busy machine."""


@contextmanager
def worker_process(pipeline: Pipeline, config: WorkerConfig, stderr: Path) -> Iterator[int]:
    """`python -m trainledger worker` for `config`'s node; yields its PID; killed by PID after."""
    env = os.environ | {
        "REDIS__URL": pipeline.redis_url,
        "APP__NODE_ID": config.node_id,
        "APP__ARTIFACTS_ROOT": str(config.artifacts_root),
        "APP__DATA_BANK_API_URL": pipeline.bank.url,
        "APP__DATA_BANK_API_KEY": pipeline.bank.key,
        "APP__SIGNING_KEY": config.signing_keys.current.get_secret_value(),
        "WORKER__PROGRESS_INTERVAL_S": str(config.progress_interval_s),
        "WORKER__VISIBILITY_TIMEOUT_MS": str(config.visibility_timeout_ms),
        "WORKER__TORCH_THREADS": "1",  # as this process: the same arithmetic, byte for byte
    }
    with stderr.open("wb") as errors:
        process = subprocess.Popen(
            [sys.executable, "-m", "trainledger", "worker"],
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=errors,
        )
    try:
        yield process.pid
    finally:
        process.kill()
        process.wait(timeout=30)


def _sigkill(pid: int) -> None:
    os.kill(pid, signal.SIGKILL)


def _assert_json_logs_without_key(stderr: Path, key: str) -> list[dict[str, str]]:
    text = stderr.read_text()
    assert key not in text
    return [json.loads(line) for line in text.splitlines()]


def _progress_lines(pipeline: Pipeline, run_id: str) -> int:
    entries = pipeline.log.read_range(names.run_logs_stream(run_id))
    return sum(entry.fields[b"kind"] == b"progress" for entry in entries)


def _staging_left(config: WorkerConfig) -> list[str]:
    return [path.name for path in (config.artifacts_root / "models").iterdir()]


def _checkpointed(config: WorkerConfig, run_id: str) -> bool:
    directory = config.artifacts_root / "checkpoints" / run_id
    return directory.is_dir() and any(p.name.startswith("step-") for p in directory.iterdir())


def test_sigkill_during_training_the_restarted_node_resumes_and_uploads_once(
    pipeline: Pipeline, tmp_path: Path
) -> None:
    config = pipeline.worker_config("node-k", progress_interval_s=0.05)
    corpus_id = pipeline.bank.put_corpus(tmp_path)
    spec: TrainingSpec = tiny_spec(corpus_id, max_steps=400, checkpoint_every_steps=25)
    stderr = tmp_path / "worker.log"
    with worker_process(pipeline, config, stderr) as pid:
        run_id = pipeline.train(spec)
        wait_until(lambda: _checkpointed(config, run_id), timeout=STARTUP, what="a checkpoint")
        _sigkill(pid)
    assert "training.completed" not in types_of(pipeline.log, run_id)  # killed mid-training

    pipeline.start_worker(config)
    record = pipeline.wait_final(f"/runs/{run_id}")

    assert record["status"] == "completed"
    assert len(events_of(pipeline.log, run_id, ArtifactPointerSet)) == 1
    assert len(events_of(pipeline.log, run_id, TrainingCompleted)) == 1
    starts = events_of(pipeline.log, run_id, TrainingStarted)
    first, second = (e.payload for e in starts)
    assert (first.attempt, second.attempt) == (1, 2)
    assert second.resumed_at_step is not None
    assert second.resumed_at_step % 25 == 0
    assert (record["attempt"], record["resumed_at_step"]) == (2, second.resumed_at_step)
    assert datetime.fromisoformat(str(record["started_at"])) == starts[0].occurred_at
    assert _staging_left(config) == [run_id]  # the killed worker's staging directory is gone
    assert not (config.artifacts_root / "checkpoints" / run_id).exists()
    lines = [
        e.fields[b"message"].decode()
        for e in pipeline.log.read_range(names.run_logs_stream(run_id))
        if e.fields[b"kind"] == b"started"
    ]
    assert lines[-1].endswith(f"resumed from the checkpoint at step {second.resumed_at_step}")
    records = _assert_json_logs_without_key(stderr, pipeline.bank.key)
    started = [r for r in records if r.get("event") == "training_started"]
    assert [(r["service"], r["run_id"]) for r in started] == [("worker", run_id)]

    again = pipeline.train(spec)  # the same run uninterrupted: the same weights, byte for byte
    assert pipeline.wait_final(f"/runs/{again}")["status"] == "completed"
    models = config.artifacts_root / "models"
    resumed, straight = (models / r / "model.safetensors" for r in (run_id, again))
    assert resumed.read_bytes() == straight.read_bytes()


def test_sigkill_between_training_and_upload_uploads_without_training_again(
    pipeline: Pipeline, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="consumers")
    config = pipeline.worker_config("node-k")
    spec = tiny_spec(pipeline.bank.put_corpus(tmp_path))
    uploads = pipeline.bank.faults.requests
    pipeline.bank.faults.add(Fault(kind="hang", method="POST", path="/files"))
    with worker_process(pipeline, config, tmp_path / "worker.log") as pid:
        run_id = pipeline.train(spec)
        wait_until(lambda: len(uploads("POST", "/files")) == 2, timeout=STARTUP, what="upload")
        _sigkill(pid)  # the upload is in flight: Data Bank holds it and never answers
    assert types_of(pipeline.log, run_id)[-1] == "training.completed"

    pipeline.start_worker(config)
    record = pipeline.wait_final(f"/runs/{run_id}")

    assert record["status"] == "completed"
    assert len(events_of(pipeline.log, run_id, ArtifactPointerSet)) == 1
    assert len(events_of(pipeline.log, run_id, TrainingStarted)) == 1
    assert len(events_of(pipeline.log, run_id, TrainingCompleted)) == 1
    started_here = [r for r in caplog.records if getattr(r, "event", None) == "training_started"]
    assert started_here == []  # the restarted node did not train
    assert len(uploads("POST", "/files")) == 3
