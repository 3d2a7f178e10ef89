"""The event log: append events (idempotently) and read them back.

An append is one Lua call: it records the entry under the idempotency key and in the
correlation index in the same atomic step as the XADD, so a retried command, even from
two processes at once, yields one entry.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import redis

from events import names
from events.codec import decode, encode
from events.envelope import Event
from events.wire import entries, text

IDEMPOTENCY_TTL_SECONDS = 7 * 24 * 3600
"""How long a retried command is recognised; the log itself is never trimmed."""

_APPEND = """
local existing = false
if KEYS[2] ~= '' then
  existing = redis.call('GET', KEYS[2])
  if existing then return {existing, 1} end
end
local id = redis.call('XADD', KEYS[1], '*', 'event', ARGV[1])
if KEYS[2] ~= '' then redis.call('SET', KEYS[2], id, 'EX', ARGV[2]) end
redis.call('RPUSH', KEYS[3], KEYS[1] .. ' ' .. id)
return {id, 0}
"""

_APPEND_MANY = """
local n = #ARGV
local ids = {}
for i = 1, n do
  local id = redis.call('XADD', KEYS[i], '*', 'event', ARGV[i])
  redis.call('RPUSH', KEYS[n + i], KEYS[i] .. ' ' .. id)
  ids[i] = id
end
return ids
"""


def stream_for(event: Event) -> str:
    """The stream an event belongs to, by its type's prefix."""
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

    def __init__(self, client: redis.Redis) -> None:
        self._client = client
        self._append = client.register_script(_APPEND)
        self._append_many = client.register_script(_APPEND_MANY)

    def append(self, event: Event, *, idempotency_key: str | None = None) -> Appended:
        """Append `event`; with a key seen before, append nothing and return the first entry."""
        stream = stream_for(event)
        result = self._append(
            keys=self._keys(stream, event, idempotency_key), args=self._args(event)
        )
        return self._appended(stream, result)

    def append_many(self, events: Sequence[Event]) -> list[Appended]:
        """Append several events atomically in one call (no idempotency keys)."""
        streams = [stream_for(event) for event in events]
        correlations = [names.correlation_key(event.correlation_id) for event in events]
        payloads = [event.model_dump_json() for event in events]
        reply = self._append_many(keys=[*streams, *correlations], args=payloads)
        ids = reply if isinstance(reply, list) else []
        return [Appended(s, text(i), False) for s, i in zip(streams, ids, strict=True)]

    @staticmethod
    def _keys(stream: str, event: Event, idempotency_key: str | None) -> list[str]:
        idempotency = names.idempotency_key(idempotency_key) if idempotency_key else ""
        return [stream, idempotency, names.correlation_key(event.correlation_id)]

    @staticmethod
    def _args(event: Event) -> list[bytes | int]:
        return [encode(event)[b"event"], IDEMPOTENCY_TTL_SECONDS]

    @staticmethod
    def _appended(stream: str, result: object) -> Appended:
        if not isinstance(result, list) or len(result) != 2:
            raise TypeError(f"unexpected append reply {result!r}")
        return Appended(stream, text(result[0]), result[1] == 1)

    def read_range(
        self, stream: str, start: str = "-", end: str = "+", count: int | None = None
    ) -> list[LogEntry]:
        """Entries of `stream` from `start` to `end` (inclusive), oldest first."""
        rows = self._client.xrange(stream, start, end, count)
        return [LogEntry(stream, entry_id, fields) for entry_id, fields in entries(rows)]

    def iter_stream(self, stream: str, *, batch: int = 1000) -> Iterator[LogEntry]:
        """Every entry of `stream`, oldest first, read in batches."""
        start = "-"
        while rows := self.read_range(stream, start, "+", batch):
            yield from rows
            start = "(" + rows[-1].entry_id

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
