"""Read the whole read model out of the engine, drive a projector until it is idle, and
project a small sample history."""

from __future__ import annotations

import redis

from events import RuntimeConfig, group_stats, names
from projections import Projector
from tests.events.appending import append_all
from tests.projections.factories import SIGNING_KEYS, Clock, completed_run, tokenizer_events
from tests.waiting import wait_until

FAST = RuntimeConfig(block_ms=5, visibility_timeout_ms=20, max_deliveries=50)
"""Quick polls and reclaims for tests."""

Snapshot = dict[str, object]


def snapshot(client: redis.Redis) -> Snapshot:
    """Every read-model key (not checkpoints) with its value."""
    found: Snapshot = {}
    for pattern in ("runs:*", "tokenizer:*", "models:*"):
        for raw in client.scan_iter(match=pattern, count=1000):
            key = raw.decode()
            kind = client.type(key)
            if kind == b"hash":
                found[key] = client.hgetall(key)
            elif kind == b"string":
                found[key] = client.get(key)
            elif kind == b"zset":
                found[key] = client.zrange(key, 0, -1, withscores=True)
    return found


def clear_read_model(client: redis.Redis) -> None:
    """Delete every read-model key and checkpoint (the log stays)."""
    for pattern in ("runs:*", "tokenizer:*", "models:*", "checkpoint:*"):
        for raw in client.scan_iter(match=pattern, count=1000):
            if client.type(raw) != b"stream":
                client.delete(raw)


def idle(client: redis.Redis) -> bool:
    """True when group `projector` has nothing left to deliver or acknowledge."""
    stats = [group_stats(client, s, names.PROJECTOR_GROUP) for s in names.ALL_STREAMS]
    return all(stat.lag == 0 and stat.pending == 0 for stat in stats)


def drain(projector: Projector, timeout: float = 20.0) -> None:
    """Poll `projector` until its group is idle."""
    projector.consumer.ensure_groups()
    wait_until(
        lambda: projector.consumer.poll() >= 0 and idle(projector.client),
        timeout=timeout,
        what="the projector to drain",
    )


def project_sample(client: redis.Redis) -> None:
    """Three completed runs (r0..r2) and a trained tokenizer (t0), projected live."""
    clock = Clock()
    events = [e for run in ("r0", "r1", "r2") for e in completed_run(run, clock)]
    make = tokenizer_events("t0", clock)
    events += [make["tokenizer.requested"](), make["tokenizer.completed"]()]
    append_all(client, events)
    drain(Projector(client, SIGNING_KEYS, config=FAST))
