"""The pieces of data-parallel training that need no second rank: sharding, devices, the rank
arguments, the parent watchdog, and how rank 0 fails, stops and reaps ranks that never join
(small stand-in commands: nothing imports torch there)."""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import psutil
import pytest
import torch
import torch.distributed as dist
from pydantic import ValidationError
from torch._C._distributed_c10d import HashStore
from transformers import PreTrainedTokenizerFast

from consumers.checkpoints import Checkpoint
from consumers.ddp import Group, RankArgs, joined, rank_device, shard
from consumers.rank_process import ORPHANED, exit_with_parent
from consumers.ranks import RankJob, _device, _Ranks, data_parallel
from consumers.trainer import CancelRequested, DeviceUnavailable, TrainingError
from events import TrainingParams, TrainingSpec
from tests.waiting import wait_until

SPEC = TrainingSpec(corpus_file_id="cd" * 32, training=TrainingParams(processes=2, device="cpu"))


def _never() -> bool:
    return False


def _always() -> bool:
    return True


def test_each_rank_takes_every_world_th_block_of_the_global_batch() -> None:
    batch = torch.tensor([7, 3, 9, 1, 4, 6])

    parts = [shard(batch, rank, 3) for rank in range(3)]

    assert [part.rows.tolist() for part in parts] == [[7, 1], [3, 4], [9, 6]]
    assert [part.weight for part in parts] == [1.0, 1.0, 1.0]


def test_an_uneven_batch_weighs_each_share_and_gives_a_rank_without_blocks_a_stand_in() -> None:
    tail = torch.tensor([5, 8, 2])

    parts = [shard(tail, rank, 4) for rank in range(4)]

    assert [part.rows.tolist() for part in parts] == [[5], [8], [2], [5]]
    assert [part.weight for part in parts] == [4 / 3, 4 / 3, 4 / 3, 0.0]
    # DDP averages over the ranks: the weights make that the mean over the global batch
    assert sum(part.weight * len(part.rows) for part in parts) / 4 == pytest.approx(1.0)


def test_each_rank_has_its_own_gpu_and_all_share_the_cpu() -> None:
    assert rank_device(torch.device("cuda"), 3) == torch.device("cuda", 3)
    assert rank_device(torch.device("cpu"), 3) == torch.device("cpu")


def test_the_device_needs_one_gpu_per_process_on_cuda() -> None:
    cuda = TrainingParams(processes=2, device="cuda")

    assert _device(TrainingParams(processes=2, device="auto"), 0) == torch.device("cpu")
    assert _device(TrainingParams(processes=4, device="cpu"), 1) == torch.device("cpu")
    assert _device(cuda, 2) == torch.device("cuda")
    with pytest.raises(TrainingError, match=r"processes=2 on CUDA needs one GPU each; .* has 1$"):
        _device(cuda, 1)
    with pytest.raises(DeviceUnavailable):
        _device(cuda, 0)


def _args(**changes: object) -> RankArgs:
    fields: dict[str, object] = {
        "host": "127.0.0.1",
        "port": 4000,
        "rank": 1,
        "world_size": 2,
        "parent": 1234,
        "corpus": "/data/corpus.txt",
        "tokenizer_dir": "/data/run",
        "spec": SPEC.model_dump(mode="json"),
        "resume": {"directory": "/data/checkpoints/step-0000000025", "step": 25},
        "device": "cpu",
        "threads": 2,
    }
    return RankArgs.model_validate(fields | changes)


