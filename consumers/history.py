"""The stages' side of the log: read what happened to a run or tokenizer, record what they did.

The stages decide from the log, not from memory. Reading the correlation index answers
redeliveries and restarts: a request whose run already finished, a completion whose artifact
already has a pointer, a cancel requested while the run waited in the queue. The stages may not
import `projections`, so the few facts they need are folded here. Every event a stage appends
goes under an idempotency key derived from the event that caused it, so a handler that runs
again after a crash appends nothing twice.

A failure ends a run or tokenizer, except a `dead_lettered` one (a stage's group gave up on its
entry, see `consumers.dead_letters`) that a revival withdrew since: `trainledger dlq replay`
revives it before delivering the entry again, so the stages take it up as if new. A failure
with any other code is the outcome of the request and stays.

Pointers count only when signed under the worker's keys: anyone who can write to the engine can
append an `artifact.pointer_set`, and a forged one would pick the file a deletion frees, the
tokenizer a run downloads, or settle an upload that never happened. So the facts about pointers
are asked of `History.verified(keys)`, which drops a pointer that does not verify (with a
warning naming its code) as if it were not in the log.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

from events import (
    Appended,
    ArtifactPointer,
    ArtifactPointerRevoked,
    ArtifactPointerSet,
    ArtifactUploadDeferred,
    ArtifactUploaded,
    ArtifactUploadFailed,
    DecodeError,
    Envelope,
    Event,
    EventLog,
    SigningKeys,
    Subject,
    TokenizerCompleted,
    TokenizerFailed,
    TokenizerRevived,
    TrainingCancelled,
    TrainingCancelRequested,
    TrainingCompleted,
    TrainingFailed,
    TrainingRevived,
    TrainingStarted,
)

logger = logging.getLogger(__name__)
"""Named so, not `log`: here `log` is the event log the functions read."""

DEAD_LETTERED = "dead_lettered"
"""The error code of the failure appended when a stage's group dead-letters a run's or a
tokenizer's entry: the one failure a revival can withdraw."""
RUN_FINISHED: tuple[type[Envelope], ...] = (TrainingCompleted, TrainingCancelled)
"""After one of these (or a failure that stands) a `training.requested` has nothing left to do."""
TOKENIZER_FINISHED: tuple[type[Envelope], ...] = (TokenizerCompleted,)
"""After this (or a failure that stands) a `tokenizer.requested` has nothing left to do."""
UPLOAD_COURSE: tuple[type[Envelope], ...] = (
    ArtifactUploadDeferred,
    ArtifactUploaded,
    ArtifactUploadFailed,
    ArtifactPointerSet,
    ArtifactPointerRevoked,
)
"""What an upload attempt leaves in the log, in the order it can happen."""


