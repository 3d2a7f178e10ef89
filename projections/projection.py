"""The projection: from one event to the fact it establishes, and from facts to a record.

The read model stores facts, not transitions. Each run or tokenizer record holds one slot per
fact group (requested, started, trained, ...); an event fills exactly one slot. A slot keeps
the value of the greatest `(at, event_id)` that ever reached it (last writer wins by the
event's own time, ties broken by its id), which is commutative, associative and idempotent:
any interleaving of the three streams, any duplicate (a redelivery, a reclaim, a dead-letter
replay under a new entry id) converges on the same record.

A record is a hash of fact slots (`<group>_at`, `<group>_event` and the group's values) plus
three derived fields: `status`, `message`, `node`. Status is derived from the slots, never
stored as a transition; derivation is a precedence over them, the first rule whose fact is
present wins:

    run:       deleted > cancelled > failed (training) > failed (upload) > completed (pointer)
               > uploading (uploaded) > uploading (deferred or requested) > trained
               > queued (revived, unless started since) > running (restarted, started)
               > queued

A first start fills `started`; a later attempt (a redelivery after a crash) fills `restarted`
with its attempt and the checkpoint step it resumed from, so `started_at` stays the first
start.
    tokenizer: failed > failed (upload) > completed > uploading > trained > queued (revived)
               > queued

A revival (`training.revived`, `tokenizer.revived`: `trainledger dlq replay` withdrew a
`dead_lettered` failure) fills the `failed` slot with no failure and its `revived` message, so
the later of a failure and a revival decides, like any slot. A revived run is `queued` again
(with that message) until a start newer than the revival makes it `running`: that one rule
compares times (`StatusRule.superseded_by`), since a run dead-lettered while training had
started before it was revived.

The upload's own course (`artifact.upload_failed`, `artifact.upload_deferred`,
`artifact.upload_requested`) shares one slot, `upload`: the latest of them decides, so a
failed upload that is requested again is `uploading` again, and a deferral's message (the
last error, the next attempt) shows while the upload waits for Data Bank.

The pointer slot keeps, beside the file id, the size and the signature the worker gave it
(`POINTER_FIELDS`): the projector only projects a pointer whose signature verifies
(`projections.trust`), and inference verifies it again from the record.

`completed` follows the pointer slot, so a revoked pointer leaves the run completed with the
revocation as its message (and no artifact key). A deletion (`artifact.pointer_revoked` with
`deleted`) fills a slot of its own that no event clears: a deleted run stays deleted, leaves
the run index and has no artifact key, whatever arrives after it; its hash keeps the file id
it pointed to, which the retention stage deletes from Data Bank.

A reproduction is two facts: `requested` holds the run it reproduces (`reproduces`), and
`trained` how its weights compared (`reproduction`, JSON), as its `training.completed` says.

`progress` holds the latest `training.progress`: step, total, the last losses and the loss
curves (`curves`, compact JSON); each report carries the whole bounded history, so the latest
report is the history. Status queries read the hash without `curves`
(`projections.queries`), so lists stay small. The rules are data: the engine-side apply
script (`projections.store`) embeds them, and `MemoryModel` (rebuild, tests and the API's
cancel check) evaluates the same data, so the two cannot drift apart silently.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Literal, NamedTuple

from events import (
    ArtifactPointerSet,
    ArtifactUploadDeferred,
    ArtifactUploaded,
    ArtifactUploadFailed,
    ArtifactUploadRequested,
    Event,
    MetricPoint,
    ModelAliasRemoved,
    ModelAliasSet,
    TokenizerCompleted,
    TokenizerFailed,
    TokenizerRequested,
    TokenizerRevived,
    TrainingCancelled,
    TrainingCancelRequested,
    TrainingCompleted,
    TrainingFailed,
    TrainingProgressed,
    TrainingRequested,
    TrainingRevived,
    TrainingStarted,
)

Kind = Literal["run", "tokenizer", "alias"]
"""Which record an event is about: a run, a tokenizer, or a model's alias (`model@alias`)."""