def test_rank_arguments_travel_as_json_with_their_checkpoint() -> None:
    args = _args()

    again = RankArgs.model_validate_json(args.model_dump_json())

    assert again == args
    assert again.resume == Checkpoint(Path("/data/checkpoints/step-0000000025"), 25)
    assert again.spec.training.processes == 2


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"rank": 2}, "rank 2 is outside a world of 2"),
        ({"rank": 0}, "greater than or equal to 1"),
        ({"device": "tpu"}, "'cpu' or 'cuda'"),
        ({"extra": 1}, "Extra inputs are not permitted"),
    ],
)
def test_bad_rank_arguments_are_refused(changes: dict[str, object], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        _args(**changes)


def test_the_watchdog_ends_the_process_once_its_parent_changes() -> None:
    parents = iter([10, 10, 10, 1])
    left: list[int] = []

    watchdog = exit_with_parent(
        10, every=0.001, parent_now=lambda: next(parents), leave=left.append
    )
    watchdog.join(timeout=10)

    assert not watchdog.is_alive()
    assert watchdog.daemon
    assert left == [ORPHANED]


def test_one_process_starts_nothing(tmp_path: Path, tokenizer: PreTrainedTokenizerFast) -> None:
    single = SPEC.model_copy(update={"training": TrainingParams(processes=1)})
    job = RankJob("run-1", tmp_path / "corpus.txt", single, tmp_path)

    with data_parallel(job, tokenizer, _always, command=["false"]) as group:
        assert group is None
    assert list(tmp_path.iterdir()) == []  # not even the tokenizer


def _python(code: str) -> list[str]:
    return [sys.executable, "-c", code]


def _children() -> list[psutil.Process]:
    return psutil.Process().children()


@pytest.fixture
def no_children_left() -> Iterator[None]:
    before = {child.pid for child in _children()}
    yield
    assert {child.pid for child in _children()} <= before


def _fails(
    tmp_path: Path,
    tokenizer: PreTrainedTokenizerFast,
    code: str,
    error: type[Exception],
    *,
    should_stop: Callable[[], bool] = _never,
    timeout: float = 60,
) -> str:
    """What starting ranks that run `code` raises (it must be `error`)."""
    job = RankJob("run-1", tmp_path / "corpus.txt", SPEC, tmp_path)
    with (
        pytest.raises(error) as raised,
        data_parallel(job, tokenizer, should_stop, command=_python(code), join_timeout=timeout),
    ):
        pytest.fail("the ranks joined")
    return str(raised.value)


@pytest.mark.usefixtures("no_children_left")
def test_a_rank_that_exits_before_joining_fails_the_run_and_its_output_is_logged(
    tmp_path: Path, tokenizer: PreTrainedTokenizerFast, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="consumers.ranks")
    code = "import sys; print('cannot start: no GPU'); sys.exit(7)"

    message = _fails(tmp_path, tokenizer, code, TrainingError)

    assert message == "rank 1 exited with status 7 before joining the run"
    messages = [record.getMessage() for record in caplog.records]
    assert "rank 1: cannot start: no GPU" in messages
    exited = [r for r in caplog.records if getattr(r, "event", None) == "rank_exited"]
    assert [(getattr(r, "child", None), getattr(r, "exit_status", None)) for r in exited] == [
        ("rank 1", 7)
    ]
    assert (tmp_path / "tokenizer.json").is_file()  # saved for the ranks before they start


@pytest.mark.usefixtures("no_children_left")
def test_ranks_that_do_not_join_in_time_fail_the_run_and_are_stopped(
    tmp_path: Path, tokenizer: PreTrainedTokenizerFast, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="consumers.ranks")

    message = _fails(
        tmp_path, tokenizer, "import time; time.sleep(300)", TrainingError, timeout=0.2
    )

    assert message == "the ranks did not start within 0.2 s"
    exited = [r for r in caplog.records if getattr(r, "event", None) == "rank_exited"]
    assert [getattr(r, "exit_status", None) for r in exited] == [-15]  # SIGTERM


@pytest.mark.usefixtures("no_children_left")
def test_a_run_stopped_while_the_ranks_start_is_a_stop(
    tmp_path: Path, tokenizer: PreTrainedTokenizerFast
) -> None:
    sleeper = "import time; time.sleep(300)"

    message = _fails(tmp_path, tokenizer, sleeper, CancelRequested, should_stop=_always)

    assert message == "stopped while the ranks were starting"


def test_a_rank_that_ignores_sigterm_is_killed(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="consumers.ranks")
    code = (
        "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
        "print('deaf', flush=True); time.sleep(300)"
    )
    ranks = _Ranks("run-1", _python(code))
    before = {child.pid for child in _children()}  # the session's own (an engine, say)
    ranks.start([_args()])
    wait_until(lambda: "rank 1: deaf" in caplog.messages, timeout=60, what="the rank's output")
    (child,) = [child for child in _children() if child.pid not in before]

    ranks.stop(0.1)

    assert not child.is_running()
    assert ranks.failure(0) == "rank 1 was killed by SIGKILL"


def test_a_cuda_rank_joins_with_nccl_on_its_own_gpu_and_leaves_whatever_happens(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    calls: list[tuple[object, ...]] = []

    def init(backend: str, **options: object) -> None:
        calls.append(("init", backend, options["rank"], options["world_size"]))

    monkeypatch.setattr(torch.cuda, "set_device", lambda device: calls.append(("gpu", device)))
    monkeypatch.setattr(dist, "init_process_group", init)
    monkeypatch.setattr(dist, "destroy_process_group", lambda: calls.append(("left",)))
    gpu = torch.device("cuda", 1)

    groups: list[Group] = []

    def fail_in_the_group() -> None:
        with joined(HashStore(), 1, 2, gpu) as group:
            groups.append(group)
            raise CrashError

    with pytest.raises(CrashError):
        fail_in_the_group()
    assert groups == [Group(1, 2, gpu)]
    assert calls == [("gpu", gpu), ("init", "nccl", 1, 2), ("left",)]


class CrashError(Exception):
    """Anything that ends a rank's training early."""
