"""A revival in the read model: the engine's script and a rebuild agree on it, including the
one rule that compares times (a revived run is `queued` until a later start)."""

from __future__ import annotations

import redis

from projections import Projector, ReadModel, rebuild_read_model
from tests.events.appending import append_all
from tests.projections.factories import (
    REVIVAL,
    SIGNING_KEYS,
    Clock,
    run_events,
    tokenizer_events,
)
from tests.projections.helpers import FAST, clear_read_model, drain, snapshot


def test_a_revived_run_reads_the_same_live_and_after_a_rebuild(redis_client: redis.Redis) -> None:
    clock = Clock()
    revived, restarted = run_events("r1", clock), run_events("r2", clock)
    tokenizer = tokenizer_events("t1", clock)
    lifecycle = ("training.requested", "training.started", "training.failed", "training.revived")
    events = [revived[kind]() for kind in lifecycle]
    events += [restarted[kind]() for kind in (*lifecycle, "training.restarted")]
    events += [
        tokenizer[k]() for k in ("tokenizer.requested", "tokenizer.failed", "tokenizer.revived")
    ]
    append_all(redis_client, events)
    drain(Projector(redis_client, SIGNING_KEYS, config=FAST))
    live = snapshot(redis_client)

    reads = ReadModel(redis_client)
    run = reads.run_status("r1")
    assert run is not None
    assert (run.status, run.message, run.failed_at) == ("queued", REVIVAL.message, None)
    again = reads.run_status("r2")
    assert again is not None
    assert (again.status, again.message, again.attempt) == ("running", None, 2)
    revived_tokenizer = reads.tokenizer_status("t1")
    assert revived_tokenizer is not None
    assert (revived_tokenizer.status, revived_tokenizer.failed_at) == ("queued", None)

    clear_read_model(redis_client)
    assert rebuild_read_model(redis_client, SIGNING_KEYS).applied
    assert snapshot(redis_client) == live
    assert rebuild_read_model(redis_client, SIGNING_KEYS, verify=True).drift.clean
