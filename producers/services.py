"""The API's engine connections, opened in the app's lifespan (inside its event loop).

One synchronous client (commands and the log history, from FastAPI's threadpool) and one
asyncio client (reads, so a read never hops to the threadpool), both built by
`events.connect*` from the one URL and policy.
"""

from __future__ import annotations

import gc
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import redis
import redis.asyncio
from fastapi import FastAPI

from events import EventLog, connect, connect_async
from producers.config import ApiConfig
from producers.metrics import ApiMetrics
from projections import AsyncReadModel

_OUTSIDE = "the API's services are used outside its lifespan"


class Services:
    """Everything the endpoints talk to; only usable while the app runs."""

    def __init__(self, config: ApiConfig) -> None:
        self.config = config
        self.metrics = ApiMetrics(lambda: self.client)
        self._async: redis.asyncio.Redis | None = None
        self._sync: redis.Redis | None = None
        self._reads: AsyncReadModel | None = None
        self._log: EventLog | None = None

    @asynccontextmanager
    async def lifespan(self, app: FastAPI) -> AsyncIterator[None]:
        """Open the clients for the app's lifetime."""
        self._async = connect_async(self.config.redis_url, self.config.policy)
        self._sync = connect(self.config.redis_url, self.config.policy)
        self._reads = AsyncReadModel(self._async)
        self._log = EventLog(self._sync, self.config.durability)
        # Everything built so far lives as long as the process: keep it out of the cyclic
        # collector's full passes, which would otherwise walk it again and again under load.
        gc.collect()
        gc.freeze()
        try:
            yield
        finally:
            await self._async.aclose()
            self._sync.close()
            self._async = self._sync = self._reads = self._log = None

    @property
    def aio(self) -> redis.asyncio.Redis:
        """The asynchronous client."""
        if self._async is None:
            raise RuntimeError(_OUTSIDE)
        return self._async

    @property
    def client(self) -> redis.Redis:
        """The synchronous client."""
        if self._sync is None:
            raise RuntimeError(_OUTSIDE)
        return self._sync

    @property
    def reads(self) -> AsyncReadModel:
        """Read-model queries."""
        if self._reads is None:
            raise RuntimeError(_OUTSIDE)
        return self._reads

    @property
    def log(self) -> EventLog:
        """The event log (its appends wait for the configured replicas)."""
        if self._log is None:
            raise RuntimeError(_OUTSIDE)
        return self._log
