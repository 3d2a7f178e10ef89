"""A pointer the deployment's workers did not sign never reaches the read model: the projector
dead-letters it with the refusal, a rebuild leaves it out, and a signed one goes through, also
under a key rotated into `previous`."""

from __future__ import annotations

import pytest
import redis

from events import (
    ArtifactPointer,
    ArtifactPointerSet,
    EventLog,
    RuntimeConfig,
    SigningKeys,
    list_dead_letters,
    names,
)
from projections import Projector, ReadModel, rebuild_read_model
from tests.projections.factories import (
    FILE_A,
    FILE_B,
    FORGERIES,
    SIGNING_KEYS,
    Clock,
    Forgery,
    completed_run,
    forged_pointer,
    run_events,
    signed_pointer,
)
from tests.projections.helpers import drain

QUICK = RuntimeConfig(block_ms=5, visibility_timeout_ms=20, max_deliveries=2)
"""Reclaims at once and gives up after two deliveries: a refusal is the same every time."""


def forged(kind: Forgery, run: str, clock: Clock) -> ArtifactPointerSet:
    """A pointer of `run` to FILE_B that its workers did not sign, of the `kind` asked for."""
    event_id, when = clock.stamp(None)
    envelope: dict[str, object] = {"event_id": event_id, "occurred_at": when, "correlation_id": run}
    return forged_pointer(kind, "run", envelope, FILE_B)


def dead_letters(client: redis.Redis) -> list[str]:
    letters = list_dead_letters(client, names.POINTER_STREAM, names.PROJECTOR_GROUP, count=100)
    return [letter.error for letter in letters]


@pytest.mark.parametrize(("kind", "code"), FORGERIES.items(), ids=list(FORGERIES))
def test_a_forged_pointer_is_dead_lettered_and_the_read_model_never_holds_it(
    redis_client: redis.Redis, kind: Forgery, code: str
) -> None:
    clock = Clock()
    log = EventLog(redis_client)
    for event in completed_run("r1", clock)[:-1]:  # trained and uploaded, no pointer yet
        log.append(event)
    log.append(forged(kind, "r1", clock))
    drain(Projector(redis_client, SIGNING_KEYS, config=QUICK))
    [error] = dead_letters(redis_client)
    assert error.startswith(f"PointerRefused: {code}: the artifact pointer of run 'r1' to file")
    reads = ReadModel(redis_client)
    assert reads.run_artifact("r1") is None
    status = reads.run_status("r1")
    assert status is not None
    assert status.status == "uploading"
    assert redis_client.hget(names.run_status_key("r1"), "file_id") is None

    report = rebuild_read_model(redis_client, SIGNING_KEYS, verify=True)
    assert (report.refused, report.drift.clean) == (1, True)


def test_a_signed_pointer_is_projected_with_its_signature(redis_client: redis.Redis) -> None:
    EventLog(redis_client).append(run_events("r1")["artifact.pointer_set"](size=77))
    drain(Projector(redis_client, SIGNING_KEYS, config=QUICK))
    assert dead_letters(redis_client) == []
    signed = ReadModel(redis_client).signed_run_artifact("r1")
    assert signed is not None
    assert signed.verified(SIGNING_KEYS) == ArtifactPointer(file_id=FILE_A)
    assert signed.fields.size == 77


def test_a_pointer_signed_by_a_previous_key_still_projects(redis_client: redis.Redis) -> None:
    old = SigningKeys(current="the-old-signing-key-" + "3" * 32)
    envelope = {"correlation_id": "r1"}
    EventLog(redis_client).append(signed_pointer("run", envelope, FILE_A, keys=old))
    rotated = SigningKeys(current=SIGNING_KEYS.current, previous=(old.current,))
    drain(Projector(redis_client, rotated, config=QUICK))
    assert ReadModel(redis_client).run_artifact("r1") == ArtifactPointer(file_id=FILE_A)
    assert rebuild_read_model(redis_client, rotated, verify=True).drift.clean
    # once the old key is dropped, a rebuild takes the pointer out of the read model
    report = rebuild_read_model(redis_client, SIGNING_KEYS)
    assert (report.refused, ReadModel(redis_client).run_artifact("r1")) == (1, None)


def test_a_rebuild_removes_a_pointer_written_straight_into_the_read_model(
    redis_client: redis.Redis,
) -> None:
    log = EventLog(redis_client)
    for event in completed_run("r1"):
        log.append(event)
    drain(Projector(redis_client, SIGNING_KEYS, config=QUICK))
    redis_client.set(names.run_artifact_key("r2"), FILE_B)  # no event says so
    report = rebuild_read_model(redis_client, SIGNING_KEYS)
    assert names.run_artifact_key("r2") in report.drift.extra
    assert redis_client.get(names.run_artifact_key("r2")) is None
    assert ReadModel(redis_client).run_artifact("r1") == ArtifactPointer(file_id=FILE_A)
