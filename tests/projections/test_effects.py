"""The projection is pure and total: every event type fills exactly one slot."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from projections import project
from projections.effects import GROUPS, format_at, micros
from tests.projections.factories import FILE_A, run_events, tokenizer_events

RUN_SLOTS = {
    "training.requested": ("requested", ()),
    "training.started": ("started", ("n1",)),
    "training.failed": ("failed", ("out of memory", "oom")),
    "training.cancel_requested": ("cancel_requested", ("no longer needed",)),
    "training.cancelled": ("cancelled", ("n1",)),
    "artifact.uploaded": ("uploaded", ("n1",)),
    "artifact.upload_failed": ("upload_failed", ("artifact upload failed",)),
    "artifact.pointer_set": ("pointer", (FILE_A, None)),
    "artifact.pointer_revoked": ("pointer", (None, "artifact pointer revoked: bad weights")),
}


@pytest.mark.parametrize(("kind", "slot"), RUN_SLOTS.items())
def test_each_run_event_fills_its_slot(kind: str, slot: tuple[str, tuple[str | None, ...]]) -> None:
    fact = project(run_events("r1")[kind]())
    assert (fact.kind, fact.subject, fact.group, fact.values) == ("run", "r1", *slot)
    assert len(fact.values) == len(GROUPS["run"][fact.group])


def test_training_completed_keeps_node_and_metrics_json() -> None:
    fact = project(run_events("r1")["training.completed"]())
    assert fact.group == "trained"
    assert fact.values[0] == "n1"
    assert fact.values[1] is not None
    assert '"tokens_per_second":200.0' in fact.values[1]


def test_only_a_request_places_the_run_in_the_index() -> None:
    make = run_events("r1")
    requested = project(make["training.requested"](t=2.5))
    assert requested.score == micros(
        requested_time := make["training.requested"](t=2.5).occurred_at
    )
    assert requested_time.year == 2030
    assert project(make["training.started"]()).score is None


@pytest.mark.parametrize(
    ("kind", "group"),
    [
        ("tokenizer.requested", "requested"),
        ("tokenizer.completed", "trained"),
        ("tokenizer.failed", "failed"),
        ("artifact.uploaded", "uploaded"),
        ("artifact.pointer_set", "pointer"),
    ],
)
def test_tokenizer_events_fill_tokenizer_slots(kind: str, group: str) -> None:
    fact = project(tokenizer_events("t1")[kind]())
    assert (fact.kind, fact.subject, fact.group) == ("tokenizer", "t1", group)
    assert fact.score is None
    assert len(fact.values) == len(GROUPS["tokenizer"][group])


def test_vocab_size_is_kept_as_text() -> None:
    assert project(tokenizer_events("t1")["tokenizer.completed"]()).values == ("n2", "512")


def test_times_are_fixed_width_utc_whatever_the_offset() -> None:
    plus_two = timezone(timedelta(hours=2))
    assert format_at(datetime(2030, 1, 1, 2, tzinfo=plus_two)) == "2030-01-01T00:00:00.000000Z"
    assert format_at(datetime(2030, 1, 1, tzinfo=UTC)) == "2030-01-01T00:00:00.000000Z"
    assert format_at(datetime(999, 5, 6, 7, 8, 9, 10)) == "0999-05-06T07:08:09.000010Z"


def test_an_offset_that_leaves_the_calendar_is_ignored_not_fatal() -> None:
    edge = datetime(1, 1, 1, tzinfo=timezone(timedelta(hours=5)))
    assert format_at(edge) == "0001-01-01T00:00:00.000000Z"
    assert micros(edge) == micros(datetime(1, 1, 1, tzinfo=UTC))


def test_naive_times_are_taken_as_utc() -> None:
    assert micros(datetime(1970, 1, 1, 0, 0, 1)) == 1_000_000


def test_string_order_is_time_order() -> None:
    early, late = datetime(2030, 1, 1, tzinfo=UTC), datetime(2030, 1, 1, 0, 0, 0, 1, tzinfo=UTC)
    assert format_at(early) < format_at(late)
    assert micros(late) - micros(early) == 1
