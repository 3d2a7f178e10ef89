"""Append many events the way services do: one `EventLog.append` each."""

from __future__ import annotations

from collections.abc import Iterable

import redis

from events import Appended, Event, EventLog


def append_all(client: redis.Redis, events: Iterable[Event]) -> list[Appended]:
    """Append `events` in order through `EventLog.append`; where each landed."""
    log = EventLog(client)
    return [log.append(event) for event in events]
