"""Data-parallel training with real ranks (gloo on CPU): two processes against one, a resume
from a checkpoint, failures, and the training stage completing, failing and cancelling a run
on two processes; no rank process is left behind in any case. Every test starts rank
processes, which import transformers: seconds each, so the runs are few and tiny."""

from __future__ import annotations

import logging
import os
import signal
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import psutil
import pytest
import redis
from pydantic import JsonValue
from transformers import PreTrainedTokenizerFast

from consumers import Manifest, TrainingStage, WorkerConfig
from consumers.checkpoints import CheckpointStore
from consumers.manifest import MANIFEST_FILE
from consumers.ranks import RankJob, data_parallel
from consumers.trainer import (
    CancelRequested,
    Checkpointing,
    Progress,
    TrainingError,
    TrainingOutcome,
    encode_corpus,
    split_blocks,
    train_model,
)
from databank import DataBankClient
from events import (
    EventLog,
    ModelSpec,
    TrainingCancelRequested,
    TrainingFailed,
    TrainingParams,
    TrainingRequested,
    TrainingSpec,
    names,
)
from tests.harness import LocalBank, delivery, events_of, tiny_spec, types_of
from tests.waiting import wait_until

TOLERANCE = 1e-5
"""Relative gap allowed between the final validation losses of one and two processes. With
dropout 0 both compute the same sums, in another order (half-batch matmuls, the gradient
all-reduce); after the 16 steps here the gap measured about 1e-7 (float32's epsilon), and it
grows with the steps (about 2e-5 after 200 at a learning rate of 3e-3: `scripts/gpu_check.py`).
1e-5 leaves room for other CPUs, while rank 0 training on its half of each batch alone (its
gradients not averaged) moves this loss by 5e-3. With dropout, the masks of one process's
batch are not those of two half batches: the runs then differ as two dropout seeds do."""
STARTUP = 120.0
"""Seconds a rank may take to start (it imports torch and transformers) on a busy machine."""
RUN = "run-1"


def _spec(processes: int, **training: JsonValue) -> TrainingSpec:
    """A one-layer model without dropout, one epoch of batches of 4 blocks, on CPU."""
    params: dict[str, JsonValue] = {
        "batch_size": 4,
        "sequence_length": 32,
        "device": "cpu",
        "epochs": 1,
        "processes": processes,
    }
    return TrainingSpec(
        corpus_file_id="cd" * 32,
        model=ModelSpec(n_layer=1, n_head=2, n_embd=32, dropout=0.0),
        training=TrainingParams.model_validate(params | training),
    )


def _never() -> bool:
    return False


def _ignore(_: Progress) -> None:
    return None


def _rank_processes() -> list[psutil.Process]:
    """This process's children that run a rank."""
    found = []
    for child in psutil.Process().children(recursive=True):
        try:
            if "consumers.rank_process" in child.cmdline():
                found.append(child)
        except psutil.NoSuchProcess:  # it ended between the listing and the look
            continue
    return found


def _train(
    corpus: Path,
    tokenizer: PreTrainedTokenizerFast,
    out: Path,
    spec: TrainingSpec,
    *,
    should_stop: Callable[[], bool] = _never,
    on_progress: Callable[[Progress], None] = _ignore,
    checkpointing: Checkpointing | None = None,
) -> TrainingOutcome:
    resume = None if checkpointing is None else checkpointing.resume
    job = RankJob(RUN, corpus, spec, out.with_name(f"{out.name}-tokenizer"), resume)
    with data_parallel(job, tokenizer, should_stop) as group:
        return train_model(
            corpus,
            tokenizer,
            spec,
            out,
            should_stop=should_stop,
            on_progress=on_progress,
            progress_every=0.0,
            checkpointing=checkpointing,
            group=group,
        )


def _relative(a: float | None, b: float | None) -> float:
    assert a is not None
    assert b is not None
    return abs(a - b) / abs(a)


