"""The read model's record layout, how status is derived, and an in-memory copy of it.

A record is a hash of fact slots (`<group>_at`, `<group>_event` and the group's values, see
`projections.effects`) plus three derived fields: `status`, `message`, `node`. Derivation is
a precedence over the slots, the first rule whose fact is present wins:

    run:       cancelled > failed (training) > failed (upload) > completed (pointer slot)
               > uploading (uploaded) > trained > running (started) > queued
    tokenizer: failed > failed (upload) > completed > uploading > trained > queued

`completed` follows the pointer slot, so a revoked pointer leaves the run completed with the
revocation as its message (and no artifact key). The rules are data: the engine-side apply
script (`projections.script`) is generated from them, and `MemoryModel` (rebuild, tests and
the API's cancel check) evaluates the same data, so the two cannot drift apart silently.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from events import names
from projections.effects import GROUPS, Fact, Kind

Slot = tuple[str, str, tuple[str | None, ...]]
"""(at, event_id, values) of the winning write of one fact group."""


@dataclass(frozen=True)
class StatusRule:
    """`status` holds when `fact` is present; its message is the field `message` (or none)."""

    status: str
    fact: str
    message: str = ""


@dataclass(frozen=True)
class Rules:
    """How one kind of record derives `status` (first rule wins), and `node` (first present)."""

    status: tuple[StatusRule, ...]
    node: tuple[str, ...]
    fallback: str = "queued"


RULES: dict[Kind, Rules] = {
    "run": Rules(
        status=(
            StatusRule("cancelled", "cancelled_at", "cancel_reason"),
            StatusRule("failed", "failed_at", "failure"),
            StatusRule("failed", "upload_failed_at", "upload_failure"),
            StatusRule("completed", "pointer_at", "revoked"),
            StatusRule("uploading", "uploaded_at"),
            StatusRule("trained", "trained_at"),
            StatusRule("running", "started_at"),
            StatusRule("queued", "requested_at"),
        ),
        node=("trained_node", "started_node", "cancelled_node"),
    ),
    "tokenizer": Rules(
        status=(
            StatusRule("failed", "failed_at", "failure"),
            StatusRule("failed", "upload_failed_at", "upload_failure"),
            StatusRule("completed", "pointer_at", "revoked"),
            StatusRule("uploading", "uploaded_at"),
            StatusRule("trained", "trained_at"),
            StatusRule("queued", "requested_at"),
        ),
        node=("trained_node",),
    ),
}


def derive(kind: Kind, fields: dict[str, str]) -> dict[str, str]:
    """The derived fields (`status`, and `message`/`node` when there is one) of a record."""
    rules = RULES[kind]
    derived = {"status": rules.fallback}
    for rule in rules.status:
        if rule.fact in fields:
            derived["status"] = rule.status
            if rule.message and rule.message in fields:
                derived["message"] = fields[rule.message]
            break
    node = next((fields[name] for name in rules.node if name in fields), None)
    if node is not None:
        derived["node"] = node
    return derived


def status_key(kind: Kind, subject: str) -> str:
    """The hash holding the status record of a run or a tokenizer."""
    return names.run_status_key(subject) if kind == "run" else names.tokenizer_status_key(subject)


def artifact_key(kind: Kind, subject: str) -> str:
    """The pointer key of a run's or a tokenizer's artifact."""
    if kind == "run":
        return names.run_artifact_key(subject)
    return names.tokenizer_artifact_key(subject)


class Record:
    """One run or tokenizer in memory: only the winning slots (compact for a million events)."""

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
        """The artifact's file id while the pointer slot holds a set (not revoked) pointer."""
        pointer = self.slots.get("pointer")
        return pointer[2][0] if pointer is not None else None


class MemoryModel:
    """The read model folded in memory from facts: what the engine should hold."""

    def __init__(self) -> None:
        self.records: dict[Kind, dict[str, Record]] = {"run": {}, "tokenizer": {}}

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