POINTER_FIELDS = ("file_id", "pointer_size", "key_id", "signature", "revoked")
"""A pointer slot: the file, with the size and signature its readers verify again (inference
does, since anyone who can write the engine can write the read model), or a revocation."""

RUN_GROUPS: dict[str, tuple[str, ...]] = {
    "requested": ("name", "tags", "reproduces"),
    "started": ("started_node",),
    "restarted": ("restarted_node", "attempt", "resumed_at_step"),
    "progress": ("step", "total_steps", "train_loss", "val_loss", "curves"),
    "trained": ("trained_node", "metrics", "reproduction"),
    "failed": ("failure", "error_code", "revived"),
    "cancel_requested": ("cancel_reason",),
    "cancelled": ("cancelled_node",),
    "uploaded": ("uploaded_node", "size"),
    "upload": ("upload_failure", "upload_progress"),
    "pointer": POINTER_FIELDS,
    "deleted": ("deleted_reason",),
}
"""A run's fact groups and the value fields each owns (besides `<group>_at`/`_event`)."""

TOKENIZER_GROUPS: dict[str, tuple[str, ...]] = {
    "requested": (),
    "trained": ("trained_node", "vocab_size"),
    "failed": ("failure", "error_code", "revived"),
    "uploaded": ("uploaded_node", "size"),
    "upload": ("upload_failure", "upload_progress"),
    "pointer": POINTER_FIELDS,
}
"""A tokenizer's fact groups."""

ALIAS_GROUPS: dict[str, tuple[str, ...]] = {"target": ("model", "alias", "run_id")}
"""An alias's one fact group: the run it serves (cleared by a removal)."""

GROUPS: dict[Kind, dict[str, tuple[str, ...]]] = {
    "run": RUN_GROUPS,
    "tokenizer": TOKENIZER_GROUPS,
    "alias": ALIAS_GROUPS,
}
POINTER: dict[Kind, str] = {"run": "file_id", "tokenizer": "file_id", "alias": "run_id"}
"""The field a record's pointer key holds: an artifact's file id, or the run an alias serves."""

UPLOAD_FAILED = "artifact upload failed"
UPLOAD_REQUESTED = "artifact upload requested again"
POINTER_REVOKED = "artifact pointer revoked"
DELETED = "deleted"
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
            spec = event.payload
            tags = json.dumps(spec.tags, separators=(",", ":")) if spec.tags else None
            named = (spec.name, tags, event.reproduces)
            return _fact(event, "run", "requested", named, score=micros(event.occurred_at))
        case TrainingStarted():
            started = event.payload
            if started.attempt == 1:  # `started_at` stays the first start
                return _fact(event, "run", "started", (started.node_id,))
            step = None if started.resumed_at_step is None else str(started.resumed_at_step)
            restarted = (started.node_id, str(started.attempt), step)
            return _fact(event, "run", "restarted", restarted)
        case TrainingProgressed():
            return _fact(event, "run", "progress", progress_values(event))
        case TrainingCompleted():
            done = event.payload
            compared = done.reproduction.model_dump_json() if done.reproduction else None
            outcome = (done.node_id, done.metrics.model_dump_json(), compared)
            return _fact(event, "run", "trained", outcome)
        case TrainingFailed() | TokenizerFailed():
            kind: Kind = "run" if isinstance(event, TrainingFailed) else "tokenizer"
            failure = (event.payload.message, event.payload.error_code, None)
            return _fact(event, kind, "failed", failure)
        case TrainingRevived() | TokenizerRevived():
            revived: Kind = "run" if isinstance(event, TrainingRevived) else "tokenizer"
            return _fact(event, revived, "failed", (None, None, event.payload.message))
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
            uploaded = (event.payload.node_id, str(event.payload.size))
            return _fact(event, event.payload.subject, "uploaded", uploaded)
        case ArtifactUploadFailed():
            # The status message is exactly the design's; the reason stays in the event.
            return _fact(event, event.payload.subject, "upload", (UPLOAD_FAILED, None))
        case ArtifactUploadDeferred():
            progress = deferral_message(event)
            return _fact(event, event.payload.subject, "upload", (None, progress))
        case ArtifactUploadRequested():
            return _fact(event, event.payload.subject, "upload", (None, UPLOAD_REQUESTED))
        case ModelAliasSet() | ModelAliasRemoved():
            return alias_fact(event)
        case ArtifactPointerSet():
            return _fact(event, event.payload.subject, "pointer", pointer_values(event))
        case _:  # the one type left: artifact.pointer_revoked
            if event.payload.deleted and event.payload.subject == "run":
                return _fact(event, "run", "deleted", (f"{DELETED}: {event.payload.reason}",))
            revoked = (None, None, None, None, f"{POINTER_REVOKED}: {event.payload.reason}")
            return _fact(event, event.payload.subject, "pointer", revoked)


