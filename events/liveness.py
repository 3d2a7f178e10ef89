"""Which consumers are alive: each announces itself in its group's set, with a time to live.

Announcements rather than the engine's own view (`XINFO CONSUMERS` idle or inactive time)
because a consumer's idle time measures reads, not life: a training consumer reads one entry
and then trains for minutes without reading, and would look dead all that time. The runtime's
heartbeat thread, which already runs beside every handler, renews the announcement instead:
a consumer that stops withdraws it, one that dies without cleanup stops renewing it and it
expires. Scores are the engine's time (`TIME` inside the scripts), so the hosts' clocks do not
matter, and the read is one script call for all the groups asked about.
"""

from __future__ import annotations

from collections.abc import Sequence

import redis
import redis.asyncio

from events import names
from events.scripts import lua_source

_ANNOUNCE = lua_source("events", "announce")
"""Score one consumer by when its announcement expires; drop the expired ones."""

_LIVE = lua_source("events", "live")
"""Count each group's consumers whose announcement has not expired."""


class Announcement:
    """One consumer's announcement in its group's set (`names.live_consumers_key`)."""

    def __init__(self, client: redis.Redis, group: str, consumer: str, ttl_ms: int) -> None:
        self._client = client
        self._key = names.live_consumers_key(group)
        self._consumer = consumer
        self._ttl_ms = ttl_ms
        self._announce = client.register_script(_ANNOUNCE)

    def renew(self) -> None:
        """Say this consumer is alive for the next `ttl_ms`."""
        self._announce(keys=[self._key], args=[self._consumer, self._ttl_ms])

    def withdraw(self) -> None:
        """Say this consumer has stopped (a dead one's announcement expires instead)."""
        self._client.zrem(self._key, self._consumer)


async def live_consumers(client: redis.asyncio.Redis, groups: Sequence[str]) -> dict[str, int]:
    """How many consumers of each group announced themselves and have not expired, now."""
    script = client.register_script(_LIVE)
    reply: object = await script(keys=[names.live_consumers_key(group) for group in groups])
    return _counts(groups, reply)


def _counts(groups: Sequence[str], reply: object) -> dict[str, int]:
    """The live script's reply, one count per group, by group."""
    if not isinstance(reply, list) or len(reply) != len(groups):
        raise TypeError(f"unexpected live consumers reply {reply!r}")
    return {group: int(count) for group, count in zip(groups, reply, strict=True)}
