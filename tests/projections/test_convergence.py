"""Every delivery converges: duplicates, cross-stream reorderings, crashes, reclaims, rebuilds.

One clean pass (the log in order, one projector, no failures) is the reference. The same
events appended in another interleaving, some twice (as a dead-letter replay re-appends), with
a consumer that dies holding entries and one whose handler crashes before or after applying,
then drained by a healthy projector, must leave the same read model; so must a rebuild from an
empty read model, and `--verify` must then find no drift.
"""

from __future__ import annotations

from dataclasses import dataclass

import redis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from events import Consumer, Delivery, Event, Handlers, names
from projections import Projector, rebuild_read_model
from tests.events.appending import append_all, append_replaying
from tests.projections.factories import (
    SIGNING_KEYS,
    Clock,
    alias_events,
    run_events,
    tokenizer_events,
)
from tests.projections.helpers import FAST, clear_read_model, drain, snapshot

SUBJECTS = ("r0", "r1", "t0", "m0")


@dataclass(frozen=True)
class Plan:
    """How the events reach the projector this time."""

    order: list[Event]
    crash_before: frozenset[int]
    crash_after: frozenset[int]
    abandoned: int
    garbage: bool


@st.composite
def histories(draw: st.DrawFn) -> list[Event]:
    """Random events about two runs and a tokenizer, at a few coarse times (so ties occur)."""
    clock = Clock()
    builders = {
        "r0": run_events("r0", clock),
        "r1": run_events("r1", clock),
        "t0": tokenizer_events("t0", clock),
        "m0": alias_events("m0", clock),
    }
    events: list[Event] = []
    for _ in range(draw(st.integers(1, 16))):
        make = builders[draw(st.sampled_from(SUBJECTS))]
        kind = draw(st.sampled_from(sorted(make)))
        events.append(make[kind](t=draw(st.integers(0, 3))))
    return events


@st.composite
def plans(draw: st.DrawFn, events: list[Event]) -> Plan:
    """Duplicates, a shuffled interleaving, crashes and an abandoned claim."""
    duplicated = draw(st.lists(st.sampled_from(events), max_size=4))
    order = draw(st.permutations([*events, *duplicated]))
    positions = st.integers(0, len(order) - 1)
    return Plan(
        order=list(order),
        crash_before=frozenset(draw(st.lists(positions, max_size=3))),
        crash_after=frozenset(draw(st.lists(positions, max_size=3))),
        abandoned=draw(st.integers(0, 3)),
        garbage=draw(st.booleans()),
    )


def clean_pass(client: redis.Redis, events: list[Event]) -> dict[str, object]:
    client.flushdb()
    append_all(client, events)
    drain(Projector(client, SIGNING_KEYS, config=FAST))
    return snapshot(client)


def chaotic_pass(client: redis.Redis, plan: Plan) -> None:
    client.flushdb()
    ids = append_replaying(client, plan.order)
    if plan.garbage:
        client.xadd(names.UPLOAD_STREAM, {b"event": b"{not json"})
    projector = Projector(client, SIGNING_KEYS, config=FAST)
    projector.consumer.ensure_groups()
    if plan.abandoned:  # a consumer that claims entries and dies before handling them
        client.xreadgroup(
            names.PROJECTOR_GROUP,
            "dead-consumer",
            dict.fromkeys(names.ALL_STREAMS, ">"),
            count=plan.abandoned,
        )

    def flaky(event: Event, delivery: Delivery) -> None:
        position = ids.index(delivery.entry_id) if delivery.entry_id in ids else -1
        if delivery.attempt == 1 and position in plan.crash_before:
            raise RuntimeError("crashed before applying")
        projector.handle(event, delivery)
        if delivery.attempt == 1 and position in plan.crash_after:
            raise RuntimeError("crashed after applying, before the ack")

    Consumer(
        client,
        streams=names.ALL_STREAMS,
        group=names.PROJECTOR_GROUP,
        handlers=Handlers().on_any(flaky),
        config=FAST,
        name="flaky",
    ).poll()
    drain(projector)


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(data=st.data())
def test_every_delivery_converges_on_the_clean_pass(
    redis_client: redis.Redis, data: st.DataObject
) -> None:
    events = data.draw(histories())
    reference = clean_pass(redis_client, events)
    assert reference

    plan = data.draw(plans(events))
    chaotic_pass(redis_client, plan)
    assert snapshot(redis_client) == reference

    clear_read_model(redis_client)
    report = rebuild_read_model(redis_client, SIGNING_KEYS)
    assert snapshot(redis_client) == reference
    assert (report.events, report.skipped) == (len(plan.order), int(plan.garbage))
    assert rebuild_read_model(redis_client, SIGNING_KEYS, verify=True).drift.clean
