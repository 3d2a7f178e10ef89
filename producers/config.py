"""What the API needs to run, handed in by the composition root (it reads no environment)."""

from __future__ import annotations

from dataclasses import dataclass

from events import DEFAULT_POLICY, PRIMARY_ONLY, ConnectionPolicy, Durability


@dataclass(frozen=True)
class SpecLimits:
    """The largest training a request may ask for: the API's own bounds, well below the hard
    limits of `events.TrainingSpec`, so one request cannot tie a worker up for days."""

    max_n_layer: int = 12
    max_n_embd: int = 1024
    max_batch_size: int = 256
    max_sequence_length: int = 1024
    max_processes: int = 8


@dataclass(frozen=True)
class ApiConfig:
    """The API's settings.

    `read_your_writes_timeout_s` bounds how long a GET with `min_position` waits for the
    projector; `sse_max_s` bounds one Server-Sent Events response (clients reconnect with
    `Last-Event-ID`), `sse_block_ms` how long one read of the log stream blocks; `policy`
    how the engine clients connect, `durability` what an append waits for; `limits` the
    largest training spec accepted.
    """

    redis_url: str
    api_key: str | None = None
    read_your_writes_timeout_s: float = 5.0
    read_your_writes_poll_s: float = 0.01
    sse_max_s: float = 300.0
    sse_block_ms: int = 1000
    policy: ConnectionPolicy = DEFAULT_POLICY
    durability: Durability = PRIMARY_ONLY
    limits: SpecLimits = SpecLimits()
