"""The event log: append events (idempotently) and read them back.

An append is one Lua call: it records the entry under the idempotency key and in the
correlation index in the same atomic step as the XADD, so a retried command, even from
two processes at once, yields one entry. The key also keeps the request's fingerprint, so a
key reused for another request is refused (`events.idempotency` says when fingerprints
apply). Each event id is recorded as well, for as long as the log: the stages key what they
record on their cause's event id, so an event under an id the log holds is refused
(`EventIdReused`) rather than left to have its consequences swallowed. With a `Durability` that asks for replicas, the call and a `WAIT` travel in one
pipeline on one connection (see `events.durability`).
"""

from __future__ import annotations

from dataclasses import dataclass

import redis

from events import names
from events.codec import decode, encode
from events.durability import Durability, NotReplicatedError, ReplicaCount
from events.envelope import ArtifactPointerRevoked, Event
from events.idempotency import EventIdReused, IdempotencyKeyReused, first_entry
from events.replies import entries, text
from events.scripts import lua_source

IDEMPOTENCY_TTL_SECONDS = 7 * 24 * 3600
"""How long a retried command is recognised; the log itself is never trimmed."""

_APPEND = lua_source("events", "append")
"""Append one event; with an idempotency key seen before, return its first entry instead."""

_SEEN, _REUSED, _ID_TAKEN = 1, 2, 3
"""The append script's verdicts on a key seen before (same request, or another one) and on an
event id the log already holds."""


PRIMARY_ONLY = Durability()
"""An append counts once the primary took it (a single engine has nothing else to wait for)."""


def stream_for(event: Event) -> str:
    """The stream an event belongs to, by its type's prefix. Commands land in
    `stream:training`, where `min_position` reads are anchored: a request for a new upload
    (work for a node's upload stage, which reads that stream) and a run's deletion (work for
    the retention stage)."""
    if event.type == "artifact.upload_requested":
        return names.TRAINING_STREAM
    if isinstance(event, ArtifactPointerRevoked) and event.payload.deleted:
        return names.TRAINING_STREAM
    if event.type in ("artifact.pointer_set", "artifact.pointer_revoked"):
        return names.POINTER_STREAM
    if event.type.startswith("artifact."):
        return names.UPLOAD_STREAM
    return names.TRAINING_STREAM


@dataclass(frozen=True)
class Appended:
    """Where an append landed; `duplicate` when the idempotency key had been seen."""

    stream: str
    entry_id: str
    duplicate: bool


@dataclass(frozen=True)
class LogEntry:
    """One stored entry: its stream, its id and its raw fields (decode with `codec.decode`)."""

    stream: str
    entry_id: str
    fields: dict[bytes, bytes]

    def event(self) -> Event:
        """The typed event; raises `DecodeError` when the entry is not one."""
        return decode(self.fields)


class EventLog:
    """Append to and read from the streams of the log."""

    def __init__(self, client: redis.Redis, durability: Durability = PRIMARY_ONLY) -> None:
        self._client = client
        self._append = client.register_script(_APPEND)
        self.durability = durability
        self._replicas = ReplicaCount(client)

    def append(
        self,
        event: Event,
        *,
        idempotency_key: str | None = None,
        fingerprint: str | None = None,
    ) -> Appended:
        """Append `event`; with a key seen before, append nothing and return the first entry,
        or raise `IdempotencyKeyReused` when the key was first used with another `fingerprint`
        (the request's, see `events.idempotency.fingerprint`; None: do not compare), and
        `EventIdReused` when the log already holds an event with `event`'s id.

        Either way, return only once the entry is on the replicas `durability` asks for
        (`NotReplicatedError` when they do not confirm it in time).
        """
        stream = stream_for(event)
        keys, args = self._keys(stream, event, idempotency_key), self._args(event, fingerprint)
        wanted = (
            min(self.durability.replicas, self._replicas.now()) if self.durability.replicas else 0
        )
        if not wanted:
            return self._appended(
                stream, self._append(keys=keys, args=args), idempotency_key, event.event_id
            )
        pipe = self._client.pipeline(transaction=False)
        self._append(keys=keys, args=args, client=pipe)
        pipe.wait(wanted, self.durability.timeout_ms)
        result, acknowledged = pipe.execute()
        if int(acknowledged) < wanted:
            raise NotReplicatedError(
                f"{acknowledged} of {wanted} replicas confirmed the append within "
                f"{self.durability.timeout_ms} ms"
            )
        return self._appended(stream, result, idempotency_key, event.event_id)

    def first_entry(self, idempotency_key: str, fingerprint: str | None = None) -> str | None:
        """The entry first appended under `idempotency_key`, None when there is none yet;
        `IdempotencyKeyReused` when it was first used with another `fingerprint`."""
        recorded = self._client.get(names.idempotency_key(idempotency_key))
        if recorded is None:
            return None
        return first_entry(text(recorded), idempotency_key, fingerprint)

    @staticmethod
    def _keys(stream: str, event: Event, idempotency_key: str | None) -> list[str]:
        idempotency = names.idempotency_key(idempotency_key) if idempotency_key else ""
        return [stream, idempotency, names.correlation_key(event.correlation_id), names.EVENT_IDS]

    @staticmethod
    def _args(event: Event, fingerprint: str | None) -> list[bytes | int | str]:
        return [encode(event)[b"event"], IDEMPOTENCY_TTL_SECONDS, fingerprint or "", event.event_id]

    @staticmethod
    def _appended(
        stream: str, result: object, key: str | None = None, event_id: str = ""
    ) -> Appended:
        if not isinstance(result, list) or len(result) != 2:
            raise TypeError(f"unexpected append reply {result!r}")
        entry_id, verdict = text(result[0]), result[1]
        if verdict == _REUSED:
            raise IdempotencyKeyReused(key or "", entry_id)
        if verdict == _ID_TAKEN:
            holder, _, first = entry_id.partition(" ")
            raise EventIdReused(event_id, holder, first)
        return Appended(stream, entry_id, verdict == _SEEN)

    def read_range(
        self, stream: str, start: str = "-", end: str = "+", count: int | None = None
    ) -> list[LogEntry]:
        """Entries of `stream` from `start` to `end` (inclusive), oldest first."""
        rows = self._client.xrange(stream, start, end, count)
        return [LogEntry(stream, entry_id, fields) for entry_id, fields in entries(rows)]

    def read_correlation(self, correlation_id: str) -> list[LogEntry]:
        """Every entry about one run or tokenizer, across streams, in append order."""
        refs = self._client.lrange(names.correlation_key(correlation_id), 0, -1)
        pipe = self._client.pipeline(transaction=False)
        located = [text(ref).split(" ", 1) for ref in refs]
        for stream, entry_id in located:
            pipe.xrange(stream, entry_id, entry_id)
        found: list[LogEntry] = []
        for (stream, entry_id), rows in zip(located, pipe.execute(), strict=True):
            found.extend(LogEntry(stream, entry_id, fields) for _, fields in entries(rows))
        return found