def test_two_processes_reach_the_validation_loss_of_one_with_the_same_global_batch(
    corpus: Path, tokenizer: PreTrainedTokenizerFast, tmp_path: Path
) -> None:
    blocks, _ = split_blocks(encode_corpus(corpus, tokenizer), 32, 0.1)
    assert len(blocks) % 4 == 1  # the epoch's last batch has one block: rank 1 gets none

    one = _train(corpus, tokenizer, tmp_path / "one", _spec(1)).metrics
    two = _train(corpus, tokenizer, tmp_path / "two", _spec(2)).metrics

    assert (two.steps, two.tokens) == (one.steps, one.tokens) == (16, len(blocks) * 32)
    assert _relative(one.val_loss, two.val_loss) <= TOLERANCE
    assert _relative(one.train_loss, two.train_loss) <= TOLERANCE
    assert _rank_processes() == []


class CrashError(Exception):
    """Stands for a SIGKILL of the worker: rank 0 ends where it is."""


def test_a_data_parallel_run_resumed_from_a_checkpoint_ends_with_the_same_weights(
    corpus: Path, tokenizer: PreTrainedTokenizerFast, tmp_path: Path
) -> None:
    spec = _spec(2)
    straight = _train(corpus, tokenizer, tmp_path / "straight", spec).directory
    store = CheckpointStore(tmp_path / "checkpoints")

    def crash_after_step_10(progress: Progress) -> None:
        if progress.step == 10:
            raise CrashError

    plan = Checkpointing(store, every_steps=4, every_s=3600)
    with pytest.raises(CrashError):
        _train(corpus, tokenizer, tmp_path / "crashed", spec, on_progress=crash_after_step_10,
               checkpointing=plan)  # fmt: skip
    latest = store.latest()
    assert latest is not None
    assert latest.step == 8

    plan = Checkpointing(store, every_steps=4, every_s=3600, resume=latest)
    resumed = _train(corpus, tokenizer, tmp_path / "resumed", spec, checkpointing=plan).directory

    weights = "model.safetensors"
    assert (resumed / weights).read_bytes() == (straight / weights).read_bytes()
    assert _rank_processes() == []


def test_a_failed_collective_fails_the_run_and_stops_the_ranks(
    corpus: Path, tokenizer: PreTrainedTokenizerFast, tmp_path: Path
) -> None:
    job = RankJob(RUN, corpus, _spec(2), tmp_path)
    running: list[int] = []

    def fail_with_every_rank_running() -> None:
        with data_parallel(job, tokenizer, _never):
            running.append(len(_rank_processes()))
            raise RuntimeError("gloo lost a peer")  # as a collective reports it

    with pytest.raises(TrainingError) as raised:
        fail_with_every_rank_running()
    assert str(raised.value) == "data-parallel training failed: gloo lost a peer"
    assert running == [1]
    assert _rank_processes() == []


def test_a_rank_that_dies_while_the_run_stops_is_part_of_the_stop(
    corpus: Path, tokenizer: PreTrainedTokenizerFast, tmp_path: Path
) -> None:
    stopping: list[bool] = []

    def kill_rank_1_and_stop(progress: Progress) -> None:
        if progress.step == 2:
            (rank,) = _rank_processes()
            rank.kill()  # as a supervisor's signal to the whole group would
            stopping.append(True)

    with pytest.raises(CancelRequested, match="stopped while rank 1 was killed by SIGKILL"):
        _train(corpus, tokenizer, tmp_path / "run", _spec(2, epochs=None, max_steps=1000),
               should_stop=lambda: bool(stopping), on_progress=kill_rank_1_and_stop)  # fmt: skip
    assert _rank_processes() == []


def test_a_sigterm_to_the_whole_group_is_a_clean_stop_not_a_failure(
    corpus: Path, tokenizer: PreTrainedTokenizerFast, tmp_path: Path
) -> None:
    """A service manager stopping the worker signals every process of it: the rank lives on
    until the worker's stop reaches it at a step, so the run is left for another worker."""
    stopping: list[bool] = []

    def sigterm_everyone(progress: Progress) -> None:
        if progress.step == 2:
            (rank,) = _rank_processes()
            rank.terminate()
            stopping.append(True)  # the worker's own SIGTERM handler

    with pytest.raises(CancelRequested, match=r"^cancelled after \d+ of 1000 steps$"):
        _train(corpus, tokenizer, tmp_path / "run", _spec(2, epochs=None, max_steps=1000),
               should_stop=lambda: bool(stopping), on_progress=sigterm_everyone)  # fmt: skip
    assert _rank_processes() == []


