"""A training in a process of its own, for the tests that SIGKILL it.

Run as `python -m tests.consumers.training_process JOB` where JOB is a `Job` as JSON. It trains
`tests.consumers.test_checkpoints.SPEC` with a checkpoint every step and prints each step it
reports, one per line, so the killer can pick its moment. With `kill_in_checkpoint_at`, the
process SIGKILLs itself in the middle of writing that step's checkpoint (weights written,
optimizer state not yet): the write a kill interrupts.
"""

from __future__ import annotations

import os
import signal
import sys
from pathlib import Path

import pytest
import torch
from pydantic import BaseModel
from safetensors.torch import save_model
from transformers import PreTrainedTokenizerFast

from consumers.checkpoints import CheckpointStore
from consumers.trainer import Checkpointing, Progress, train_model
from tests.consumers.test_checkpoints import SPEC
from tests.consumers.test_trainer import never


class Job(BaseModel):
    """What to train, from where, and where to keep checkpoints."""

    corpus: Path
    tokenizer: Path
    out: Path
    checkpoints: Path
    kill_in_checkpoint_at: int | None = None


def main(job: Job) -> None:
    """Train until done (or killed)."""
    torch.set_num_threads(1)  # as the test process: the same arithmetic, byte for byte
    if job.kill_in_checkpoint_at is not None:
        _kill_while_saving(job.kill_in_checkpoint_at)

    def report(progress: Progress) -> None:
        print(progress.step, flush=True)

    train_model(
        job.corpus,
        PreTrainedTokenizerFast.from_pretrained(job.tokenizer),
        SPEC,
        job.out,
        should_stop=never,
        on_progress=report,
        progress_every=0.0,
        checkpointing=Checkpointing(CheckpointStore(job.checkpoints), every_steps=1),
    )


def _kill_while_saving(step: int) -> None:
    """SIGKILL this process right after the weights of step `step`'s checkpoint are written."""
    saved = iter(range(1, 1_000_000))

    def save_then_die(model: torch.nn.Module, filename: str) -> None:
        save_model(model, filename)
        if next(saved) == step:
            os.kill(os.getpid(), signal.SIGKILL)

    pytest.MonkeyPatch().setattr("consumers.checkpoints.save_model", save_then_die)


if __name__ == "__main__":
    main(Job.model_validate_json(sys.argv[1]))
