"""The projection is pure and total: every event type fills exactly one slot; the derivation
rules and the in-memory fold are the reference the engine script must match."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from events import SignedFields
from projections import MemoryModel, Record, derive, project
from projections.projection import GROUPS, format_at, micros
from tests.projections.factories import (
    FILE_A,
    FILE_B,
    REVIVAL,
    SIGNING_KEYS,
    Clock,
    at,
    run_events,
    tokenizer_events,
)

DEFERRED = (
    "artifact upload waiting for Data Bank (attempt 2 failed: TransientError: 503); "
    "next attempt at about 2030-01-01T00:01:40.000000Z"
)
CURVES = (
    '{"train":[[1,3.9],[2,3.8],[3,3.7],[4,3.6],[5,3.5],[6,3.4],[7,3.3],[8,3.2],[9,3.1],[10,3.0]],'
    '"validation":[[10,3.5]]}'
)
SIGNED = SIGNING_KEYS.sign(SignedFields(subject="run", subject_id="r1", file_id=FILE_A, size=10))
"""The signature of r1's pointer in the factories: the pointer slot keeps it."""
RUN_SLOTS = {
    "training.requested": ("requested", ("r1 name", '{"dataset":"tiny","lr":"5e-4"}', None)),
    "training.started": ("started", ("n1",)),
    "training.restarted": ("restarted", ("n2", "2", "20")),
    "training.progress": (
        "progress",
        ("10", "20", "3.0", "3.5", CURVES),
    ),
    "training.failed": ("failed", ("out of memory", "oom", None)),
    "training.revived": ("failed", (None, None, REVIVAL.message)),
    "training.cancel_requested": ("cancel_requested", ("no longer needed",)),
    "training.cancelled": ("cancelled", ("n1",)),
    "artifact.uploaded": ("uploaded", ("n1", "10")),
    "artifact.upload_failed": ("upload", ("artifact upload failed", None)),
    "artifact.upload_deferred": ("upload", (None, DEFERRED)),
    "artifact.upload_requested": ("upload", (None, "artifact upload requested again")),
    "artifact.pointer_set": ("pointer", (FILE_A, "10", SIGNED.key_id, SIGNED.hmac, None)),
    "artifact.pointer_revoked": (
        "pointer",
        (None, None, None, None, "artifact pointer revoked: bad weights"),
    ),
    "run.deleted": ("deleted", ("deleted: no longer needed",)),
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
    assert fact.values[2] is None  # not a reproduction


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
        ("tokenizer.revived", "failed"),
        ("artifact.uploaded", "uploaded"),
        ("artifact.upload_deferred", "upload"),
        ("artifact.upload_requested", "upload"),
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


def fold(*kinds: str, run: str = "r1") -> dict[str, str]:
    """The record of `run` after events of `kinds`, in that order, one second apart."""
    make = run_events(run, Clock())
    model = MemoryModel()
    for kind in kinds:
        model.apply(project(make[kind]()))
    record = model.get("run", run)
    assert record is not None
    return record.fields("run")


@pytest.mark.parametrize(
    ("kinds", "status", "message"),
    [
        (("training.requested",), "queued", None),
        (("training.requested", "training.started"), "running", None),
        (("training.started", "training.completed"), "trained", None),
        (("training.completed", "artifact.uploaded"), "uploading", None),
        (("artifact.uploaded", "artifact.pointer_set"), "completed", None),
        (("artifact.pointer_set", "training.failed"), "failed", "out of memory"),
        (
            ("artifact.uploaded", "artifact.upload_failed"),
            "failed",
            "artifact upload failed",
        ),
        (
            ("training.failed", "training.cancel_requested", "training.cancelled"),
            "cancelled",
            "no longer needed",
        ),
        (
            ("artifact.pointer_set", "artifact.pointer_revoked"),
            "completed",
            "artifact pointer revoked: bad weights",
        ),
        (("training.cancel_requested",), "queued", None),
        (("training.completed", "artifact.upload_deferred"), "uploading", DEFERRED),
        (
            ("artifact.upload_deferred", "artifact.upload_failed"),
            "failed",
            "artifact upload failed",
        ),
        (
            ("artifact.upload_failed", "artifact.upload_requested"),
            "uploading",
            "artifact upload requested again",
        ),
        (
            ("artifact.upload_failed", "artifact.upload_requested", "artifact.upload_deferred"),
            "uploading",
            DEFERRED,
        ),
        (
            ("artifact.upload_failed", "artifact.upload_requested", "artifact.pointer_set"),
            "completed",
            None,
        ),
        (("artifact.upload_deferred", "artifact.uploaded"), "uploading", None),
    ],
)
def test_status_precedence(kinds: tuple[str, ...], status: str, message: str | None) -> None:
    fields = fold(*kinds)
    assert fields["status"] == status
    assert fields.get("message") == message


def test_a_pointer_seen_before_completion_still_completes() -> None:
    make = run_events("r1", Clock())
    events = [
        make[k]() for k in ("training.requested", "training.completed", "artifact.pointer_set")
    ]
    forward, backward = MemoryModel(), MemoryModel()
    for event in events:
        forward.apply(project(event))
    for event in reversed(events):
        backward.apply(project(event))
    first, record = forward.get("run", "r1"), backward.get("run", "r1")
    assert first is not None
    assert record is not None
    in_order = first.fields("run")
    assert record.fields("run") == in_order
    assert in_order["status"] == "completed"
    assert record.file_id() == FILE_A


def test_last_writer_wins_by_time_then_event_id() -> None:
    make = run_events("r1")
    record = Record()
    newer = make["training.started"](t=5, node="late")
    older = make["training.started"](t=4, node="early")
    assert record.apply(project(newer))
    assert not record.apply(project(older))
    assert not record.apply(project(newer))
    assert record.fields("run")["node"] == "late"
    tie = make["training.started"](t=5, node="tie")
    assert record.apply(project(tie)) == (tie.event_id > newer.event_id)


def test_revoked_then_set_again_points_at_the_new_file() -> None:
    make = run_events("r1")
    record = Record()
    for event in (make["artifact.pointer_set"](t=1), make["artifact.pointer_revoked"](t=2)):
        record.apply(project(event))
    assert record.file_id() is None
    record.apply(project(make["artifact.pointer_set"](t=3, file_id=FILE_B)))
    assert record.file_id() == FILE_B
    assert "revoked" not in record.fields("run")


def test_node_prefers_the_node_that_trained() -> None:
    assert fold("training.started")["node"] == "n1"
    assert "node" not in fold("training.requested")
    make = run_events("r1")
    record = Record()
    record.apply(project(make["training.started"](node="a")))
    record.apply(project(make["training.completed"](node="b")))
    assert record.fields("run")["node"] == "b"


def test_tokenizer_rules() -> None:
    make = tokenizer_events("t1")
    model = MemoryModel()
    for kind in ("tokenizer.requested", "tokenizer.completed", "artifact.pointer_set"):
        model.apply(project(make[kind]()))
    record = model.get("tokenizer", "t1")
    assert record is not None
    fields = record.fields("tokenizer")
    assert (fields["status"], fields["node"], fields["vocab_size"]) == ("completed", "n2", "512")
    assert model.get("run", "t1") is None
    assert len(model) == 1
    assert [(kind, subject) for kind, subject, _ in model.items()] == [("tokenizer", "t1")]


def test_derive_falls_back_to_queued() -> None:
    assert derive("run", {}) == {"status": "queued"}
    assert derive("tokenizer", {"trained_at": "x", "trained_node": "n"}) == {
        "status": "trained",
        "node": "n",
    }


def test_a_deletion_outlasts_any_later_request_or_pointer() -> None:
    make = run_events("r1")
    model = MemoryModel()
    for event in (make["run.deleted"](t=1), make["training.requested"](t=5)):
        model.apply(project(event))
    model.apply(project(make["artifact.pointer_set"](t=6)))
    record = model.get("run", "r1")
    assert record is not None
    assert (record.file_id(), record.index_score(), record.score) == (None, None, micros(at(5)))
    assert record.fields("run")["status"] == "deleted"


@pytest.mark.parametrize(
    ("kinds", "status", "message"),
    [
        (("training.requested", "training.failed", "training.revived"), "queued", REVIVAL.message),
        (
            ("training.started", "training.restarted", "training.failed", "training.revived"),
            "queued",
            REVIVAL.message,
        ),
        (("training.failed", "training.revived", "training.started"), "running", None),
        (
            ("training.started", "training.failed", "training.revived", "training.restarted"),
            "running",
            None,
        ),
        (("training.failed", "training.revived", "training.failed"), "failed", "out of memory"),
        (("training.completed", "training.failed", "training.revived"), "trained", None),
        (("training.failed", "training.revived", "training.cancelled"), "cancelled", None),
    ],
)
def test_a_revival_withdraws_the_failure_until_a_later_fact(
    kinds: tuple[str, ...], status: str, message: str | None
) -> None:
    fields = fold(*kinds)
    assert (fields["status"], fields.get("message")) == (status, message)
    assert "failure" not in fields or status == "failed"


def test_a_revived_tokenizer_is_queued_until_it_trains() -> None:
    make = tokenizer_events("t1", Clock())
    model = MemoryModel()
    for kind in ("tokenizer.requested", "tokenizer.failed", "tokenizer.revived"):
        model.apply(project(make[kind]()))
    record = model.get("tokenizer", "t1")
    assert record is not None
    fields = record.fields("tokenizer")
    assert (fields["status"], fields["message"]) == ("queued", REVIVAL.message)
    model.apply(project(make["tokenizer.completed"]()))
    assert record.fields("tokenizer")["status"] == "trained"


def test_a_revival_older_than_the_failure_loses_its_slot() -> None:
    make = run_events("r1")
    record = Record()
    record.apply(project(make["training.failed"](t=5)))
    assert not record.apply(project(make["training.revived"](t=4)))
    assert record.fields("run")["status"] == "failed"
