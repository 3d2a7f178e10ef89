"""The retention stage deletes a deleted run's Data Bank file only when nothing else holds it,
and only the file its last signed pointer names."""

from __future__ import annotations

import logging

import pytest
import redis

from consumers.retention import ProjectorBehindError, RetentionStage
from databank import DataBankClient, NotFound
from events import (
    ArtifactPointerRevoked,
    Delivery,
    EventLog,
    PointerRevokedPayload,
    RuntimeConfig,
    names,
)
from projections import Projector
from tests.events.appending import append_all
from tests.harness import LocalBank, delivery
from tests.projections.factories import (
    FORGERIES,
    SIGNING_KEY,
    SIGNING_KEYS,
    Clock,
    Forgery,
    completed_run,
    forged_pointer,
    run_events,
    tokenizer_events,
)
from tests.projections.helpers import FAST, drain


def _deletion(run_id: str, *, deleted: bool = True) -> ArtifactPointerRevoked:
    payload = PointerRevokedPayload(subject="run", reason="gc", deleted=deleted)
    return ArtifactPointerRevoked(correlation_id=run_id, payload=payload)


def _delete(client: redis.Redis, stage: RetentionStage, run_id: str) -> None:
    event = _deletion(run_id)
    appended = EventLog(client).append(event)
    drain(Projector(client, SIGNING_KEYS, config=FAST))
    stage.handle(event, delivery(stream=appended.stream, entry_id=appended.entry_id))


def _exists(bank: DataBankClient, file_id: str) -> bool:
    try:
        bank.head(file_id)
    except NotFound:
        return False
    return True


def _run_with(client: redis.Redis, run_id: str, file_id: str, clock: Clock) -> None:
    events = completed_run(run_id, clock)
    make = run_events(run_id, clock)
    append_all(client, [*events[:-1], make["artifact.pointer_set"](file_id=file_id)])


def test_a_file_goes_only_with_the_last_run_pointing_to_it(
    redis_client: redis.Redis, local_bank: LocalBank, bank_client: DataBankClient
) -> None:
    shared, own = local_bank.put(b"shared weights"), local_bank.put(b"own weights")
    clock = Clock()
    for run_id, file_id in (("r1", shared), ("r2", shared), ("r3", own)):
        _run_with(redis_client, run_id, file_id, clock)
    stage = RetentionStage(redis_client, bank_client, SIGNING_KEYS)

    _delete(redis_client, stage, "r1")
    assert _exists(bank_client, shared)
    _delete(redis_client, stage, "r2")
    assert not _exists(bank_client, shared)
    assert _exists(bank_client, own)


def test_a_tokenizer_keeps_its_own_file_and_a_run_without_artifact_deletes_nothing(
    redis_client: redis.Redis, local_bank: LocalBank, bank_client: DataBankClient
) -> None:
    tokenizer_file, run_file = local_bank.put(b"tokenizer"), local_bank.put(b"run")
    clock = Clock()
    make = tokenizer_events("t1", clock)
    append_all(
        redis_client,
        [make["tokenizer.requested"](), make["artifact.pointer_set"](file_id=tokenizer_file)],
    )
    _run_with(redis_client, "r1", run_file, clock)
    append_all(redis_client, [run_events("r2", clock)["training.failed"]()])
    stage = RetentionStage(redis_client, bank_client, SIGNING_KEYS)

    _delete(redis_client, stage, "r1")
    _delete(redis_client, stage, "r2")
    assert (_exists(bank_client, run_file), _exists(bank_client, tokenizer_file)) == (False, True)


QUICK = RuntimeConfig(block_ms=5, visibility_timeout_ms=20, max_deliveries=2)
"""The projector dead-letters a forged pointer after two deliveries: a refusal never changes."""


