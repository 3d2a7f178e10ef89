"""Checkpoints: complete or absent, and a resumed run ends with the weights of one that never
stopped, byte for byte (CPU: the same seeded data order, RNG, optimizer and scaler states)."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest
import torch
from transformers import GPT2Config, GPT2LMHeadModel, PreTrainedTokenizerFast

from consumers.checkpoints import CheckpointStore
from consumers.checkpoints import Progress as CheckpointProgress
from consumers.curves import CurveState
from consumers.trainer import Checkpointing, Progress, train_model
from tests.consumers.test_trainer import make_spec, never

SPEC = make_spec(max_steps=10, eval_every_steps=3)


class CrashError(Exception):
    """Stands for a SIGKILL: the loop ends where it is, nothing is cleaned up."""


def crashing_at(step: int) -> object:
    calls = itertools.count(1)

    def should_stop() -> bool:  # called before each step
        if next(calls) == step:
            raise CrashError
        return False

    return should_stop


def run(
    corpus: Path,
    tokenizer: PreTrainedTokenizerFast,
    out: Path,
    checkpointing: Checkpointing | None = None,
    stop: object = never,
    reports: list[Progress] | None = None,
) -> Path:
    assert callable(stop)
    sink = [] if reports is None else reports
    train_model(
        corpus,
        tokenizer,
        SPEC,
        out,
        should_stop=stop,
        on_progress=sink.append,
        progress_every=0.0,
        checkpointing=checkpointing,
    )
    return out / "model.safetensors"


@pytest.mark.parametrize("crash_at", [3, 6, 10])
def test_a_resumed_run_ends_with_the_same_weights(
    corpus: Path, tokenizer: PreTrainedTokenizerFast, tmp_path: Path, crash_at: int
) -> None:
    straight_reports: list[Progress] = []
    straight = run(corpus, tokenizer, tmp_path / "straight", reports=straight_reports)
    store = CheckpointStore(tmp_path / "checkpoints")
    plan = Checkpointing(store, every_steps=2, every_s=3600)
    with pytest.raises(CrashError):
        run(corpus, tokenizer, tmp_path / "crashed", plan, crashing_at(crash_at))
    latest = store.latest()
    assert latest is not None
    assert latest.step == (crash_at - 1) // 2 * 2
    assert [p.name for p in store.directory.iterdir()] == [latest.directory.name]

    resumed_reports: list[Progress] = []
    resumed = Checkpointing(store, every_steps=2, every_s=3600, resume=latest)
    weights = run(corpus, tokenizer, tmp_path / "resumed", resumed, reports=resumed_reports)
    assert weights.read_bytes() == straight.read_bytes()
    assert resumed_reports[-1].train == straight_reports[-1].train
    assert resumed_reports[-1].validation == straight_reports[-1].validation
    assert resumed_reports[0].step == latest.step + 1


def test_checkpoints_are_taken_by_time_and_a_partial_one_is_ignored(
    corpus: Path, tokenizer: PreTrainedTokenizerFast, tmp_path: Path
) -> None:
    store = CheckpointStore(tmp_path / "checkpoints")
    (store.directory / "step-0000000009").mkdir(parents=True)  # a write a kill interrupted
    with pytest.raises(CrashError):
        run(corpus, tokenizer, tmp_path / "out", Checkpointing(store, every_s=0), crashing_at(4))
    latest = store.latest()
    assert latest is not None
    assert latest.step == 3  # every step is due at every_s=0; the newest complete one stays
    again = store.save(*_parts(), latest.progress())  # the same step again: kept as it was
    assert (again.directory, store.latest()) == (latest.directory, latest)
    store.clear()
    assert store.latest() is None


def test_loading_refuses_a_pickled_state(
    corpus: Path, tokenizer: PreTrainedTokenizerFast, tmp_path: Path
) -> None:
    store = CheckpointStore(tmp_path / "checkpoints")
    with pytest.raises(CrashError):
        run(
            corpus, tokenizer, tmp_path / "out", Checkpointing(store, every_steps=1), crashing_at(2)
        )
    latest = store.latest()
    assert latest is not None
    torch.save({"optimizer": CrashError()}, latest.directory / "state.pt")  # not weights only
    with pytest.raises(Exception, match="Weights only load failed"):
        run(corpus, tokenizer, tmp_path / "again", Checkpointing(store, resume=latest))


def _parts() -> tuple[GPT2LMHeadModel, torch.optim.Optimizer, torch.amp.GradScaler]:
    model = GPT2LMHeadModel(GPT2Config(n_layer=1, n_head=2, n_embd=8, vocab_size=16))
    return model, torch.optim.AdamW(model.parameters()), torch.amp.GradScaler("cpu", enabled=False)


def test_cuda_rng_states_are_kept_when_there_is_cuda(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    states = [torch.tensor([7], dtype=torch.uint8)]
    restored: list[list[torch.Tensor]] = []
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "get_rng_state_all", lambda: states)
    monkeypatch.setattr(torch.cuda, "set_rng_state_all", restored.append)
    store = CheckpointStore(tmp_path / "checkpoints")
    blank = CurveState(points=[], window=1, open_sum=None, open_count=0)
    position = CheckpointProgress(
        step=1, tokens=0, seconds=0.0, recent=[], train=blank, validation=blank
    )
    saved = store.save(*_parts(), position)
    saved.restore(*_parts())
    assert [state.tolist() for state in restored[0]] == [[7]]
