"""Per-group health: lag, pending count, oldest pending age, dead-letter depth."""

from __future__ import annotations

from dataclasses import dataclass

import redis

from events import names
from events.replies import text


@dataclass(frozen=True)
class GroupStats:
    """How far one group is behind on one stream."""

    stream: str
    group: str
    lag: int
    pending: int
    oldest_pending_age_s: float
    dead_letters: int


def _server_ms(client: redis.Redis) -> int:
    seconds, micros = client.time()
    return int(seconds) * 1000 + int(micros) // 1000


def group_stats(client: redis.Redis, stream: str, group: str) -> GroupStats:
    """Stats of `group` on `stream`; a group that does not exist yet counts everything as lag."""
    info = (
        next((row for row in client.xinfo_groups(stream) if text(row["name"]) == group), None)
        if client.exists(stream)
        else None
    )
    dead = int(client.xlen(names.dlq_stream(stream, group)))
    if info is None:
        return GroupStats(stream, group, int(client.xlen(stream)), 0, 0.0, dead)
    summary = client.xpending(stream, group)
    oldest = summary["min"]
    age = 0.0
    if oldest is not None:
        age = max(0, _server_ms(client) - int(text(oldest).split("-")[0])) / 1000
    lag = info.get("lag")
    return GroupStats(
        stream, group, int(lag) if lag is not None else 0, int(summary["pending"]), age, dead
    )
