"""A rank > 0 of a data-parallel training: `python -m consumers.rank_process`, started by rank 0
(`consumers.ranks`) with its `RankArgs` as JSON on stdin.

It loads the tokenizer, connects to rank 0's store, says it is there, joins the process group and trains its shard
of every step (`train_rank`); it exits 0 once the run has ended or rank 0 stopped it, and
non-zero, its traceback on stderr (which rank 0 drains into the worker's log), when it failed.

It outlives nobody: a daemon watchdog ends it once the process that started it is no longer
its parent (a SIGKILLed worker cannot stop its ranks), checked a few times a second.
`PR_SET_PDEATHSIG` is not used: it fires when the starting *thread* ends, and the worker
starts ranks from a consumer thread.

It ignores SIGTERM: a service manager stopping the worker signals its whole process group or
cgroup (systemd's default `KillMode=control-group`), and a rank dying of that signal would fail
the run before the worker's own shutdown could stop it at a step and leave it for another
worker. The worker's stop reaches the ranks through the per-step collective instead; rank 0
SIGKILLs a rank that outstays it (`consumers.ranks`), and the watchdog covers a dead worker.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import threading
import time
from collections.abc import Callable

import torch

from consumers.ddp import RankArgs, client_store, joined, rank_device, ready_key
from consumers.tokenizer import load_tokenizer
from consumers.trainer import CancelRequested, train_rank

ORPHANED = 3
"""Exit status of a rank whose parent is gone."""


def exit_with_parent(
    parent: int,
    *,
    every: float = 0.2,
    parent_now: Callable[[], int] = os.getppid,
    leave: Callable[[int], object] = os._exit,
) -> threading.Thread:
    """Start a daemon thread that ends this process (`leave(ORPHANED)`) once `parent` is no
    longer its parent: it died, and this process was handed to another."""

    def watch() -> None:
        while parent_now() == parent:
            time.sleep(every)
        leave(ORPHANED)

    thread = threading.Thread(target=watch, name="parent-watchdog", daemon=True)
    thread.start()
    return thread


def main() -> None:
    """Read the arguments from stdin and train this rank's shards until the run ends."""
    signal.signal(signal.SIGTERM, signal.SIG_IGN)  # the worker stops the run, not the signal
    args = RankArgs.model_validate_json(sys.stdin.buffer.read())
    exit_with_parent(args.parent)
    torch.set_num_threads(args.threads)
    tokenizer = load_tokenizer(args.tokenizer_dir)
    device = rank_device(torch.device(args.device), args.rank)
    store = client_store(args.host, args.port, args.world_size)
    store.set(ready_key(args.rank), "1")  # nothing left to fail before joining
    with (
        joined(store, args.rank, args.world_size, device) as group,
        contextlib.suppress(CancelRequested),  # rank 0 stopped the run, and reports it
    ):
        train_rank(args.corpus, tokenizer, args.spec, group, args.resume)


if __name__ == "__main__":
    main()