@pytest.fixture
def stage(
    redis_client: redis.Redis, bank_client: DataBankClient, worker_config: WorkerConfig
) -> TrainingStage:
    return TrainingStage(redis_client, bank_client, worker_config)


@pytest.fixture
def corpus_id(local_bank: LocalBank, tmp_path: Path) -> str:
    return local_bank.put_corpus(tmp_path)


def _request(redis_client: redis.Redis, spec: TrainingSpec) -> TrainingRequested:
    event = TrainingRequested(correlation_id=RUN, payload=spec)
    EventLog(redis_client).append(event)
    return event


def _said(redis_client: redis.Redis, kind: str) -> list[str]:
    entries = EventLog(redis_client).read_range(names.run_logs_stream(RUN))
    return [e.fields[b"message"].decode() for e in entries if e.fields[b"kind"] == kind.encode()]


def _exits(caplog: pytest.LogCaptureFixture) -> list[tuple[object, object]]:
    """(rank, exit status) of every rank that ended, as the worker logged them."""
    return [
        (getattr(record, "child", None), getattr(record, "exit_status", None))
        for record in caplog.records
        if getattr(record, "event", None) == "rank_exited"
    ]


def test_the_stage_trains_a_run_on_two_processes(
    stage: TrainingStage,
    redis_client: redis.Redis,
    worker_config: WorkerConfig,
    corpus_id: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="consumers")
    stage.handle(_request(redis_client, tiny_spec(corpus_id, processes=2)), delivery())

    assert types_of(EventLog(redis_client), RUN)[-1] == "training.completed"
    assert _said(redis_client, "started") == [
        "attempt 1: training started on node node-a, 2 processes"
    ]
    manifest = Manifest.read(worker_config.layout.run_dir(RUN) / MANIFEST_FILE)
    assert manifest.training.processes == 2
    assert _exits(caplog) == [("rank 1", 0)]
    assert _rank_processes() == []


def _handle_while(
    stage: TrainingStage, redis_client: redis.Redis, spec: TrainingSpec, act: Callable[[], None]
) -> None:
    """Handle a request of `spec` in a thread; once it has made progress on two processes, `act`."""
    request = _request(redis_client, spec)
    with ThreadPoolExecutor(1) as pool:
        handled = pool.submit(stage.handle, request, delivery())
        wait_until(lambda: bool(_said(redis_client, "progress")), timeout=STARTUP, what="a step")
        act()
        handled.result(timeout=STARTUP)


def test_a_killed_rank_fails_the_run_and_names_the_rank(
    stage: TrainingStage, redis_client: redis.Redis, worker_config: WorkerConfig, corpus_id: str
) -> None:
    def kill_rank_1() -> None:
        (rank,) = _rank_processes()
        os.kill(rank.pid, signal.SIGKILL)

    spec = tiny_spec(corpus_id, processes=2, max_steps=100_000)
    _handle_while(stage, redis_client, spec, kill_rank_1)

    (failed,) = events_of(EventLog(redis_client), RUN, TrainingFailed)
    assert failed.payload.message == "rank 1 was killed by SIGKILL"
    assert failed.payload.error_code == "training_error"
    assert not worker_config.layout.run_dir(RUN).exists()
    assert _rank_processes() == []


def test_a_cancel_stops_every_rank(
    stage: TrainingStage,
    redis_client: redis.Redis,
    corpus_id: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="consumers")

    def cancel() -> None:
        EventLog(redis_client).append(TrainingCancelRequested(correlation_id=RUN))

    spec = tiny_spec(corpus_id, processes=2, max_steps=100_000)
    _handle_while(stage, redis_client, spec, cancel)

    assert types_of(EventLog(redis_client), RUN)[-1] == "training.cancelled"
    assert _exits(caplog) == [("rank 1", 0)]  # it stopped with rank 0, at the same step
    assert _rank_processes() == []
