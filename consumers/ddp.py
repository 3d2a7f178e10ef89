"""What every rank of a data-parallel training shares: the process group, the shards, the
one collective of each step.

The world is one node: rank 0 (the worker's training thread) holds a `TCPStore` on loopback
(port 0: the OS picks) and ranks 1..N-1 (child processes, `consumers.rank_process`) connect to
it; `gloo` on CPU, `nccl` on CUDA with rank r on `cuda:r`. Every collective is bounded by
`TIMEOUT`, so a rank that hangs fails the run instead of stalling it; one that dies fails it
at once (its sockets close).

Each step's global batch (the seeded order one process would train on) is shared out as
`indices[rank::world]`; each rank's loss is weighted by its share, so `DistributedDataParallel`'s
gradient mean is the global batch's gradient even when the last batch of an epoch does not
divide evenly (a rank left without a block trains on a stand-in block with weight 0).
"""

from __future__ import annotations

import traceback
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Literal, Self

import torch
import torch.distributed as dist
from pydantic import BaseModel, ConfigDict, Field, model_validator
from torch._C._distributed_c10d import Store, TCPStore  # typed here; `dist` re-exports them
from torch.nn.parallel import DistributedDataParallel

from consumers.checkpoints import Checkpoint
from events import TrainingSpec

HOST = "127.0.0.1"
TIMEOUT = timedelta(seconds=120)
"""The longest any rank waits for the others: at a rendezvous or in a collective (rank 0's
interval validation and checkpoints happen while the others wait in the next step)."""


def ready_key(rank: int) -> str:
    """The store key a rank sets once it runs and has connected."""
    return f"trainledger/ready/{rank}"


def rank_device(device: torch.device, rank: int) -> torch.device:
    """Rank `rank`'s device: the CPU, or its own GPU."""
    return torch.device("cuda", rank) if device.type == "cuda" else device


def master_store(world: int) -> TCPStore:
    """Rank 0's store on a free loopback port (read `.port`); it does not wait for the others."""
    return TCPStore(HOST, 0, world, is_master=True, wait_for_workers=False, timeout=TIMEOUT)


def client_store(host: str, port: int, world: int) -> TCPStore:
    """A rank's connection to rank 0's store."""
    return TCPStore(host, port, world, is_master=False, timeout=TIMEOUT)


class RankArgs(BaseModel):
    """Everything a rank > 0 needs: where to meet rank 0, its place, and what to train."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    host: str
    port: int = Field(ge=1, le=65535)
    rank: int = Field(ge=1)
    world_size: int = Field(ge=2)
    parent: int = Field(ge=1)
    """The PID of rank 0's process: the rank's parent, watched."""
    corpus: Path
    tokenizer_dir: Path
    """Where rank 0 saved the run's tokenizer before starting the ranks."""
    spec: TrainingSpec
    resume: Checkpoint | None = None
    device: Literal["cpu", "cuda"]
    threads: int = Field(ge=1)
    """torch's threads, as many as rank 0's."""

    @model_validator(mode="after")
    def _rank_in_world(self) -> Self:
        if self.rank >= self.world_size:
            raise ValueError(f"rank {self.rank} is outside a world of {self.world_size}")
        return self


@dataclass(frozen=True, slots=True)
class Shard:
    """The blocks one rank trains on in a step, and the weight of its loss."""

    rows: torch.Tensor
    weight: float
    """`world * len(rows) / len(batch)`: 1 when the batch divides evenly, 0 for a stand-in."""


def shard(indices: torch.Tensor, rank: int, world: int) -> Shard:
    """Rank `rank`'s part of one global batch of block indices."""
    own = indices[rank::world]
    if not len(own):  # the last batch of an epoch can hold fewer blocks than there are ranks
        return Shard(indices[:1], 0.0)
    return Shard(own, world * len(own) / len(indices))


@dataclass(frozen=True, slots=True)
class Group:
    """This process's place in the process group."""

    rank: int
    world: int
    device: torch.device

    def wrap(self, model: torch.nn.Module) -> DistributedDataParallel:
        """`model` with its gradients averaged across ranks in backward (buffers are constant:
        not broadcast on every forward)."""
        ids = [self.device.index] if self.device.type == "cuda" else None
        return DistributedDataParallel(model, device_ids=ids, forward_sync_buffers=False)

    def reduce(self, loss: torch.Tensor, weight: float, stop: bool) -> tuple[torch.Tensor, bool]:
        """The step's one collective: the global batch's mean loss, and whether any rank (rank
        0, asked by the stage) stops the run, so every rank stops at the same step."""
        share = loss.detach().float() * (weight / self.world)
        values = torch.stack((torch.tensor(float(stop), device=share.device), share))
        dist.all_reduce(values)
        return values[1], bool(values[0].item() > 0)


@contextmanager
def joined(store: Store, rank: int, world: int, device: torch.device) -> Iterator[Group]:
    """Join the process group as `rank`; leave it whatever happens, so the long-lived worker
    can start the next training's group."""
    if device.type == "cuda":
        torch.cuda.set_device(device)
    backend = "nccl" if device.type == "cuda" else "gloo"
    dist.init_process_group(backend, store=store, rank=rank, world_size=world, timeout=TIMEOUT)
    try:
        yield Group(rank, world, device)
    except BaseException as error:
        _forget_locals(error)
        raise
    finally:
        dist.destroy_process_group()


def _forget_locals(error: BaseException) -> None:
    """Clear the locals of the finished frames `error` and its causes went through, before the
    group goes. A failed step's frames hold the `DistributedDataParallel` wrapper; one that
    outlived the group would destroy it from its own destructor with the GIL held, waiting for
    gloo threads that need the GIL: a deadlock (a known PyTorch limitation, issue 56297)."""
    pending, seen = [error], set()
    while pending:
        current = pending.pop()
        if id(current) in seen:  # `raise ... from error` in `except`: cause and context
            continue
        seen.add(id(current))
        traceback.clear_frames(current.__traceback__)
        pending.extend(e for e in (current.__cause__, current.__context__) if e is not None)
