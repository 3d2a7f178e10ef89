"""Checkpoints of a running training, so a redelivered run resumes where it stopped.

A checkpoint is a directory `step-<n>` under the run's checkpoint directory (beside, not in,
the run directory: it must survive the crash that kills the staging of the run directory):

    model.safetensors   the weights (safetensors: tensors only, shared ones handled)
    state.pt            optimizer, gradient scaler and RNG states: `torch.load(weights_only=True)`
    progress.json       the step (the data position), tokens seen, seconds trained, the recent
                        losses and the loss curves so far

It is written under a temporary name and renamed into place, so a checkpoint is complete or
absent, whatever kills the worker; then the older ones are removed: the newest complete one is
kept. Loading refuses anything but safetensors and `weights_only` tensors, so a checkpoint
directory cannot run code. The run directory's final model is saved as before; once the run
has ended (completed, failed, cancelled) its checkpoints are removed.
"""

from __future__ import annotations

import shutil
import uuid
from dataclasses import dataclass
from pathlib import Path

import torch
from pydantic import BaseModel, ConfigDict
from safetensors.torch import load_model, save_model

from consumers.curves import CurveState

_PREFIX = "step-"
_TEMPORARY = ".tmp-"
_FILES = ("model.safetensors", "state.pt", "progress.json")


class Progress(BaseModel):
    """Where the loop stood: everything but tensors."""

    model_config = ConfigDict(extra="forbid")

    step: int
    tokens: int
    seconds: float
    recent: list[float]
    train: CurveState
    validation: CurveState


@dataclass(frozen=True)
class Checkpoint:
    """One complete checkpoint on disk."""

    directory: Path
    step: int

    def progress(self) -> Progress:
        """The loop's position and history at this checkpoint."""
        return Progress.model_validate_json((self.directory / "progress.json").read_bytes())

    def restore(
        self, model: torch.nn.Module, optimizer: torch.optim.Optimizer, scaler: torch.amp.GradScaler
    ) -> None:
        """Load weights, optimizer, scaler and RNG states into the objects of a fresh loop."""
        load_model(model, self.directory / "model.safetensors")
        state = torch.load(self.directory / "state.pt", weights_only=True)
        optimizer.load_state_dict(state["optimizer"])
        scaler.load_state_dict(state["scaler"])
        torch.set_rng_state(state["rng"])
        if "cuda_rng" in state:
            torch.cuda.set_rng_state_all(state["cuda_rng"])


class CheckpointStore:
    """The checkpoints of one run on this node."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def latest(self) -> Checkpoint | None:
        """The newest complete checkpoint, if any."""
        found = [
            Checkpoint(path, int(path.name.removeprefix(_PREFIX)))
            for path in self.directory.glob(f"{_PREFIX}*")
            if all((path / name).is_file() for name in _FILES)
        ]
        return max(found, key=lambda c: c.step, default=None)

    def save(
        self,
        model: torch.nn.Module,
        optimizer: torch.optim.Optimizer,
        scaler: torch.amp.GradScaler,
        progress: Progress,
    ) -> Checkpoint:
        """Write a checkpoint at `progress.step` atomically; keep only it."""
        self.directory.mkdir(parents=True, exist_ok=True)
        temporary = self.directory / f"{_TEMPORARY}{uuid.uuid4().hex[:8]}"
        temporary.mkdir()
        save_model(model, str(temporary / "model.safetensors"))
        state: dict[str, object] = {
            "optimizer": optimizer.state_dict(),
            "scaler": scaler.state_dict(),
            "rng": torch.get_rng_state(),
        }
        if torch.cuda.is_available():
            state["cuda_rng"] = torch.cuda.get_rng_state_all()
        torch.save(state, temporary / "state.pt")
        (temporary / "progress.json").write_text(progress.model_dump_json())
        final = self.directory / f"{_PREFIX}{progress.step:010d}"
        if final.is_dir():  # this step's is on disk already (complete: it appeared by rename)
            shutil.rmtree(temporary)
        else:
            temporary.rename(final)
        for older in self.directory.iterdir():
            if older != final:
                shutil.rmtree(older)
        return Checkpoint(final, progress.step)

    def clear(self) -> None:
        """Remove every checkpoint of the run (it has ended)."""
        shutil.rmtree(self.directory, ignore_errors=True)
