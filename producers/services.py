"""The API's connections, opened in the app's lifespan (inside its event loop) and closed after.

Reads use redis.asyncio so a read never hops to the threadpool; commands and the log history
use the synchronous `EventLog` from FastAPI's threadpool (sync endpoints).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import redis
import redis.asyncio
from fastapi import FastAPI

from events import EventLog, connect
from producers.config import ApiConfig
from producers.metrics import ApiMetrics
from projections import AsyncReadModel, GetClient

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
        self._async = redis.asyncio.Redis.from_url(self.config.redis_url)
        self._sync = connect(self.config.redis_url)
        keys = GetClient.from_url(self.config.redis_url)
        self._reads, self._log = AsyncReadModel(self._async, keys), EventLog(self._sync)
        try:
            yield
        finally:
            await keys.close()
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
        """The event log."""
        if self._log is None:
            raise RuntimeError(_OUTSIDE)
        return self._log
