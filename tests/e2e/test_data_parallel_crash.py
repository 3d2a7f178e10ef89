"""SIGKILL of a worker process training a run on two processes: its rank, now without a
parent, exits by itself, whether it was still starting (its watchdog sees the parent gone;
without it, it would wait up to two minutes for the dead rank 0's store) or training (the
watchdog, or the collective with the dead rank 0 failing)."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import psutil
import pytest

from events import names
from tests.e2e.conftest import Pipeline
from tests.e2e.test_crashes import STARTUP, worker_process
from tests.harness import tiny_spec
from tests.waiting import wait_until

EXIT = 30.0
"""Seconds an orphaned rank may take to notice and exit: far less than `ddp.TIMEOUT`."""


def _ranks_of(worker: int) -> list[psutil.Process]:
    try:
        children = psutil.Process(worker).children()
    except psutil.NoSuchProcess:
        return []
    return [child for child in children if "consumers.rank_process" in child.cmdline()]


def _ended(process: psutil.Process) -> bool:
    """Exited: gone, or a zombie that whoever adopted it has not reaped yet."""
    try:
        return process.status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def _progress(pipeline: Pipeline, run_id: str) -> bool:
    entries = pipeline.log.read_range(names.run_logs_stream(run_id))
    return any(entry.fields[b"kind"] == b"progress" for entry in entries)


@pytest.mark.parametrize("when", ["starting", "training"])
def test_sigkill_of_the_worker_leaves_no_rank_behind(
    pipeline: Pipeline, tmp_path: Path, when: str
) -> None:
    config = pipeline.worker_config("node-d")
    spec = tiny_spec(pipeline.bank.put_corpus(tmp_path), processes=2, max_steps=100_000)
    with worker_process(pipeline, config, tmp_path / "worker.log") as pid:
        run_id = pipeline.train(spec)
        wait_until(lambda: bool(_ranks_of(pid)), timeout=STARTUP, what="rank 1 started")
        (rank,) = _ranks_of(pid)
        if when == "training":
            wait_until(lambda: _progress(pipeline, run_id), timeout=STARTUP, what="a step")
        os.kill(pid, signal.SIGKILL)

    wait_until(lambda: _ended(rank), timeout=EXIT, what="the orphaned rank to exit")
    assert not _progress(pipeline, run_id) or when == "training"
