"""How the local server is run: uvicorn, bounded against slow and numerous clients.

uvicorn bounds the idle time between requests (`timeout_keep_alive`) and the connections and
requests in flight (`limit_concurrency`; past it, a plain-text 503 that clients retry), but not
the time a client takes to send its request headers. `HeaderTimeoutProtocol` closes a
connection whose headers are not complete within `header_timeout_s` of it opening or of the
previous answer. Time inside an upload body is bounded by the app (`body_idle_timeout_s`).
"""

from __future__ import annotations

import asyncio

import uvicorn
from pydantic import BaseModel, ConfigDict, Field
from starlette.types import ASGIApp
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
from uvicorn.server import ServerState


class ServingLimits(BaseModel):
    """Bounds on what clients may hold: time to send headers, idle keep-alive, connections."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    header_timeout_s: float = Field(default=10.0, gt=0, description="HEADER_TIMEOUT_S")
    keep_alive_s: int = Field(default=5, ge=1, description="KEEP_ALIVE_S")
    max_connections: int = Field(default=64, ge=2, description="MAX_CONNECTIONS")


class HeaderTimeoutProtocol(HttpToolsProtocol):
    """uvicorn's protocol, closing connections that are too slow to send their headers."""

    header_timeout_s = ServingLimits().header_timeout_s

    def __init__(
        self,
        config: uvicorn.Config,
        server_state: ServerState,
        app_state: dict[str, object],
        _loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        super().__init__(config, server_state, app_state, _loop)
        # Made for one accepted connection, just before it is handed over: the clock starts now.
        self._header_timer: asyncio.TimerHandle | None = None
        self._arm()

    def on_headers_complete(self) -> None:
        self._disarm()
        super().on_headers_complete()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        # uvicorn arms its keep-alive timer only when no pipelined request is already parsed.
        if self.timeout_keep_alive_task is not None:
            self._arm()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def _arm(self) -> None:
        self._disarm()
        self._header_timer = self.loop.call_later(self.header_timeout_s, self._expire)

    def _disarm(self) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None

    def _expire(self) -> None:
        self._header_timer = None
        self.transport.close()


def server_config(
    app: ASGIApp, limits: ServingLimits, *, host: str, port: int, log_level: str
) -> uvicorn.Config:
    """The uvicorn configuration that serves `app` within `limits`."""
    protocol = type(
        "BoundedHeaderTimeoutProtocol",
        (HeaderTimeoutProtocol,),
        {"header_timeout_s": limits.header_timeout_s},
    )
    return uvicorn.Config(
        app,
        host=host,
        port=port,
        log_level=log_level,
        log_config=None,
        http=protocol,
        timeout_keep_alive=limits.keep_alive_s,
        limit_concurrency=limits.max_connections,
    )