def pointer_values(event: ArtifactPointerSet) -> tuple[str | None, ...]:
    """The `pointer` slot of a pointer set: its file, size and signature."""
    payload, signature = event.payload, event.payload.signature
    return (
        payload.pointer.file_id,
        None if payload.size is None else str(payload.size),
        None if signature is None else signature.key_id,
        None if signature is None else signature.hmac,
        None,
    )


def alias_fact(event: ModelAliasSet | ModelAliasRemoved) -> Fact:
    """The target slot of `model@alias`: the run it serves, or none after a removal."""
    model, alias = event.payload.model, event.payload.alias
    run_id = event.payload.run_id if isinstance(event, ModelAliasSet) else None
    at = format_at(event.occurred_at)
    return Fact("alias", f"{model}@{alias}", "target", at, event.event_id, (model, alias, run_id))


def _last(points: list[MetricPoint]) -> str | None:
    return repr(points[-1].loss) if points else None


def progress_values(event: TrainingProgressed) -> tuple[str | None, ...]:
    """The `progress` slot of a report: step, total, last losses and the compact curves."""
    report = event.payload
    curves = {
        "train": [[point.step, point.loss] for point in report.train],
        "validation": [[point.step, point.loss] for point in report.validation],
    }
    return (
        str(report.step),
        str(report.total_steps),
        _last(report.train),
        _last(report.validation),
        json.dumps(curves, separators=(",", ":")),
    )


def deferral_message(event: ArtifactUploadDeferred) -> str:
    """The status message of a deferred upload: its last error and its next attempt."""
    payload = event.payload
    return (
        f"artifact upload waiting for Data Bank (attempt {payload.attempt} failed: "
        f"{payload.error}); next attempt at about {format_at(payload.next_attempt_at)}"
    )


Slot = tuple[str, str, tuple[str | None, ...]]
"""(at, event_id, values) of the winning write of one fact group."""


@dataclass(frozen=True)
class StatusRule:
    """`status` holds when `fact` is present, unless a field of `superseded_by` (a slot's time)
    is later than the field `at` (the time of `fact`'s slot); its message is the field
    `message` (or none)."""

    status: str
    fact: str
    message: str = ""
    at: str = ""
    superseded_by: tuple[str, ...] = ()

    def holds(self, fields: dict[str, str]) -> bool:
        """True when the rule decides the status of a record with `fields`."""
        if self.fact not in fields:
            return False
        since = fields.get(self.at, "")
        return all(fields.get(name, "") <= since for name in self.superseded_by)


@dataclass(frozen=True)
class Rules:
    """How one kind of record derives `status` (first rule wins), and `node` (first present)."""

    status: tuple[StatusRule, ...]
    node: tuple[str, ...]
    fallback: str = "queued"