@dataclass(frozen=True, slots=True)
class History:
    """The decodable events about one correlation id, in append order."""

    events: Sequence[Event]

    @classmethod
    def read(cls, log: EventLog, correlation_id: str) -> History:
        """Read every event about `correlation_id`; an undecodable entry is skipped (it is the
        dead-letter machinery's business, not a reason to stall a run)."""
        found: list[Event] = []
        for entry in log.read_correlation(correlation_id):
            try:
                found.append(entry.event())
            except DecodeError:
                continue
        return cls(found)

    def has(self, *types: type[Envelope]) -> bool:
        """True when an event of one of `types` is in the history."""
        return any(isinstance(event, types) for event in self.events)

    @property
    def run_finished(self) -> bool:
        """Training completed, was cancelled, or failed (and was not revived since)."""
        return self.has(*RUN_FINISHED) or self.failure("run") is not None

    @property
    def tokenizer_finished(self) -> bool:
        """The tokenizer completed, or failed (and was not revived since)."""
        return self.has(*TOKENIZER_FINISHED) or self.failure("tokenizer") is not None

    @property
    def deleted(self) -> bool:
        """The run was deleted: nothing may revive it."""
        return any(isinstance(e, ArtifactPointerRevoked) and e.payload.deleted for e in self.events)

    def failure(self, subject: Subject) -> TrainingFailed | TokenizerFailed | None:
        """The last failure of the run or tokenizer that stands: not a `dead_lettered` one
        that a revival withdrew."""
        kind = TrainingFailed if subject == "run" else TokenizerFailed
        revived = {
            e.payload.failure_id
            for e in self.events
            if isinstance(e, (TrainingRevived, TokenizerRevived))
        }
        standing = [
            e
            for e in self.events
            if isinstance(e, kind)
            and not (e.event_id in revived and e.payload.error_code == DEAD_LETTERED)
        ]
        return standing[-1] if standing else None

    @property
    def cancel_requested(self) -> bool:
        """A client asked to cancel the run."""
        return self.has(TrainingCancelRequested)

    def caused_by(self, cause_id: str, *types: type[Envelope]) -> list[Event]:
        """The events of `types` that `cause_id` caused, in append order."""
        return [e for e in self.events if isinstance(e, types) and e.causation_id == cause_id]

    def deferrals(self, cause_id: str) -> list[ArtifactUploadDeferred]:
        """The transient failures of the upload `cause_id` asked for, oldest first."""
        return [
            e
            for e in self.events
            if isinstance(e, ArtifactUploadDeferred) and e.causation_id == cause_id
        ]

    def completion(self, subject: Subject) -> TrainingCompleted | TokenizerCompleted | None:
        """The completion of the run or tokenizer: it names the node that holds the files."""
        kind = TrainingCompleted if subject == "run" else TokenizerCompleted
        return next((e for e in self.events if isinstance(e, kind)), None)

    def starts(self) -> int:
        """How many times training started (on any node)."""
        return sum(1 for e in self.events if isinstance(e, TrainingStarted))

    def verified(self, keys: SigningKeys) -> VerifiedHistory:
        """This history without the pointers `keys` did not sign (each logged as a warning
        with its refusal code): the one way to the facts about pointers."""
        return VerifiedHistory(
            [e for e in self.events if not isinstance(e, ArtifactPointerSet) or _signed(e, keys)]
        )


@dataclass(frozen=True, slots=True)
class VerifiedHistory(History):
    """A history whose every pointer verified under the worker's keys: only it answers what a
    pointer decides (the file in force, the file a deletion frees, whether an upload is done)."""

    def upload_settled(self, cause_id: str) -> bool:
        """Nothing is left to upload for `cause_id`: a pointer was set (by any cause, even if
        revoked since), or the upload it asked for failed."""
        return self.has(ArtifactPointerSet) or bool(self.caused_by(cause_id, ArtifactUploadFailed))

    def upload_failed_before(self, request_id: str) -> bool:
        """True when the last upload attempt other than `request_id`'s failed for good: only
        then does a request for a new upload have something to do (none is pending, and no
        pointer was set, revoked or not)."""
        course = [
            e for e in self.events if isinstance(e, UPLOAD_COURSE) and e.causation_id != request_id
        ]
        return bool(course) and isinstance(course[-1], ArtifactUploadFailed)

    def last_file_id(self) -> str | None:
        """The file id of the last pointer ever set, revoked or not (what a deletion frees)."""
        sets = [e for e in self.events if isinstance(e, ArtifactPointerSet)]
        return sets[-1].payload.pointer.file_id if sets else None

    def pointer(self) -> ArtifactPointer | None:
        """The artifact pointer in force: the last one set, unless a revocation followed it."""
        current: ArtifactPointer | None = None
        for event in self.events:
            if isinstance(event, ArtifactPointerSet):
                current = event.payload.pointer
            elif isinstance(event, ArtifactPointerRevoked):
                current = None
        return current


def _signed(event: ArtifactPointerSet, keys: SigningKeys) -> bool:
    """True when `keys` made the pointer's signature; a warning when not."""
    return event.refusal(keys, logger, "worker", "ignored") is None


def record(log: EventLog, cause: Envelope, event: Event, *, once_per: str = "") -> Appended:
    """Append `event`, caused by `cause`, once: its key is the cause's id and the event's type
    (plus `once_per`, for an event that may rightly happen again, like a second start). No
    fingerprint: a redo of the cause may word its event differently (another node, another
    time); it is the same fact, so the first recorded event stands."""
    key = f"{cause.event_id}:{event.type}" + (f":{once_per}" if once_per else "")
    return log.append(event, idempotency_key=key)
