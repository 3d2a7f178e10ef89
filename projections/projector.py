"""The live projector: group `projector` over every stream, one apply script call per event.

At-least-once delivery plus idempotent facts gives an exactly-once effect: the runtime acks an
entry only after the script applied it, and applying it again (redelivery, reclaim, a replay
under a new entry id) changes nothing. While a rebuild holds `projector:lock` the script
refuses, and the handler waits on the lock with a deadline instead of applying. A pointer
is applied only once its signature verifies (`projections.trust`).
"""

from __future__ import annotations

import threading
import time

import redis

from events import (
    Consumer,
    Delivery,
    Event,
    Handlers,
    Interrupted,
    RuntimeConfig,
    SigningKeys,
    names,
)
from projections.projection import project
from projections.store import APPLY, keys, payload
from projections.trust import admit

DEFAULT_CONFIG = RuntimeConfig()


class PauseTimeoutError(RuntimeError):
    """A rebuild held the lock longer than the projector is willing to wait for one entry."""


class Projector:
    """Materializes the read model from all three streams."""

    def __init__(
        self,
        client: redis.Redis,
        signing_keys: SigningKeys,
        *,
        config: RuntimeConfig = DEFAULT_CONFIG,
        name: str | None = None,
        lock_poll_s: float = 0.05,
        max_pause_s: float = 3600.0,
    ) -> None:
        self.client = client
        self.signing_keys = signing_keys
        self.lock_poll_s = lock_poll_s
        self.max_pause_s = max_pause_s
        self.paused = threading.Event()
        """Set while the handler waits for a rebuild to release the lock (observability)."""
        self._apply = client.register_script(APPLY)
        self.consumer = Consumer(
            client,
            streams=names.ALL_STREAMS,
            group=names.PROJECTOR_GROUP,
            handlers=Handlers().on_any(self.handle),
            config=config,
            name=name,
        )

    def handle(self, event: Event, delivery: Delivery) -> None:
        """Apply `event`'s fact and advance the checkpoint of its stream, atomically; a
        pointer whose signature does not verify raises `PointerRefused` instead, so its entry
        ends in the dead letters with that error and the read model never holds it."""
        admit(event, self.signing_keys)
        fact = project(event)
        script_keys, args = keys(fact, delivery.stream), [delivery.entry_id, payload(fact)]
        deadline = time.monotonic() + self.max_pause_s
        while self._apply(keys=script_keys, args=args) == 0:
            self.paused.set()
            if delivery.stopping.wait(self.lock_poll_s):
                raise Interrupted("stopping while paused by a rebuild")
            if time.monotonic() > deadline:
                raise PauseTimeoutError(f"rebuild lock held for over {self.max_pause_s} s")
        self.paused.clear()

    def run(self) -> None:
        """Consume until `stop` (tests, threads)."""
        self.consumer.run()

    def serve(self) -> None:
        """Consume until SIGTERM or SIGINT (the `trainledger projector` command)."""
        self.consumer.serve()

    def stop(self) -> None:
        """Ask the consumer to return after the entry in hand."""
        self.consumer.stop()