RULES: dict[Kind, Rules] = {
    "run": Rules(
        status=(
            StatusRule("deleted", "deleted_at", "deleted_reason"),
            StatusRule("cancelled", "cancelled_at", "cancel_reason"),
            StatusRule("failed", "failure", "failure"),
            StatusRule("failed", "upload_failure", "upload_failure"),
            StatusRule("completed", "pointer_at", "revoked"),
            StatusRule("uploading", "uploaded_at"),
            StatusRule("uploading", "upload_progress", "upload_progress"),
            StatusRule("trained", "trained_at"),
            StatusRule("queued", "revived", "revived", "failed_at", ("restarted_at", "started_at")),
            StatusRule("running", "restarted_at"),
            StatusRule("running", "started_at"),
            StatusRule("queued", "requested_at"),
        ),
        node=("trained_node", "restarted_node", "started_node", "cancelled_node"),
    ),
    "tokenizer": Rules(
        status=(
            StatusRule("failed", "failure", "failure"),
            StatusRule("failed", "upload_failure", "upload_failure"),
            StatusRule("completed", "pointer_at", "revoked"),
            StatusRule("uploading", "uploaded_at"),
            StatusRule("uploading", "upload_progress", "upload_progress"),
            StatusRule("trained", "trained_at"),
            StatusRule("queued", "revived", "revived"),
            StatusRule("queued", "requested_at"),
        ),
        node=("trained_node",),
    ),
    "alias": Rules(status=(StatusRule("active", "run_id"),), node=(), fallback="removed"),
}


def derive(kind: Kind, fields: dict[str, str]) -> dict[str, str]:
    """The derived fields (`status`, and `message`/`node` when there is one) of a record."""
    rules = RULES[kind]
    derived = {"status": rules.fallback}
    for rule in rules.status:
        if rule.holds(fields):
            derived["status"] = rule.status
            if rule.message and rule.message in fields:
                derived["message"] = fields[rule.message]
            break
    node = next((fields[name] for name in rules.node if name in fields), None)
    if node is not None:
        derived["node"] = node
    return derived


class Record:
    """One run or tokenizer in memory: only the winning slots, so a replay's memory follows
    the number of records, not of events."""

    __slots__ = ("score", "slots")

    def __init__(self) -> None:
        self.slots: dict[str, Slot] = {}
        self.score: int | None = None

    def apply(self, fact: Fact) -> bool:
        """Keep `fact` if it beats the slot's current write; True when it did."""
        current = self.slots.get(fact.group)
        if current is not None and (fact.at, fact.event_id) <= current[:2]:
            return False
        self.slots[fact.group] = (fact.at, fact.event_id, fact.values)
        if fact.score is not None:
            self.score = fact.score
        return True

    def fields(self, kind: Kind) -> dict[str, str]:
        """The record's hash exactly as the engine-side apply script leaves it."""
        fields: dict[str, str] = {}
        for group, (at, event_id, values) in self.slots.items():
            fields[f"{group}_at"] = at
            fields[f"{group}_event"] = event_id
            for name, value in zip(GROUPS[kind][group], values, strict=True):
                if value is not None:
                    fields[name] = value
        fields.update(derive(kind, fields))
        return fields

    def file_id(self) -> str | None:
        """The artifact's file id while the pointer slot holds a set (not revoked) pointer
        and the record is not deleted."""
        pointer = self.slots.get("pointer")
        if pointer is None or "deleted" in self.slots:
            return None
        return pointer[2][0]

    def pointer(self, kind: Kind) -> str | None:
        """What the record's pointer key should hold: the artifact's file id, or for an
        alias the run it serves."""
        if kind != "alias":
            return self.file_id()
        target = self.slots.get("target")
        return target[2][2] if target is not None else None

    def index_score(self) -> int | None:
        """The record's score in its index; None when it has none or is deleted."""
        return None if "deleted" in self.slots else self.score


class MemoryModel:
    """The read model folded in memory from facts: what the engine should hold."""

    def __init__(self) -> None:
        self.records: dict[Kind, dict[str, Record]] = {"run": {}, "tokenizer": {}, "alias": {}}

    def apply(self, fact: Fact) -> None:
        """Fold the fact of one event in."""
        by_id = self.records[fact.kind]
        record = by_id.get(fact.subject)
        if record is None:
            record = by_id[fact.subject] = Record()
        record.apply(fact)

    def get(self, kind: Kind, subject: str) -> Record | None:
        """The record of one run or tokenizer, if any event mentioned it."""
        return self.records[kind].get(subject)

    def items(self) -> Iterator[tuple[Kind, str, Record]]:
        """Every record with its kind and id."""
        for kind, by_id in self.records.items():
            for subject, record in by_id.items():
                yield kind, subject, record

    def __len__(self) -> int:
        return sum(len(by_id) for by_id in self.records.values())
