"""Idempotency keys remember the request they first answered, by a fingerprint.

A command's retry carries the same key and the same body, and gets the first answer. The same
key with a different body is a client bug (a key reused for a new request): answering it with
the first answer would silently drop the new request, so the append refuses it instead.

The caller computes the fingerprint (`fingerprint`, over the request's canonical JSON: what the
client asked for, not the event, whose id and time are fresh on every try) and `EventLog.append`
stores it with the key in the same atomic step. An append without a fingerprint is never
compared: the stages append under keys derived from the event that caused them, and a redo of
that cause (after a crash, on another node) may word its event differently (another node, a
later time, another error message); the first recorded event stands.
"""

from __future__ import annotations

import hashlib
import json

from pydantic import BaseModel


class IdempotencyKeyReused(Exception):  # noqa: N818 - it names what happened, like KeyError
    """An idempotency key came back with a request other than the one it first answered."""

    def __init__(self, key: str, entry_id: str) -> None:
        super().__init__(
            f"idempotency key {key!r} was first used for a different request (entry {entry_id})"
        )
        self.key = key
        self.entry_id = entry_id


class EventIdReused(Exception):  # noqa: N818 - it names what happened, like KeyError
    """An event came to be appended under an event id the log already holds.

    Every stage keys what it records on the event id of its cause (`consumers.history.record`),
    so a second event under an id would have its consequences taken for the first one's and
    dropped. Ids are fresh uuids from every writer of this system; a repeat is a forgery or a
    bug, never a retry (a retry comes with its idempotency key, which is checked first)."""

    def __init__(self, event_id: str, stream: str, entry_id: str) -> None:
        super().__init__(
            f"event id {event_id!r} is already in the log ({stream} entry {entry_id}): "
            "every event needs an id of its own"
        )
        self.event_id = event_id
        self.stream = stream
        self.entry_id = entry_id


def fingerprint(request: BaseModel) -> str:
    """The sha256 of `request`'s canonical JSON (sorted keys, no spaces, defaults filled in), so
    two bodies that mean the same request have the same fingerprint."""
    canonical = json.dumps(
        request.model_dump(mode="json"), sort_keys=True, separators=(",", ":"), ensure_ascii=False
    )
    return hashlib.sha256(canonical.encode()).hexdigest()


def first_entry(recorded: str, key: str, fingerprint: str | None) -> str:
    """The entry id in a key's record (`<entry id>[ <fingerprint>]`, written by the append
    script); `IdempotencyKeyReused` when both sides have a fingerprint and they differ."""
    entry_id, _, first = recorded.partition(" ")
    if first and fingerprint and first != fingerprint:
        raise IdempotencyKeyReused(key, entry_id)
    return entry_id
