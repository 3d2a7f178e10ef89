"""Rank 0's side of a data-parallel training (`training.processes` > 1): start ranks 1..N-1 as
child processes of the worker, meet them, and stop them by PID whatever happens.

Rank 0 is the worker's training thread itself, so progress, cancel, checkpoints, the model
and the manifest stay where one process keeps them. `data_parallel` saves the tokenizer where
the ranks read it, opens a store on loopback, starts each rank (`python -m
consumers.rank_process`, its `RankArgs` on stdin, in a session of its own so a terminal's
Ctrl-C reaches only the worker) and waits until every rank has connected, failing at once if
one exits first, and stopping if the run is stopped meanwhile. Then it joins the process
group and hands rank 0 its `Group`.

Afterwards the group is left in every case and the ranks get `_EXIT_S` to exit by themselves
(they end the run, or stop, at rank 0's step; after a failure, rank 0 leaving the group fails
them); those still running are sent SIGTERM, then SIGKILL after `_STOP_S` (a real rank
ignores SIGTERM, see `consumers.rank_process`, so it is the SIGKILL that ends it). A collective
that fails (a rank died, crashed or hung past `ddp.TIMEOUT`) fails the run with
`TrainingError` naming the rank and how it ended, unless the run was being stopped anyway:
then it is the stop (`CancelRequested`). Each rank's output (stdout and stderr) is drained
into the worker's log, line by line. A SIGKILLed worker cannot stop its ranks: each one
watches its parent and exits without it (`consumers.rank_process`).
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import torch
from torch._C._distributed_c10d import Store
from transformers import PreTrainedTokenizerFast

from consumers.checkpoints import Checkpoint
from consumers.ddp import (
    HOST,
    TIMEOUT,
    Group,
    RankArgs,
    joined,
    master_store,
    rank_device,
    ready_key,
)
from consumers.trainer import CancelRequested, TrainingError, resolve_device
from events import TrainingParams, TrainingSpec

log = logging.getLogger(__name__)

RANK_COMMAND = (sys.executable, "-m", "consumers.rank_process")
_EXIT_S = 30.0
"""Once rank 0 has left the group, how long the ranks get to exit by themselves."""
_STOP_S = 5.0
"""After SIGTERM, how long a rank gets before SIGKILL."""
_DEATH_S = 2.0
"""After a failed collective, how long to wait to see which rank ended."""
_POLL_S = 0.05


@dataclass(frozen=True)
class RankJob:
    """What every rank trains, besides its place in the group."""

    run_id: str
    corpus: Path
    spec: TrainingSpec
    tokenizer_dir: Path
    """Where rank 0 saves the tokenizer for the others (the run's staging directory)."""
    resume: Checkpoint | None = None


@contextmanager
def data_parallel(
    job: RankJob,
    tokenizer: PreTrainedTokenizerFast,
    should_stop: Callable[[], bool],
    *,
    command: Sequence[str] = RANK_COMMAND,
    join_timeout: float = TIMEOUT.total_seconds(),
) -> Iterator[Group | None]:
    """Yield rank 0's `Group` with ranks 1..N-1 running, or None for one process (nothing
    is started)."""
    world = job.spec.training.processes
    if world == 1:
        yield None
        return
    device = _device(job.spec.training, torch.cuda.device_count())
    tokenizer.save_pretrained(job.tokenizer_dir)
    store = master_store(world)
    ranks = _Ranks(job.run_id, command)
    try:
        ranks.start([_args(job, rank, store.port, device) for rank in range(1, world)])
        ranks.wait_joined(store, should_stop, join_timeout)
        try:
            # a failed step is told apart while the group stands (leaving it fails every
            # rank); the outer `explained` is for the rendezvous itself
            with (
                ranks.explained(should_stop),
                joined(store, 0, world, rank_device(device, 0)) as group,
                ranks.explained(should_stop),
            ):
                yield group
        finally:  # the ranks ended the run with rank 0, or fail now that it has left
            ranks.wait(_EXIT_S)
    finally:
        ranks.stop(_STOP_S)


def _device(params: TrainingParams, gpus: int) -> torch.device:
    """The run's device type, on a node with `gpus` GPUs: one for each process on CUDA."""
    device = resolve_device(params.device, cuda_available=gpus > 0)
    if device.type == "cuda" and gpus < params.processes:
        raise TrainingError(
            f"processes={params.processes} on CUDA needs one GPU each; this node has {gpus}"
        )
    return device


def _args(job: RankJob, rank: int, port: int, device: torch.device) -> RankArgs:
    return RankArgs(
        host=HOST,
        port=port,
        rank=rank,
        world_size=job.spec.training.processes,
        parent=os.getpid(),
        corpus=job.corpus,
        tokenizer_dir=job.tokenizer_dir,
        spec=job.spec,
        resume=job.resume,
        device="cuda" if device.type == "cuda" else "cpu",
        threads=torch.get_num_threads(),
    )


class _Ranks:
    """The child processes of one run's ranks, by rank."""

    def __init__(self, run_id: str, command: Sequence[str]) -> None:
        self._run_id = run_id
        self._command = list(command)
        self._processes: dict[int, subprocess.Popen[bytes]] = {}
        self._drains: list[threading.Thread] = []

    def start(self, ranks: Sequence[RankArgs]) -> None:
        """Start one process per rank, its arguments on its stdin."""
        for args in ranks:
            process = subprocess.Popen(
                self._command,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
            self._processes[args.rank] = process
            self._log("rank %d started", args.rank, "rank_started", process.pid)
            assert process.stdin is not None  # piped above
            assert process.stdout is not None
            drain = threading.Thread(
                target=self._drain, args=(args.rank, process.stdout), daemon=True
            )
            drain.start()
            self._drains.append(drain)
            with contextlib.suppress(BrokenPipeError):  # it died at once: seen when joining
                process.stdin.write(args.model_dump_json().encode())
            with contextlib.suppress(BrokenPipeError):
                process.stdin.close()

    def wait_joined(self, store: Store, should_stop: Callable[[], bool], timeout: float) -> None:
        """Return once every rank has connected to `store`; raise if one exits first, if the
        run is stopped, or after `timeout` seconds."""
        keys = [ready_key(rank) for rank in self._processes]
        deadline = time.monotonic() + timeout
        while not store.check(keys):
            ended = self._ended()
            if ended is not None:
                raise TrainingError(f"{ended} before joining the run")
            if should_stop():
                raise CancelRequested("stopped while the ranks were starting")
            if time.monotonic() > deadline:
                raise TrainingError(f"the ranks did not start within {timeout:g} s")
            time.sleep(_POLL_S)

    @contextmanager
    def explained(self, should_stop: Callable[[], bool]) -> Iterator[None]:
        """Turn a failed collective (gloo and nccl raise `RuntimeError`) into the run's
        failure, naming the rank that ended; into a stop when the run was being stopped."""
        try:
            yield
        except RuntimeError as error:
            failure = self.failure(_DEATH_S)
            if should_stop():
                raise CancelRequested(f"stopped while {failure or error}") from error
            raise TrainingError(failure or f"data-parallel training failed: {error}") from error

    def failure(self, timeout: float) -> str | None:
        """How the first rank that ended ended, waiting up to `timeout` seconds for one."""
        deadline = time.monotonic() + timeout
        while (ended := self._ended()) is None and time.monotonic() < deadline:
            time.sleep(_POLL_S)
        return ended

    def wait(self, timeout: float) -> None:
        """Give every rank until `timeout` seconds from now to exit."""
        deadline = time.monotonic() + timeout
        for process in self._processes.values():
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(max(0.0, deadline - time.monotonic()))

    def stop(self, grace: float) -> None:
        """Stop every rank still running by PID: SIGTERM, then SIGKILL after `grace`; reap."""
        running = [p for p in self._processes.values() if p.poll() is None]
        for process in running:
            process.terminate()
        self.wait(grace)
        for process in running:
            if process.poll() is None:
                process.kill()
            process.wait()
        for drain in self._drains:
            drain.join(timeout=grace)
        for rank, process in self._processes.items():
            self._log("rank %d exited", rank, "rank_exited", process.pid, process.returncode)

    def _ended(self) -> str | None:
        for rank, process in self._processes.items():
            code = process.poll()
            if code is not None:
                return f"rank {rank} {_how(code)}"
        return None

    def _drain(self, rank: int, output: IO[bytes]) -> None:
        """Log each line the rank writes: a rank's output means something went wrong."""
        for raw in output:
            line = raw.decode(errors="replace").rstrip()
            log.warning(
                "rank %d: %s",
                rank,
                line,
                extra={"category": "training", "event": "rank_output", "run_id": self._run_id},
            )

    def _log(
        self, message: str, rank: int, event: str, pid: int, status: int | None = None
    ) -> None:
        extra: dict[str, str | int | None] = {
            "category": "training",
            "event": event,
            "run_id": self._run_id,
            "child": f"rank {rank}",
            "pid": pid,
            "exit_status": status,
        }
        log.info(message, rank, extra=extra)


def _how(code: int) -> str:
    """How a process with exit status `code` (negative: the signal) ended."""
    if code < 0:
        return f"was killed by {signal.Signals(-code).name}"
    return f"exited with status {code}"
