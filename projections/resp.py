"""A minimal pipelined asyncio client for GET: the pointer lookup on the API's hot path.

Why not redis.asyncio for this one command: measured on the project's machines, its per-call
machinery (pool checkout, retry and timeout wrappers, instrumentation) costs ~150 us of CPU
per GET, more than the whole bare FastAPI request; this client costs ~20 us. It speaks just
enough RESP2 for GET (bulk, simple and error replies), keeps one connection, pipelines every
concurrent call on it (replies come back in order: a FIFO of futures), authenticates and
selects the database from the URL, and reconnects on the next call after a lost connection.
Errors are redis-py's (`redis.ConnectionError`, `redis.ResponseError`), so callers handle
both clients alike. Everything else keeps using redis-py.
"""

from __future__ import annotations

import asyncio
import ssl
from collections import deque
from typing import Protocol, runtime_checkable
from urllib.parse import unquote, urlsplit

import redis


@runtime_checkable
class Writer(Protocol):
    """What the client needs of a transport (uvloop's do not subclass asyncio's classes)."""

    def write(self, data: bytes) -> None:
        """Send bytes."""

    def close(self) -> None:
        """Close the connection."""


Reply = bytes | None | redis.ResponseError
_INCOMPLETE = 0


def command(*parts: bytes) -> bytes:
    """One command in RESP2 wire format."""
    head = b"*%d\r\n" % len(parts)
    return head + b"".join(b"$%d\r\n%s\r\n" % (len(part), part) for part in parts)


def parse(buffer: bytes | bytearray) -> tuple[Reply, int]:
    """The first reply in `buffer` and the bytes it used (0: not complete yet).

    `redis.ConnectionError` for a reply GET can never get (the stream is out of step).
    """
    end = buffer.find(b"\r\n")
    if end < 0:
        return None, _INCOMPLETE
    kind, line = buffer[:1], bytes(buffer[1:end])
    if kind == b"$":
        size = int(line)
        if size < 0:
            return None, end + 2
        stop = end + 2 + size
        if len(buffer) < stop + 2:
            return None, _INCOMPLETE
        return bytes(buffer[end + 2 : stop]), stop + 2
    if kind == b"+":
        return line, end + 2
    if kind == b"-":
        return redis.ResponseError(line.decode(errors="replace")), end + 2
    raise redis.ConnectionError(f"unexpected reply type {kind!r}")


class _Protocol(asyncio.Protocol):
    """One connection: writes commands, resolves the waiting futures in reply order."""

    def __init__(self) -> None:
        self.waiters: deque[asyncio.Future[bytes | None]] = deque()
        self.buffer = bytearray()
        self.outgoing: list[bytes] = []
        self.transport: Writer | None = None
        self.lost = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, Writer)
        self.transport = transport

    def send(self, payload: bytes) -> asyncio.Future[bytes | None]:
        """Queue one command; the future resolves with its reply.

        Commands queued in one turn of the event loop leave in one write: under load, many
        requests' GETs share a system call each way.
        """
        loop = asyncio.get_running_loop()
        waiter: asyncio.Future[bytes | None] = loop.create_future()
        self.waiters.append(waiter)
        if not self.outgoing:
            loop.call_soon(self._flush)
        self.outgoing.append(payload)
        return waiter

    def _flush(self) -> None:
        if self.transport is not None and not self.lost:
            self.transport.write(b"".join(self.outgoing))
        self.outgoing.clear()

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        while self.waiters:
            try:
                reply, used = parse(self.buffer)
            except redis.ConnectionError as error:
                self._fail(error)
                self.close()
                return
            if used == _INCOMPLETE:
                return
            del self.buffer[:used]
            waiter = self.waiters.popleft()
            if waiter.done():  # its caller was cancelled; the reply is dropped
                continue
            if isinstance(reply, redis.ResponseError):
                waiter.set_exception(reply)
            else:
                waiter.set_result(reply)

    def close(self) -> None:
        """Close the connection; waiting calls fail with `redis.ConnectionError`."""
        assert self.transport is not None  # set when the connection was made
        self.transport.close()

    def connection_lost(self, exc: Exception | None) -> None:
        self._fail(redis.ConnectionError(f"connection lost: {exc or 'closed by the server'}"))

    def _fail(self, error: redis.ConnectionError) -> None:
        self.lost = True
        while self.waiters:
            waiter = self.waiters.popleft()
            if not waiter.done():
                waiter.set_exception(error)


class GetClient:
    """GET over one pipelined connection, opened on first use and after a loss."""

    def __init__(
        self,
        host: str,
        port: int = 6379,
        *,
        db: int = 0,
        username: str | None = None,
        password: str | None = None,
        tls: bool = False,
    ) -> None:
        self.host, self.port, self.db = host, port, db
        self.username, self.password, self.tls = username, password, tls
        self._protocol: _Protocol | None = None
        self._connecting = asyncio.Lock()

    @classmethod
    def from_url(cls, url: str) -> GetClient:
        """`redis://[[user]:password@]host[:port][/db]` (or `rediss://` for TLS)."""
        parts = urlsplit(url)
        if parts.scheme not in ("redis", "rediss"):
            raise ValueError(f"unsupported engine URL scheme {parts.scheme!r}")
        path = parts.path.strip("/")
        return cls(
            parts.hostname or "127.0.0.1",
            parts.port or 6379,
            db=int(path) if path else 0,
            username=unquote(parts.username) if parts.username else None,
            password=unquote(parts.password) if parts.password else None,
            tls=parts.scheme == "rediss",
        )

    async def get(self, key: str) -> bytes | None:
        """The value at `key`, or None."""
        protocol = self._protocol
        if protocol is None or protocol.lost:
            protocol = await self._connect()
        return await protocol.send(command(b"GET", key.encode()))

    async def _connect(self) -> _Protocol:
        async with self._connecting:
            if self._protocol is not None and not self._protocol.lost:
                return self._protocol
            loop = asyncio.get_running_loop()
            context = ssl.create_default_context() if self.tls else None
            try:
                _, protocol = await loop.create_connection(
                    _Protocol, self.host, self.port, ssl=context
                )
            except OSError as error:
                message = f"cannot reach {self.host}:{self.port}: {error}"
                raise redis.ConnectionError(message) from error
            try:
                for setup in self._setup():
                    await protocol.send(setup)
            except redis.ResponseError:
                protocol.close()
                raise
            self._protocol = protocol
            return protocol

    def _setup(self) -> list[bytes]:
        commands: list[bytes] = []
        if self.password is not None:
            user = [self.username.encode()] if self.username else []
            commands.append(command(b"AUTH", *user, self.password.encode()))
        if self.db:
            commands.append(command(b"SELECT", str(self.db).encode()))
        return commands

    async def close(self) -> None:
        """Close the connection (a later `get` opens a new one)."""
        protocol, self._protocol = self._protocol, None
        if protocol is not None:
            protocol.close()
