"""Derivation rules and the in-memory fold: the reference the engine script must match."""

from __future__ import annotations

import pytest

from projections import MemoryModel, derive, project
from projections.model import Record
from tests.projections.factories import FILE_A, FILE_B, Clock, run_events, tokenizer_events


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
    ],
)
def test_status_precedence(kinds: tuple[str, ...], status: str, message: str | None) -> None:
    fields = fold(*kinds)
    assert fields["status"] == status
    assert fields.get("message") == message


def test_a_pointer_seen_before_completion_still_completes() -> None:
    in_order = fold("training.requested", "training.completed", "artifact.pointer_set")
    make = run_events("r1", Clock())
    events = [
        make[k]() for k in ("training.requested", "training.completed", "artifact.pointer_set")
    ]
    model = MemoryModel()
    for event in reversed(events):
        model.apply(project(event))
    record = model.get("run", "r1")
    assert record is not None
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
