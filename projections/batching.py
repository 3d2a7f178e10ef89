"""Concurrent reads of one event-loop turn travel to the engine in one pipeline.

Under load the API serves several requests per turn of its event loop. Sent one by one, each
read costs its own socket write and read, and on a busy host those system calls are most of a
pointer read's cost. `ReadBatcher` queues the single-key reads issued in one turn and sends
them as one redis-py pipeline (one write, one read for all), then hands each caller its own
reply or error. A read issued alone still waits only for the end of the current turn.
"""

from __future__ import annotations

import asyncio
from typing import Literal

import redis.asyncio

Command = Literal["GET", "HGETALL", "HMGET"]
_Queued = tuple[Command, str, tuple[str, ...], "asyncio.Future[object]"]


class ReadBatcher:
    """GET, HGETALL and HMGET through one client, batched per event-loop turn."""

    def __init__(self, client: redis.asyncio.Redis) -> None:
        self.client = client
        self._queued: list[_Queued] = []
        self._sending: set[asyncio.Task[None]] = set()

    async def get(self, key: str) -> object:
        """The value at `key` (None when there is none)."""
        return await self._enqueue("GET", key)

    async def hgetall(self, key: str) -> object:
        """The hash at `key` (empty when there is none)."""
        return await self._enqueue("HGETALL", key)

    async def hmget(self, key: str, fields: tuple[str, ...]) -> object:
        """The values of `fields` of the hash at `key` (None for each absent one)."""
        return await self._enqueue("HMGET", key, fields)

    def _enqueue(
        self, command: Command, key: str, fields: tuple[str, ...] = ()
    ) -> asyncio.Future[object]:
        loop = asyncio.get_running_loop()
        reply: asyncio.Future[object] = loop.create_future()
        if not self._queued:
            loop.call_soon(self._flush)
        self._queued.append((command, key, fields, reply))
        return reply

    def _flush(self) -> None:
        batch, self._queued = self._queued, []
        task = asyncio.ensure_future(self._send(batch))
        self._sending.add(task)  # a running task must stay referenced until it ends
        task.add_done_callback(self._sending.discard)

    async def _send(self, batch: list[_Queued]) -> None:
        pipe = self.client.pipeline(transaction=False)
        for command, key, fields, _ in batch:
            if command == "GET":
                pipe.get(key)
            elif command == "HGETALL":
                pipe.hgetall(key)
            else:
                pipe.hmget(key, fields)
        try:
            replies: list[object] = list(await pipe.execute(raise_on_error=False))
        except Exception as error:
            replies = [error] * len(batch)
        for (_, _, _, reply), value in zip(batch, replies, strict=True):
            if reply.done():  # its caller went away (a cancelled request)
                continue
            if isinstance(value, BaseException):
                reply.set_exception(value)
            else:
                reply.set_result(value)
