"""Dead letters of the stages: the run or tokenizer an entry was about ends `failed`, and a
replay of the dead letter revives it.

The consumer runtime dead-letters an entry that kept failing, whatever the cause: a Data Bank
outage longer than every retry, a bug, an input no stage foresaw. No stage sees that entry
again, so without more its run would stay `queued`, `running` or `trained` for good.

`DeadLetterFailures` is a stage group's dead-letter callback (the `Worker` gives one to group
`training` and one to `upload:<node>`). When the entry is a run's or a tokenizer's command or
lifecycle event that this group acts on, and that run or tokenizer is not finished, it appends
`training.failed` / `tokenizer.failed` with error code `dead_lettered` and a message saying
which group gave up, after how many deliveries, on what kind of error, and how to try again.
Every reader of the run is served that message, so it names only the error's type; the error
itself (which may name this node's paths) stays in the dead letter, for `trainledger dlq list`.

`Revivals` is what `trainledger dlq replay` runs for each letter before the entry goes back:
when the letter's event caused a `dead_lettered` failure that still stands, and the run was
not deleted since, it appends `training.revived` / `tokenizer.revived` naming that failure.
From then on the stages see the run as not finished (`History.failure`) and the read model
shows it `queued`, so the entry delivered again is taken up as if new. A failure with any
other code is the request's outcome and is never revived.
"""

from __future__ import annotations

import logging

import redis

from consumers.config import WorkerConfig
from consumers.history import DEAD_LETTERED, History, VerifiedHistory, record
from events import (
    ArtifactUploadRequested,
    DeadLetter,
    DeadLettered,
    DecodeError,
    Envelope,
    Event,
    EventLog,
    FailurePayload,
    RevivalPayload,
    Subject,
    TokenizerCompleted,
    TokenizerFailed,
    TokenizerRequested,
    TokenizerRevived,
    TrainingCompleted,
    TrainingFailed,
    TrainingRequested,
    TrainingRevived,
    decode,
)

log = logging.getLogger(__name__)

REQUESTS: tuple[type[Envelope], ...] = (TrainingRequested, TokenizerRequested)
"""What group `training` acts on."""
UPLOAD_CAUSES: tuple[type[Envelope], ...] = (
    TrainingCompleted,
    TokenizerCompleted,
    ArtifactUploadRequested,
)
"""What group `upload:<node>` acts on (for the completions of its own node)."""

REVIVED = "revived by `trainledger dlq replay`: waiting for a worker to try it again"
"""The status message of a revived run or tokenizer until a worker starts it."""


def subject_of(event: Event) -> Subject | None:
    """Whether `event` is about a run or a tokenizer that its dead letter leaves in limbo."""
    match event:
        case TrainingRequested() | TrainingCompleted():
            return "run"
        case TokenizerRequested() | TokenizerCompleted():
            return "tokenizer"
        case ArtifactUploadRequested():
            return event.payload.subject
        case _:
            return None


class DeadLetterFailures:
    """A stage group's dead-letter callback: fail the run or tokenizer left in limbo."""

    def __init__(
        self, client: redis.Redis, config: WorkerConfig, acts_on: tuple[type[Envelope], ...]
    ) -> None:
        self._log = EventLog(client, config.durability)
        self._node_id = config.node_id
        self._keys = config.signing_keys
        self._acts_on = acts_on

    def __call__(self, letter: DeadLettered) -> None:
        """Append the failure, unless the entry was not this group's to act on or its run or
        tokenizer is finished already."""
        event, subject = letter.event, subject_of(letter.event)
        if subject is None or not isinstance(event, self._acts_on):
            return
        history = History.read(self._log, event.correlation_id).verified(self._keys)
        if not self._in_limbo(event, subject, history):
            return
        payload = FailurePayload(message=failure_message(letter), error_code=DEAD_LETTERED)
        kind = TrainingFailed if subject == "run" else TokenizerFailed
        failed = kind(
            correlation_id=event.correlation_id, causation_id=event.event_id, payload=payload
        )
        record(self._log, event, failed, once_per=f"{DEAD_LETTERED}:{letter.entry_id}")
        log.warning(
            "%s failed: %s",
            subject,
            payload.message,
            extra={
                "category": "dead_letter",
                "event": "dead_letter_failed",
                "run_id" if subject == "run" else "tokenizer_id": event.correlation_id,
                "error_code": DEAD_LETTERED,
            },
        )

    def _in_limbo(self, event: Event, subject: Subject, history: VerifiedHistory) -> bool:
        """Nothing but this entry would have ended the run or tokenizer."""
        if history.deleted or history.failure(subject) is not None:
            return False
        if isinstance(event, TrainingRequested):
            return not history.run_finished
        if isinstance(event, TokenizerRequested):
            return not history.tokenizer_finished
        completion = history.completion(subject)  # an upload cause: only its node uploads
        return (
            completion is not None
            and completion.payload.node_id == self._node_id
            and not history.upload_settled(event.event_id)
        )


def failure_message(letter: DeadLettered) -> str:
    """What a reader of the run learns: who gave up, after how much, on what, and what next."""
    kind, colon, _ = letter.error.partition(": ")
    why = f"last error: {kind}" if colon and kind.isidentifier() else "no handler ever returned"
    return (
        f"dead-lettered: group {letter.group} gave up on {letter.event.type} after "
        f"{letter.attempts} deliveries ({why}); `trainledger dlq list --group {letter.group}` "
        f"shows the error, and once its cause is fixed `trainledger dlq replay --stream "
        f"{letter.stream} --group {letter.group}` tries again"
    )


class Revivals:
    """`dlq replay`'s `revive`: withdraw the `dead_lettered` failure a letter's event caused."""

    def __init__(self, log: EventLog) -> None:
        self._log = log

    def __call__(self, letter: DeadLetter) -> None:
        """Append the revival, once per failure; nothing for a letter that is not an event,
        or whose run stands failed for another reason, or was deleted."""
        try:
            event = decode(letter.original_fields)
        except DecodeError:
            return
        subject = subject_of(event)
        if subject is None:
            return
        history = History.read(self._log, event.correlation_id)
        failure = history.failure(subject)
        if (
            failure is None
            or failure.payload.error_code != DEAD_LETTERED
            or failure.causation_id != event.event_id
            or history.deleted
        ):
            return
        kind = TrainingRevived if subject == "run" else TokenizerRevived
        revived = kind(
            correlation_id=event.correlation_id,
            causation_id=event.event_id,
            payload=RevivalPayload(failure_id=failure.event_id, message=REVIVED),
        )
        self._log.append(revived, idempotency_key=f"{failure.event_id}:{revived.type}")
