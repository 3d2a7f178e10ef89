"""The stages' side of the log: read what happened to a run or tokenizer, record what they did.

The stages decide from the log, not from memory. Reading the correlation index answers
redeliveries and restarts: a request whose run already finished, a completion whose artifact
already has a pointer, a cancel requested while the run waited in the queue. The stages may not
import `projections`, so the few facts they need are folded here. Every event a stage appends
goes under an idempotency key derived from the event that caused it, so a handler that runs
again after a crash appends nothing twice.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from events import (
    Appended,
    ArtifactPointer,
    ArtifactPointerRevoked,
    ArtifactPointerSet,
    ArtifactUploadFailed,
    DecodeError,
    Envelope,
    Event,
    EventLog,
    TokenizerCompleted,
    TokenizerFailed,
    TrainingCancelled,
    TrainingCancelRequested,
    TrainingCompleted,
    TrainingFailed,
)

RUN_FINISHED: tuple[type[Envelope], ...] = (TrainingCompleted, TrainingFailed, TrainingCancelled)
"""After one of these a `training.requested` has nothing left to do."""
TOKENIZER_FINISHED: tuple[type[Envelope], ...] = (TokenizerCompleted, TokenizerFailed)
"""After one of these a `tokenizer.requested` has nothing left to do."""


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
        """Training completed, failed or was cancelled."""
        return self.has(*RUN_FINISHED)

    @property
    def tokenizer_finished(self) -> bool:
        """The tokenizer completed or failed."""
        return self.has(*TOKENIZER_FINISHED)

    @property
    def cancel_requested(self) -> bool:
        """A client asked to cancel the run."""
        return self.has(TrainingCancelRequested)

    @property
    def upload_settled(self) -> bool:
        """The upload already ended: a pointer was set (even if revoked since) or it failed."""
        return self.has(ArtifactPointerSet, ArtifactUploadFailed)

    def pointer(self) -> ArtifactPointer | None:
        """The artifact pointer in force: the last one set, unless a revocation followed it."""
        current: ArtifactPointer | None = None
        for event in self.events:
            if isinstance(event, ArtifactPointerSet):
                current = event.payload.pointer
            elif isinstance(event, ArtifactPointerRevoked):
                current = None
        return current


def record(log: EventLog, cause: Envelope, event: Event, *, once_per: str = "") -> Appended:
    """Append `event`, caused by `cause`, once: its key is the cause's id and the event's type
    (plus `once_per`, for an event that may rightly happen again, like a second start)."""
    key = f"{cause.event_id}:{event.type}" + (f":{once_per}" if once_per else "")
    return log.append(event, idempotency_key=key)
