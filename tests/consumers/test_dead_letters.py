"""A stage's dead letter ends its run or tokenizer `failed`; a replay of the letter revives it.

A real engine and the real consumer runtime; the handlers are stand-ins (a handler that always
raises, then one that works), since what is under test is the dead-letter path, not training.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator

import pytest
import redis

from consumers import Revivals, WorkerConfig
from consumers.dead_letters import (
    REQUESTS,
    REVIVED,
    UPLOAD_CAUSES,
    DeadLetterFailures,
    failure_message,
)
from consumers.history import DEAD_LETTERED, History
from events import (
    ArtifactPointerRevoked,
    ArtifactUploadRequested,
    Consumer,
    DeadLettered,
    Delivery,
    Envelope,
    Event,
    EventLog,
    FailurePayload,
    Handlers,
    PointerRevokedPayload,
    RevivalPayload,
    RuntimeConfig,
    TokenizerCompleted,
    TokenizerCompletedPayload,
    TokenizerFailed,
    TokenizerRequested,
    TokenizerRevived,
    TokenizerSpec,
    TrainingCancelRequested,
    TrainingCompleted,
    TrainingCompletedPayload,
    TrainingFailed,
    TrainingMetrics,
    TrainingRequested,
    TrainingRevived,
    TrainingSpec,
    UploadRequestedPayload,
    list_dead_letters,
    names,
    replay,
)
from tests.projections.factories import forged_pointer, signed_pointer
from tests.waiting import wait_until

FAST = RuntimeConfig(block_ms=20, visibility_timeout_ms=150, max_deliveries=2)
CORPUS = "c" * 64
METRICS = TrainingMetrics(steps=1, tokens=1, seconds=1.0, tokens_per_second=1.0)


def _request(run_id: str = "run-1") -> TrainingRequested:
    return TrainingRequested(correlation_id=run_id, payload=TrainingSpec(corpus_file_id=CORPUS))


def _tokenizer_request(tokenizer_id: str = "tok-1") -> TokenizerRequested:
    spec = TokenizerSpec(corpus_file_id=CORPUS)
    return TokenizerRequested(correlation_id=tokenizer_id, payload=spec)


def _completed(run_id: str = "run-1", node: str = "node-a") -> TrainingCompleted:
    payload = TrainingCompletedPayload(node_id=node, metrics=METRICS)
    return TrainingCompleted(correlation_id=run_id, payload=payload)


def _tokenizer_completed(tokenizer_id: str = "tok-1") -> TokenizerCompleted:
    payload = TokenizerCompletedPayload(node_id="node-a", vocab_size=300)
    return TokenizerCompleted(correlation_id=tokenizer_id, payload=payload)


class Handled:
    """Stand-in handlers: they raise while `broken`, else record what they handled."""

    def __init__(self) -> None:
        self.broken = True
        self.seen: list[str] = []
        self._lock = threading.Lock()

    def __call__(self, event: Envelope, delivery: Delivery) -> None:
        if self.broken:
            raise OSError(f"[Errno 5] cannot read /srv/node-a/{event.correlation_id}")
        with self._lock:
            self.seen.append(event.correlation_id)

    def handlers(self, *types: type[Envelope]) -> Handlers:
        handlers = Handlers()
        for kind in types:
            handlers.on(kind, self)
        return handlers


@pytest.fixture
def serve() -> Iterator[Callable[[Consumer], None]]:
    """Run consumers in threads; stop and join them after the test."""
    started: list[tuple[Consumer, threading.Thread]] = []

    def start(member: Consumer) -> None:
        thread = threading.Thread(target=member.run, daemon=True)
        thread.start()
        started.append((member, thread))

    yield start
    for member, thread in started:
        member.stop()
        thread.join(10)


def _consumer(
    client: redis.Redis,
    config: WorkerConfig,
    group: str,
    handled: Handled,
    acts_on: tuple[type[Envelope], ...],
) -> Consumer:
    return Consumer(
        client,
        streams=[names.TRAINING_STREAM],
        group=group,
        handlers=handled.handlers(*acts_on),
        config=FAST,
        on_dead_letter=DeadLetterFailures(client, config, acts_on),
    )


def _failures(log: EventLog, subject_id: str) -> list[TrainingFailed | TokenizerFailed]:
    return [
        e
        for e in History.read(log, subject_id).events
        if isinstance(e, (TrainingFailed, TokenizerFailed))
    ]


def test_a_dead_lettered_request_fails_its_run_and_tokenizer_and_a_replay_revives_them(
    redis_client: redis.Redis, worker_config: WorkerConfig, serve: Callable[[Consumer], None]
) -> None:
    log = EventLog(redis_client)
    request, tokenizer = log.append(_request()), log.append(_tokenizer_request())
    handled = Handled()
    serve(_consumer(redis_client, worker_config, names.TRAINING_GROUP, handled, REQUESTS))
    wait_until(
        lambda: len(_failures(log, "run-1")) == 1 and len(_failures(log, "tok-1")) == 1,
        what="both failed",
    )
    [failed] = _failures(log, "run-1")
    assert isinstance(failed, TrainingFailed)
    assert failed.payload.error_code == DEAD_LETTERED
    assert failed.payload.message == (
        "dead-lettered: group training gave up on training.requested after 3 deliveries "
        "(last error: OSError); `trainledger dlq list --group training` shows the error, and "
        "once its cause is fixed `trainledger dlq replay --stream stream:training --group "
        "training` tries again"
    )
    assert "/srv" not in failed.payload.message  # the node's paths stay in the dead letter
    letters = list_dead_letters(redis_client, names.TRAINING_STREAM, names.TRAINING_GROUP)
    [letter] = [each for each in letters if each.original_id == request.entry_id]
    assert "/srv/node-a/run-1" in letter.error
    assert History.read(log, "run-1").run_finished
    assert History.read(log, "tok-1").tokenizer_finished
    assert tokenizer.entry_id != request.entry_id

    handled.broken = False
    revive = Revivals(log)
    assert replay(redis_client, names.TRAINING_STREAM, names.TRAINING_GROUP, revive=revive) == 2

    wait_until(lambda: sorted(handled.seen) == ["run-1", "tok-1"], what="both handled again")
    run, tok = History.read(log, "run-1"), History.read(log, "tok-1")
    assert not run.run_finished
    assert not tok.tokenizer_finished
    [revived] = [e for e in run.events if isinstance(e, TrainingRevived)]
    assert (revived.payload.failure_id, revived.causation_id) == (
        failed.event_id,
        failed.causation_id,
    )
    assert revived.payload.message == REVIVED
    assert any(isinstance(e, TokenizerRevived) for e in tok.events)
    revive(letter)  # a replay that crashed before its transaction revives once only
    assert (
        len([e for e in History.read(log, "run-1").events if isinstance(e, TrainingRevived)]) == 1
    )


def test_a_dead_lettered_completion_fails_the_run_its_node_did_not_upload(
    redis_client: redis.Redis, worker_config: WorkerConfig, serve: Callable[[Consumer], None]
) -> None:
    log = EventLog(redis_client)
    for event in (_completed(), _tokenizer_completed(), _completed("run-2", node="node-b")):
        log.append(event)
    handled = Handled()
    group = names.upload_group("node-a")
    serve(_consumer(redis_client, worker_config, group, handled, UPLOAD_CAUSES))
    dlq = names.dlq_stream(names.TRAINING_STREAM, group)
    wait_until(lambda: redis_client.xlen(dlq) == 3, what="three dead letters")
    wait_until(lambda: len(_failures(log, "tok-1")) == 1, what="the tokenizer failed")
    [failed] = _failures(log, "run-1")
    assert failed.payload.message.startswith(
        "dead-lettered: group upload:node-a gave up on training.completed after 3 deliveries"
    )
    assert not _failures(log, "run-2")  # node-b's run: node-b uploads it, not this group

    handled.broken = False
    assert replay(redis_client, names.TRAINING_STREAM, group, revive=Revivals(log)) == 3
    wait_until(lambda: sorted(handled.seen) == ["run-1", "run-2", "tok-1"], what="handled again")
    assert History.read(log, "run-1").failure("run") is None
    assert History.read(log, "tok-1").failure("tokenizer") is None


def _letter(event: Event, group: str = names.TRAINING_GROUP, error: str = "E: x") -> DeadLettered:
    return DeadLettered(event, names.TRAINING_STREAM, group, "1-0", 3, error)


def test_only_a_run_left_in_limbo_is_failed(
    redis_client: redis.Redis, worker_config: WorkerConfig
) -> None:
    log = EventLog(redis_client)
    requests = DeadLetterFailures(redis_client, worker_config, REQUESTS)
    uploads = DeadLetterFailures(redis_client, worker_config, UPLOAD_CAUSES)
    cancel = TrainingCancelRequested(correlation_id="run-1")
    requests(_letter(cancel))  # not about a run's course
    requests(_letter(_completed()))  # not group training's to act on
    uploads(_letter(_request()))  # nor group upload's
    log.append(_completed("done"))
    requests(_letter(_request("done")))  # trained already: the request has nothing left to do
    log.append(_tokenizer_completed("tok-done"))
    requests(_letter(_tokenizer_request("tok-done")))
    uploads(_letter(_completed("no-completion")))  # its completion is not in the log
    settled = _completed("settled")
    log.append(settled)
    log.append(signed_pointer("run", {"correlation_id": "settled"}, CORPUS))
    uploads(_letter(settled))  # its pointer is set
    deleted = PointerRevokedPayload(subject="run", reason="gone", deleted=True)
    log.append(ArtifactPointerRevoked(correlation_id="gone", payload=deleted))
    requests(_letter(_request("gone")))
    for subject_id in ("run-1", "done", "tok-done", "no-completion", "settled", "gone"):
        assert not _failures(log, subject_id), subject_id

    log.append(_completed("again"))
    asked = ArtifactUploadRequested(
        correlation_id="again", payload=UploadRequestedPayload(subject="run")
    )
    uploads(_letter(asked, error="delivered 3 times without being acknowledged"))
    [failed] = _failures(log, "again")
    assert "after 3 deliveries (no handler ever returned)" in failed.payload.message
    uploads(_letter(asked))  # failed already: one failure
    assert len(_failures(log, "again")) == 1

    forged = _completed("forged")
    log.append(forged)
    log.append(forged_pointer("unsigned", "run", {"correlation_id": "forged"}, CORPUS))
    uploads(_letter(forged))  # a pointer the deployment did not sign settles nothing
    assert len(_failures(log, "forged")) == 1


def _fail(log: EventLog, cause: Envelope, code: str, subject_id: str = "run-1") -> TrainingFailed:
    failed = TrainingFailed(
        correlation_id=subject_id,
        causation_id=cause.event_id,
        payload=FailurePayload(message="m", error_code=code),
    )
    log.append(failed)
    return failed


def _replaying(redis_client: redis.Redis, event: Event | None) -> None:
    """Bury `event` (raw bytes when None) and replay it with the revivals."""
    dlq = names.dlq_stream(names.TRAINING_STREAM, names.TRAINING_GROUP)
    original = event.model_dump_json().encode() if event is not None else b"{not json"
    redis_client.xadd(dlq, {b"group": names.TRAINING_GROUP.encode(), b"original:event": original})
    revive = Revivals(EventLog(redis_client))
    assert replay(redis_client, names.TRAINING_STREAM, names.TRAINING_GROUP, revive=revive) == 1


def _revivals(log: EventLog, subject_id: str = "run-1") -> int:
    history = History.read(log, subject_id)
    return sum(isinstance(e, (TrainingRevived, TokenizerRevived)) for e in history.events)


def test_only_a_dead_lettered_failure_caused_by_the_letter_is_revived(
    redis_client: redis.Redis,
) -> None:
    log = EventLog(redis_client)
    _replaying(redis_client, None)  # not an event
    _replaying(redis_client, TrainingCancelRequested(correlation_id="run-1"))
    request = _request()
    _replaying(redis_client, request)  # no failure at all
    _fail(log, request, "corpus_invalid")
    _replaying(redis_client, request)  # a deterministic failure stays
    other = _request()
    _fail(log, other, DEAD_LETTERED)
    _replaying(redis_client, request)  # that dead letter was another event's
    assert _revivals(log) == 0
    assert History.read(log, "run-1").run_finished

    _fail(log, request, DEAD_LETTERED, "gone")
    deleted = PointerRevokedPayload(subject="run", reason="gone", deleted=True)
    log.append(ArtifactPointerRevoked(correlation_id="gone", payload=deleted))
    _replaying(redis_client, request.model_copy(update={"correlation_id": "gone"}))
    assert _revivals(log, "gone") == 0


def test_a_revival_withdraws_only_a_dead_lettered_failure(redis_client: redis.Redis) -> None:
    request = _request()
    failures = [
        TrainingFailed(
            correlation_id="run-1",
            causation_id=request.event_id,
            payload=FailurePayload(message="m", error_code=code),
        )
        for code in ("oom", DEAD_LETTERED)
    ]
    revivals = [
        TrainingRevived(
            correlation_id="run-1", payload=RevivalPayload(failure_id=f.event_id, message="r")
        )
        for f in failures
    ]
    assert History([failures[1], revivals[1]]).failure("run") is None
    assert not History([failures[1], revivals[1]]).run_finished
    assert History([failures[0], revivals[0]]).failure("run") == failures[0]
    assert History([failures[1], revivals[1], failures[0]]).run_finished
    tokenizer_failed = TokenizerFailed(
        correlation_id="tok-1", payload=FailurePayload(message="m", error_code=DEAD_LETTERED)
    )
    assert History([tokenizer_failed]).tokenizer_finished


def test_the_message_names_the_error_type_only() -> None:
    letter = _letter(_request(), error="ValueError: bad /srv/x")
    assert "(last error: ValueError)" in failure_message(letter)
    odd = _letter(_request(), error="not an error: at all")
    assert "(no handler ever returned)" in failure_message(odd)
