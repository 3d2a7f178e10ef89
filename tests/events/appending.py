"""Append many events the way services do: one `EventLog.append` each (and repeats the way a
dead-letter replay writes them)."""

from __future__ import annotations

from collections.abc import Iterable

import redis
from redis.typing import EncodableT, FieldT

from events import Appended, Event, EventLog, encode, stream_for, text


def append_all(client: redis.Redis, events: Iterable[Event]) -> list[Appended]:
    """Append `events` in order through `EventLog.append`; where each landed."""
    log = EventLog(client)
    return [log.append(event) for event in events]


def append_replaying(client: redis.Redis, events: Iterable[Event]) -> list[str]:
    """Append `events` in order; an event seen before is written again as a dead-letter replay
    writes it (a plain XADD of its fields: the log refuses a second append of an event id).
    The entry ids, in order."""
    log, seen, ids = EventLog(client), set[str](), list[str]()
    for event in events:
        if event.event_id in seen:
            fields: dict[FieldT, EncodableT] = dict(encode(event).items())
            ids.append(text(client.xadd(stream_for(event), fields)))
        else:
            seen.add(event.event_id)
            ids.append(log.append(event).entry_id)
    return ids
