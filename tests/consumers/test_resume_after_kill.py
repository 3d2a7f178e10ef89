"""A training SIGKILLed at a random step (several seeds), then resumed from its newest
checkpoint, ends with the weights of the run that never stopped, byte for byte; a kill in the
middle of a checkpoint write leaves that checkpoint absent, never half there.

The killed training is a real process (`tests.consumers.training_process`): the kill lands
wherever that process is, between steps or inside a checkpoint write. The resumed half runs
in this process, on one thread like the killed one (CPU arithmetic is then deterministic).
"""

from __future__ import annotations

import random
import subprocess
import sys
from pathlib import Path

import pytest
from transformers import PreTrainedTokenizerFast

from consumers.checkpoints import CheckpointStore
from consumers.trainer import Checkpointing
from tests.consumers.test_checkpoints import SPEC, run
from tests.consumers.training_process import Job

STARTUP = 180.0
"""Seconds the process may take to import torch and transformers and finish on a busy machine."""
TOTAL = SPEC.training.max_steps or 0


@pytest.fixture(scope="module")
def straight(tmp_path_factory: pytest.TempPathFactory, tokenizer: PreTrainedTokenizerFast) -> bytes:
    """The weights of the run that never stopped."""
    root = tmp_path_factory.mktemp("straight")
    from tests.consumers.conftest import write_corpus

    return run(write_corpus(root / "corpus.txt"), tokenizer, root / "out").read_bytes()


def _job(tmp_path: Path, corpus: Path, tokenizer: PreTrainedTokenizerFast) -> Job:
    tokenizer_dir = tmp_path / "tokenizer"
    tokenizer.save_pretrained(tokenizer_dir)
    return Job(
        corpus=corpus,
        tokenizer=tokenizer_dir,
        out=tmp_path / "killed",
        checkpoints=tmp_path / "checkpoints",
    )


def _start(job: Job) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "tests.consumers.training_process", job.model_dump_json()],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        text=True,
    )


def _resume(
    store: CheckpointStore, corpus: Path, tokenizer: PreTrainedTokenizerFast, out: Path
) -> bytes:
    latest = store.latest()
    assert latest is not None
    plan = Checkpointing(store, every_steps=1, resume=latest)
    return run(corpus, tokenizer, out, plan).read_bytes()


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_a_run_killed_at_a_random_step_resumes_to_the_same_weights(
    seed: int,
    straight: bytes,
    corpus: Path,
    tokenizer: PreTrainedTokenizerFast,
    tmp_path: Path,
) -> None:
    kill_after = random.Random(seed).randint(2, TOTAL - 1)  # after step 1: a checkpoint can exist
    job = _job(tmp_path, corpus, tokenizer)
    process = _start(job)
    try:
        assert process.stdout is not None
        for line in process.stdout:  # the process reports every step; EOF if it dies early
            if int(line) >= kill_after:
                break
        process.kill()  # SIGKILL, wherever the process is now
    finally:
        process.kill()
        process.wait(timeout=STARTUP)
    store = CheckpointStore(job.checkpoints)
    latest = store.latest()
    assert latest is not None
    # a step is reported before its checkpoint is written: the kill may land between the two
    assert kill_after - 1 <= latest.step < TOTAL, f"seed {seed}: killed after step {kill_after}"
    resumed = _resume(store, corpus, tokenizer, tmp_path / "resumed")
    assert resumed == straight, f"seed {seed}: killed after step {kill_after}"


def test_a_kill_inside_a_checkpoint_write_leaves_it_absent(
    straight: bytes, corpus: Path, tokenizer: PreTrainedTokenizerFast, tmp_path: Path
) -> None:
    job = _job(tmp_path, corpus, tokenizer).model_copy(update={"kill_in_checkpoint_at": 4})
    process = _start(job)
    assert process.wait(timeout=STARTUP) == -9  # it killed itself while writing checkpoint 4
    store = CheckpointStore(job.checkpoints)
    latest = store.latest()
    assert latest is not None
    assert latest.step == 3  # the interrupted one is not taken for a checkpoint
    partial = [path.name for path in job.checkpoints.iterdir() if path != latest.directory]
    assert len(partial) == 1
    assert partial[0].startswith(".tmp-")
    assert not (job.checkpoints / partial[0] / "state.pt").exists()
    assert _resume(store, corpus, tokenizer, tmp_path / "resumed") == straight
    assert [path.name for path in job.checkpoints.iterdir()] == [f"step-{TOTAL - 1:010d}"]
