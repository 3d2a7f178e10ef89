"""What an append waits for before it counts as done: its copy on the engine's replicas.

With a replicated engine (a primary under Sentinel), an append the primary took but had not
yet sent to a replica is lost if the primary dies and the replica is promoted. `Durability`
closes that window: after the append, `WAIT` (on the same connection) blocks until
`replicas` replicas hold it, or `timeout_ms` passes, and only then is the append reported.

The trade-off is the usual one (Kafka's `acks=all` with one in-sync replica): the number
waited for is capped by the replicas in sync now (state `online`), read from
`INFO replication` at most once a second. While a replica is connected, an acknowledged append is on it; when none is (right
after a failover, before the old primary returns), appends are acknowledged by the primary
alone rather than refused, so the system stays writable. A `WAIT` that times out raises
`NotReplicatedError`: the append may or may not survive a failover, so the caller reports a
retryable failure (the API answers 503; a retry with the same idempotency key is safe).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping

import redis
from pydantic import BaseModel, ConfigDict, Field

REFRESH_S = 1.0
"""How long a reading of the connected replicas is trusted."""


class Durability(BaseModel):
    """How many replicas must hold an append before it is acknowledged (0: the primary's
    word is enough), and how long to wait for them."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    replicas: int = Field(default=0, ge=0)
    timeout_ms: int = Field(default=1000, ge=1)


class NotReplicatedError(redis.ConnectionError):
    """The append reached the primary, but not the replicas it waited for within the timeout.

    A `redis.ConnectionError`: everything that rides out an engine outage (the consumer
    runtime's backoff, the API's 503) treats it the same way.
    """


def online_replicas(replication: Mapping[str, object]) -> int:
    """Replicas in sync with the primary, from its `INFO replication`: one still loading its
    first copy (`wait_bgsave`, `send_bulk`) could not acknowledge a `WAIT` yet."""
    return sum(
        1
        for name, replica in replication.items()
        if name.startswith("slave")
        and isinstance(replica, Mapping)
        and replica.get("state") == "online"
    )


class ReplicaCount:
    """The number of replicas in sync with the primary, re-read at most once a second."""

    def __init__(self, client: redis.Redis) -> None:
        self._client = client
        self._lock = threading.Lock()
        self._count = 0
        self._read_at = -REFRESH_S

    def now(self) -> int:
        """Replicas in sync with the primary, per its latest reading."""
        with self._lock:
            if time.monotonic() - self._read_at >= REFRESH_S:
                self._count = online_replicas(self._client.info("replication"))
                self._read_at = time.monotonic()
            return self._count
