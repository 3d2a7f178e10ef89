"""The projection: a pure function from one event to the fact it establishes.

The read model stores facts, not transitions. Each run or tokenizer record holds one slot per
fact group (requested, started, trained, ...); an event fills exactly one slot. A slot keeps
the value of the greatest `(at, event_id)` that ever reached it (last writer wins by the
event's own time, ties broken by its id), which is commutative, associative and idempotent:
any interleaving of the three streams, any duplicate (a redelivery, a reclaim, a dead-letter
replay under a new entry id) converges on the same record. Status is derived from the slots
(see `projections.model`), never stored as a transition.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Literal, NamedTuple

from events import (
    ArtifactPointerSet,
    ArtifactUploaded,
    ArtifactUploadFailed,
    Event,
    TokenizerCompleted,
    TokenizerFailed,
    TokenizerRequested,
    TrainingCancelled,
    TrainingCancelRequested,
    TrainingCompleted,
    TrainingFailed,
    TrainingRequested,
    TrainingStarted,
)

Kind = Literal["run", "tokenizer"]
"""Which record an event is about: a run or a tokenizer."""

RUN_GROUPS: dict[str, tuple[str, ...]] = {
    "requested": (),
    "started": ("started_node",),
    "trained": ("trained_node", "metrics"),
    "failed": ("failure", "error_code"),
    "cancel_requested": ("cancel_reason",),
    "cancelled": ("cancelled_node",),
    "uploaded": ("uploaded_node",),
    "upload_failed": ("upload_failure",),
    "pointer": ("file_id", "revoked"),
}
"""A run's fact groups and the value fields each owns (besides `<group>_at`/`_event`)."""

TOKENIZER_GROUPS: dict[str, tuple[str, ...]] = {
    "requested": (),
    "trained": ("trained_node", "vocab_size"),
    "failed": ("failure", "error_code"),
    "uploaded": ("uploaded_node",),
    "upload_failed": ("upload_failure",),
    "pointer": ("file_id", "revoked"),
}
"""A tokenizer's fact groups."""

GROUPS: dict[Kind, dict[str, tuple[str, ...]]] = {"run": RUN_GROUPS, "tokenizer": TOKENIZER_GROUPS}

UPLOAD_FAILED = "artifact upload failed"
POINTER_REVOKED = "artifact pointer revoked"
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICRO = timedelta(microseconds=1)


class Fact(NamedTuple):
    """One slot write: `values` align with the group's fields; None clears that field.

    `score` (runs' `requested` only) is the run's place in the newest-first index, written
    together with the slot so the index follows the winning request. A named tuple: a
    rebuild makes one per event.
    """

    kind: Kind
    subject: str
    group: str
    at: str
    event_id: str
    values: tuple[str | None, ...] = ()
    score: int | None = None


def utc(moment: datetime) -> datetime:
    """`moment` in UTC; naive times are taken as UTC, and an offset that would push the
    date out of range is ignored, so every event has a time (the projection is total)."""
    if moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    try:
        return moment.astimezone(UTC)
    except OverflowError:
        return moment.replace(tzinfo=UTC)


def format_at(moment: datetime) -> str:
    """Fixed-width UTC ISO time: its string order is its time order (the engine compares it)."""
    offset = moment.utcoffset()
    if offset:  # most events are already in UTC: skip the conversion
        moment = utc(moment)
    return moment.replace(tzinfo=None).isoformat(timespec="microseconds") + "Z"


def micros(moment: datetime) -> int:
    """Microseconds since the epoch: the run index score (exact in a double until 2255)."""
    return (utc(moment) - _EPOCH) // _MICRO


def _fact(
    event: Event,
    kind: Kind,
    group: str,
    values: tuple[str | None, ...] = (),
    score: int | None = None,
) -> Fact:
    at = format_at(event.occurred_at)
    return Fact(kind, event.correlation_id, group, at, event.event_id, values, score)


def project(event: Event) -> Fact:
    """The fact `event` establishes: the one projection the projector and rebuild share.

    Every event type fills exactly one slot of one record, so one script call applies an
    event and advances the checkpoint atomically."""
    match event:
        case TrainingRequested():
            return _fact(event, "run", "requested", score=micros(event.occurred_at))
        case TrainingStarted():
            return _fact(event, "run", "started", (event.payload.node_id,))
        case TrainingCompleted():
            metrics = event.payload.metrics.model_dump_json()
            return _fact(event, "run", "trained", (event.payload.node_id, metrics))
        case TrainingFailed() | TokenizerFailed():
            kind: Kind = "run" if isinstance(event, TrainingFailed) else "tokenizer"
            failure = (event.payload.message, event.payload.error_code)
            return _fact(event, kind, "failed", failure)
        case TrainingCancelRequested():
            return _fact(event, "run", "cancel_requested", (event.payload.reason,))
        case TrainingCancelled():
            return _fact(event, "run", "cancelled", (event.payload.node_id,))
        case TokenizerRequested():
            return _fact(event, "tokenizer", "requested")
        case TokenizerCompleted():
            trained = (event.payload.node_id, str(event.payload.vocab_size))
            return _fact(event, "tokenizer", "trained", trained)
        case ArtifactUploaded():
            return _fact(event, event.payload.subject, "uploaded", (event.payload.node_id,))
        case ArtifactUploadFailed():
            # The status message is exactly the design's; the reason stays in the event.
            return _fact(event, event.payload.subject, "upload_failed", (UPLOAD_FAILED,))
        case ArtifactPointerSet():
            pointer = (event.payload.pointer.file_id, None)
            return _fact(event, event.payload.subject, "pointer", pointer)
        case _:  # the one type left: artifact.pointer_revoked
            revoked = (None, f"{POINTER_REVOKED}: {event.payload.reason}")
            return _fact(event, event.payload.subject, "pointer", revoked)
