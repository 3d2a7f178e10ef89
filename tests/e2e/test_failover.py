"""Survive a primary failover: a real primary, one replica and three Sentinels on loopback.

Every service is given the Sentinels' URL. The primary is SIGKILLed while the API takes writes
and a worker trains; the Sentinels promote the replica; the projector, the worker and the API
reconnect by themselves; every append the API acknowledged (202) is in the promoted log (the
API waits for the replica before answering); and the run completes with one pointer.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from events import ArtifactPointerSet, Durability, connect, names
from producers import ApiConfig, create_app
from projections import Projector
from tests.databank.serving import running
from tests.e2e.conftest import FAST_RUNTIME, Pipeline
from tests.harness import LocalBank, events_of, tiny_spec
from tests.projections.factories import SIGNING_KEYS
from tests.replicated import ReplicatedEngine, replicated_engine
from tests.waiting import wait_until

REPLICATED = Durability(replicas=1, timeout_ms=2000)
RECOVERY_S = 60.0
"""Bound on detection (1 s), election, promotion and every client's reconnect."""
UNKNOWN_CORPUS = "0" * 64


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[ReplicatedEngine]:
    """A primary, a replica and three Sentinels, stopped by PID after the test."""
    with replicated_engine(tmp_path / "engine") as started:
        yield started


@pytest.fixture
def failover_pipeline(
    engine: ReplicatedEngine, local_bank: LocalBank, tmp_path: Path
) -> Iterator[Pipeline]:
    """Projector and API on the Sentinels' URL; the API's appends wait for the replica."""
    with ExitStack() as stack:
        projector = Projector(
            stack.enter_context(connect(engine.url)), SIGNING_KEYS, config=FAST_RUNTIME
        )
        thread = threading.Thread(target=projector.run, name="projector")
        thread.start()
        stack.callback(thread.join, 30)
        stack.callback(projector.stop)
        config = ApiConfig(redis_url=engine.url, durability=REPLICATED)
        base_url = stack.enter_context(running(create_app(config)))
        api = stack.enter_context(httpx.Client(base_url=base_url, timeout=30))
        api.headers["Content-Type"] = "application/json"
        yield Pipeline(engine.url, local_bank, api, tmp_path, stack)


@dataclass
class Writer:
    """Requests runs through the API until stopped, retrying each with its idempotency key
    until it is acknowledged; remembers every acknowledged run and entry."""

    api: httpx.Client
    acknowledged: dict[str, str] = field(default_factory=dict)
    refused: int = 0
    stopping: threading.Event = field(default_factory=threading.Event)

    def run(self) -> None:
        body = tiny_spec(UNKNOWN_CORPUS).model_dump_json()
        while not self.stopping.is_set():
            key = uuid.uuid4().hex
            while not self.stopping.is_set():
                answer = self.api.post(
                    "/runs/train", content=body, headers={"Idempotency-Key": key}
                )
                if answer.status_code == 202:
                    self.acknowledged[answer.json()["run_id"]] = answer.json()["entry_id"]
                    break
                assert answer.status_code == 503, answer.text
                self.refused += 1
                self.stopping.wait(0.05)
            self.stopping.wait(0.02)


@pytest.mark.slow
def test_a_primary_failover_loses_no_acknowledged_append_and_the_run_completes(
    engine: ReplicatedEngine, failover_pipeline: Pipeline, tmp_path: Path
) -> None:
    pipeline = failover_pipeline
    first_primary = engine.primary_port()
    config = pipeline.worker_config("node-a", durability={"replicas": 1, "timeout_ms": 2000})
    pipeline.start_worker(config)
    run_id = pipeline.train(tiny_spec(pipeline.bank.put_corpus(tmp_path), max_steps=300))
    writer = Writer(pipeline.api)
    thread = threading.Thread(target=writer.run, name="writer")
    thread.start()
    try:
        wait_until(lambda: pipeline.status(f"/runs/{run_id}").get("status") == "running")
        wait_until(lambda: len(writer.acknowledged) >= 5, what="writes before the failover")
        engine.kill_primary()
        killed_at, before = time.monotonic(), len(writer.acknowledged)
        wait_until(
            lambda: engine.primary_port() not in (None, first_primary),
            timeout=RECOVERY_S,
            what="the Sentinels promote the replica",
        )
        wait_until(
            lambda: len(writer.acknowledged) >= before + 5,
            timeout=RECOVERY_S,
            what="the API acknowledges writes again",
        )
        recovered_s = time.monotonic() - killed_at
    finally:
        writer.stopping.set()
        thread.join(30)

    assert engine.primary_port() == engine.replica.port
    assert recovered_s < RECOVERY_S
    record = pipeline.wait_final(f"/runs/{run_id}", timeout=120)
    assert record["status"] == "completed", record
    assert len(events_of(pipeline.log, run_id, ArtifactPointerSet)) == 1

    promoted = connect(engine.url)
    kept = {
        run: promoted.xrange(names.TRAINING_STREAM, entry_id, entry_id)
        for run, entry_id in writer.acknowledged.items()
    }
    lost = [run for run, rows in kept.items() if not rows]
    assert lost == [], f"{len(lost)} acknowledged appends lost of {len(kept)}"
    last = max(writer.acknowledged.values(), key=lambda entry: tuple(map(int, entry.split("-"))))
    answer = pipeline.api.get("/runs", params={"min_position": last, "limit": 1})
    assert answer.status_code == 200, answer.text  # the projector caught up past the failover
