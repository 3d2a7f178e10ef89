"""The stages' reading of the log: finished runs, cancel requests, the pointer in force (only
one the deployment signed counts); and appends that happen once per cause."""

from __future__ import annotations

import logging

import pytest
import redis

from consumers.history import History, record
from events import (
    ArtifactPointer,
    ArtifactPointerRevoked,
    ArtifactPointerSet,
    ArtifactUploadFailed,
    EventLog,
    PointerRevokedPayload,
    StartedPayload,
    TokenizerRequested,
    TokenizerSpec,
    TrainingCancelRequested,
    TrainingStarted,
    UploadFailedPayload,
    names,
    text,
)
from tests.projections.factories import (
    FILE_A,
    FILE_B,
    FORGERIES,
    SIGNING_KEY,
    SIGNING_KEYS,
    Forgery,
    forged_pointer,
    signed_pointer,
)


def _set(run_id: str, file_id: str) -> ArtifactPointerSet:
    return signed_pointer("run", {"correlation_id": run_id}, file_id)


def _revoked(run_id: str) -> ArtifactPointerRevoked:
    payload = PointerRevokedPayload(subject="run", reason="bad")
    return ArtifactPointerRevoked(correlation_id=run_id, payload=payload)


def test_the_pointer_in_force_is_the_last_set_unless_revoked_after(
    redis_client: redis.Redis,
) -> None:
    log = EventLog(redis_client)
    assert History.read(log, "r").verified(SIGNING_KEYS).pointer() is None
    log.append(_set("r", FILE_A))
    log.append(_set("r", FILE_B))
    assert History.read(log, "r").verified(SIGNING_KEYS).pointer() == ArtifactPointer(
        file_id=FILE_B
    )
    log.append(_revoked("r"))
    history = History.read(log, "r").verified(SIGNING_KEYS)
    assert history.pointer() is None
    assert history.last_file_id() == FILE_B
    log.append(_set("r", FILE_A))
    assert History.read(log, "r").verified(SIGNING_KEYS).pointer() == ArtifactPointer(
        file_id=FILE_A
    )


@pytest.mark.parametrize(("kind", "code"), FORGERIES.items(), ids=list(FORGERIES))
def test_a_pointer_the_deployment_did_not_sign_is_as_if_absent(
    redis_client: redis.Redis, caplog: pytest.LogCaptureFixture, kind: Forgery, code: str
) -> None:
    caplog.set_level(logging.WARNING, logger="consumers")
    log = EventLog(redis_client)
    log.append(_set("r", FILE_A))
    log.append(forged_pointer(kind, "run", {"correlation_id": "r"}, FILE_B))
    log.append(forged_pointer(kind, "run", {"correlation_id": "only-forged"}, FILE_B))

    history = History.read(log, "r")
    assert len(history.events) == 2  # the plain history keeps every event: no pointer facts
    verified = history.verified(SIGNING_KEYS)
    assert (verified.pointer(), verified.last_file_id()) == (
        ArtifactPointer(file_id=FILE_A),
        FILE_A,
    )
    forged_only = History.read(log, "only-forged").verified(SIGNING_KEYS)
    assert (forged_only.pointer(), forged_only.last_file_id()) == (None, None)
    assert not forged_only.upload_settled("cause")
    warned = [r for r in caplog.records if getattr(r, "event", None) == "pointer_ignored"]
    assert [(r.levelno, getattr(r, "error_code", None)) for r in warned] == [
        (logging.WARNING, code)
    ] * 2
    assert [getattr(r, "run_id", None) for r in warned] == ["r", "only-forged"]
    assert all(SIGNING_KEY not in r.getMessage() for r in caplog.records)


def test_facts_the_stages_decide_on(redis_client: redis.Redis) -> None:
    log = EventLog(redis_client)
    log.append(TrainingStarted(correlation_id="r", payload=StartedPayload(node_id="n")))
    history = History.read(log, "r").verified(SIGNING_KEYS)
    assert not history.run_finished
    assert not history.cancel_requested
    assert not history.upload_settled("cause")
    assert not history.upload_failed_before("request")
    assert not history.tokenizer_finished
    log.append(TrainingCancelRequested(correlation_id="r"))
    failed = UploadFailedPayload(subject="run", node_id="n", reason="413")
    log.append(ArtifactUploadFailed(correlation_id="r", causation_id="cause", payload=failed))
    history = History.read(log, "r").verified(SIGNING_KEYS)
    assert history.cancel_requested
    assert history.upload_settled("cause")
    assert not history.upload_settled("request")
    assert history.upload_failed_before("request")
    assert not history.upload_failed_before("cause")
    assert history.pointer() is None


def test_an_undecodable_entry_is_skipped(redis_client: redis.Redis) -> None:
    log = EventLog(redis_client)
    entry_id = redis_client.xadd(names.TRAINING_STREAM, {"event": b"{not json"})
    redis_client.rpush(names.correlation_key("r"), f"{names.TRAINING_STREAM} {text(entry_id)}")
    log.append(TrainingCancelRequested(correlation_id="r"))

    assert [event.type for event in History.read(log, "r").events] == ["training.cancel_requested"]


def test_record_appends_once_per_cause_and_kind(redis_client: redis.Redis) -> None:
    log = EventLog(redis_client)
    cause = TokenizerRequested(correlation_id="r", payload=TokenizerSpec(corpus_file_id=FILE_A))

    def started() -> TrainingStarted:
        return TrainingStarted(correlation_id="r", payload=StartedPayload(node_id="n"))

    first = record(log, cause, started())
    again = record(log, cause, started())
    other_attempt = record(log, cause, started(), once_per="attempt-2")

    assert (first.entry_id, again.duplicate) == (again.entry_id, True)
    assert not other_attempt.duplicate
    assert len(History.read(log, "r").events) == 2


def test_a_redo_that_words_its_event_differently_gets_the_first_entry(
    redis_client: redis.Redis,
) -> None:
    """Stage keys are not fingerprinted: a redo of the same cause on another node is the same
    fact, and the first recorded event stands."""
    log = EventLog(redis_client)
    cause = TokenizerRequested(correlation_id="r", payload=TokenizerSpec(corpus_file_id=FILE_A))

    first = record(
        log, cause, TrainingStarted(correlation_id="r", payload=StartedPayload(node_id="a"))
    )
    redo = record(
        log, cause, TrainingStarted(correlation_id="r", payload=StartedPayload(node_id="b"))
    )

    assert (redo.entry_id, redo.duplicate) == (first.entry_id, True)
    [started] = History.read(log, "r").events
    assert isinstance(started, TrainingStarted)
    assert started.payload.node_id == "a"