@pytest.mark.parametrize(("kind", "code"), FORGERIES.items(), ids=list(FORGERIES))
def test_a_forged_pointer_cannot_pick_the_file_a_deletion_frees(
    redis_client: redis.Redis,
    local_bank: LocalBank,
    bank_client: DataBankClient,
    caplog: pytest.LogCaptureFixture,
    kind: Forgery,
    code: str,
) -> None:
    """A writer to the engine appends a pointer to a file of its choosing (a corpus nothing
    points to) for a run, then deletes the run: the file survives; the run's own file goes."""
    caplog.set_level(logging.WARNING, logger="consumers")
    corpus, own = local_bank.put(b"someone's corpus"), local_bank.put(b"own weights")
    clock = Clock()
    _run_with(redis_client, "r1", own, clock)
    append_all(redis_client, completed_run("r2", clock)[:-1])  # trained, never pointed to
    for run_id in ("r1", "r2"):
        envelope = {"event_id": clock.stamp(None)[0], "correlation_id": run_id}
        append_all(redis_client, [forged_pointer(kind, "run", envelope, corpus)])
    # the forged pointers are the last entries of stream:pointer: the projector dead-letters
    # them and its checkpoint stays before them; the deletions still go ahead
    drain(Projector(redis_client, SIGNING_KEYS, config=QUICK))
    stage = RetentionStage(redis_client, bank_client, SIGNING_KEYS)

    _delete(redis_client, stage, "r1")
    _delete(redis_client, stage, "r2")

    assert (_exists(bank_client, corpus), _exists(bank_client, own)) == (True, False)
    ignored = [r for r in caplog.records if getattr(r, "event", None) == "pointer_ignored"]
    assert [getattr(r, "error_code", None) for r in ignored] == [code, code]
    assert all(SIGNING_KEY not in r.getMessage() for r in caplog.records)


class _Gone:
    def __init__(self) -> None:
        self.asked: list[str] = []

    def delete(self, file_id: str) -> None:
        self.asked.append(file_id)
        raise NotFound(f"{file_id} is gone")


def test_a_file_already_gone_is_a_done_deletion_and_a_plain_revoke_deletes_nothing(
    redis_client: redis.Redis,
) -> None:
    gone = _Gone()
    stage = RetentionStage(redis_client, gone, SIGNING_KEYS)
    _run_with(redis_client, "r1", "ab" * 32, Clock())
    stage.handle(_deletion("r1", deleted=False), delivery())
    assert gone.asked == []
    _delete(redis_client, stage, "r1")
    assert gone.asked == ["ab" * 32]


def test_a_projector_behind_the_deletion_defers_it(redis_client: redis.Redis) -> None:
    gone = _Gone()
    stage = RetentionStage(redis_client, gone, SIGNING_KEYS, catch_up_s=0.05)
    clock = Clock()
    _run_with(redis_client, "r1", "ab" * 32, clock)
    event = _deletion("r1")
    appended = EventLog(redis_client).append(event)

    def where(*, stopping: bool = False) -> Delivery:
        return delivery(stream=appended.stream, entry_id=appended.entry_id, stopping=stopping)

    with pytest.raises(ProjectorBehindError):  # nothing projected yet
        stage.handle(event, where())
    drain(Projector(redis_client, SIGNING_KEYS, config=FAST))
    (later,) = append_all(redis_client, [run_events("r2", clock)["artifact.pointer_set"]()])
    with pytest.raises(ProjectorBehindError):  # a pointer appended since, not yet applied
        stage.handle(event, where())
    projector = Projector(redis_client, SIGNING_KEYS, config=FAST)
    projector.consumer.ensure_groups()
    redis_client.xreadgroup(names.PROJECTOR_GROUP, "stalled", {later.stream: ">"})
    redis_client.set(names.checkpoint_key(names.PROJECTOR_GROUP, later.stream), later.entry_id)
    with pytest.raises(ProjectorBehindError):  # read by a projector that died before applying
        stage.handle(event, where(stopping=True))
    assert gone.asked == []
