"""The consumer-group runtime: read, dispatch, acknowledge, reclaim, dead-letter.

At-least-once: an entry is acknowledged only after its handler returned. A consumer that
dies leaves its entries pending; any consumer of the group reclaims them once idle past
the visibility timeout, while a heartbeat keeps a running handler's entries fresh so a
long training is never reclaimed under it. The same heartbeat announces the consumer as live
(`events.liveness`) for one visibility timeout, so a consumer that stops renewing it is seen
dead exactly when its entries become reclaimable, however long its handler runs. An entry
delivered more than `max_deliveries` times, or one that cannot be decoded, moves to
`dlq:<stream>:<group>` and the consumer goes on. A consumer may be given a dead-letter callback
(`on_dead_letter`): it learns of each decodable entry the group gave up on, after the dead
letter is written, so a stage can end the run the entry was about instead of leaving it in
limbo; the callback failing is logged and never undoes the dead letter.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from types import FrameType
from typing import TypeVar

import redis
import tenacity
from redis.typing import EncodableT, FieldT

from events import names
from events.codec import DecodeError, decode
from events.envelope import Envelope, Event
from events.liveness import Announcement
from events.replies import Fields, entries, raw, text
from events.scripts import lua_source

log = logging.getLogger(__name__)

E = TypeVar("E", bound=Envelope)

_RECLAIM = lua_source("events", "reclaim")
"""Claim entries idle past the visibility timeout, with how often each was delivered."""

_HEARTBEAT = lua_source("events", "heartbeat")
"""Reset the idle time of entries this consumer still owns (never steal one back)."""

CONNECTION_ERRORS = (redis.ConnectionError, redis.TimeoutError)


class Interrupted(Exception):  # noqa: N818 - it names what happened, like KeyboardInterrupt
    """Raised by a handler that stops early because the consumer is shutting down."""


@dataclass(frozen=True)
class RuntimeConfig:
    """Timing and limits of a consumer; tests shrink the times."""

    block_ms: int = 1000
    batch_size: int = 100
    visibility_timeout_ms: int = 30_000
    max_deliveries: int = 5
    backoff_initial_s: float = 0.05
    backoff_max_s: float = 5.0

    @property
    def heartbeat_s(self) -> float:
        """How often a running handler's claim is refreshed, and the consumer announced as
        live for one visibility timeout: well inside the timeout."""
        return self.visibility_timeout_ms / 3000


@dataclass(frozen=True)
class Delivery:
    """What a handler knows about the entry it handles."""

    stream: str
    entry_id: str
    attempt: int
    consumer: str
    stopping: threading.Event = field(repr=False)

    def should_stop(self) -> bool:
        """True once the consumer is shutting down; long handlers check it between steps."""
        return self.stopping.is_set()


Handler = Callable[[Event, Delivery], None]


@dataclass(frozen=True)
class DeadLettered:
    """A decodable entry a group gave up on, as a dead-letter callback learns of it."""

    event: Event
    stream: str
    group: str
    entry_id: str
    attempts: int
    """Deliveries, the one that dead-lettered it included (the dead letter's `attempts`)."""
    error: str
    """The last handler error (`Type: message`), or why there is none."""


OnDeadLetter = Callable[[DeadLettered], None]


class Handlers:
    """Typed dispatch: one handler per event class; other types are acknowledged unhandled."""

    def __init__(self) -> None:
        self._by_type: dict[str, Handler] = {}

    def on(self, cls: type[E], handler: Callable[[E, Delivery], None]) -> Handlers:
        """Register `handler` for events of `cls`."""

        def typed(event: Event, delivery: Delivery) -> None:
            assert isinstance(event, cls)  # dispatch is by this class's `type`
            handler(event, delivery)

        self._by_type[str(cls.model_fields["type"].default)] = typed
        return self

    def on_any(self, handler: Handler) -> Handlers:
        """Register `handler` for every event type (the projector)."""
        self._by_type.clear()
        self._by_type["*"] = handler
        return self

    def dispatch(self, event: Event, delivery: Delivery) -> None:
        """Run the handler of `event`'s type, if any."""
        handler = self._by_type.get(event.type) or self._by_type.get("*")
        if handler is not None:
            handler(event, delivery)


@dataclass
class _Pending:
    stream: str
    entry_id: str
    fields: Fields
    attempt: int


def consumer_name() -> str:
    """A name unique to this process: host, pid and a random suffix."""
    return f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}"


def ensure_group(client: redis.Redis, stream: str, group: str) -> None:
    """Create `group` on `stream` (and the stream) from the beginning; fine if it exists."""
    try:
        client.xgroup_create(stream, group, id="0", mkstream=True)
    except redis.ResponseError as error:
        if "BUSYGROUP" not in str(error):
            raise


class Consumer:
    """One member of a consumer group over one or more streams."""

    def __init__(
        self,
        client: redis.Redis,
        *,
        streams: Sequence[str],
        group: str,
        handlers: Handlers,
        config: RuntimeConfig = RuntimeConfig(),
        name: str | None = None,
        on_dead_letter: OnDeadLetter | None = None,
    ) -> None:
        self.client = client
        self.streams = tuple(streams)
        self.group = group
        self.handlers = handlers
        self.config = config
        self.name = name or consumer_name()
        self.on_dead_letter = on_dead_letter
        self.stopping = threading.Event()
        self.reconnects = 0
        self._next_reclaim = 0.0
        self.acked = 0
        self._held: set[tuple[str, str]] = set()
        self._held_lock = threading.Lock()
        self._reclaim = client.register_script(_RECLAIM)
        self._heartbeat = client.register_script(_HEARTBEAT)
        self._announcement = Announcement(client, group, self.name, config.visibility_timeout_ms)

    # -- lifecycle ---------------------------------------------------------------------------

    def ensure_groups(self) -> None:
        """Create this consumer's group on each of its streams."""
        for stream in self.streams:
            ensure_group(self.client, stream, self.group)

    def serve(self) -> None:
        """Run until SIGTERM or SIGINT; unfinished entries stay pending for another consumer."""
        previous = {
            sig: signal.signal(sig, self._on_signal) for sig in (signal.SIGTERM, signal.SIGINT)
        }
        try:
            self.run()
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        log.info("consumer stopping", extra={"category": "runtime", "event": "stopping"})
        self.stopping.set()

    def stop(self) -> None:
        """Ask `run` to return after the entry in hand."""
        self.stopping.set()

    def run(self) -> None:
        """Poll until stopped, reconnecting with backoff while the engine is away."""
        beat = threading.Thread(target=self._beat, name=f"heartbeat-{self.name}", daemon=True)
        beat.start()
        try:
            for attempt in self._retrying():
                with attempt:
                    self.ensure_groups()
                    while not self.stopping.is_set():
                        self.poll()
        finally:
            self.stopping.set()
            beat.join()

    def _retrying(self) -> tenacity.Retrying:
        return tenacity.Retrying(
            retry=tenacity.retry_if_exception_type(CONNECTION_ERRORS),
            wait=tenacity.wait_exponential_jitter(
                multiplier=self.config.backoff_initial_s, max=self.config.backoff_max_s
            ),
            stop=tenacity.stop_when_event_set(self.stopping),
            sleep=self._pause,
            before_sleep=self._on_reconnect,
            retry_error_callback=lambda state: None,
        )

    def _on_reconnect(self, state: tenacity.RetryCallState) -> None:
        self.reconnects += 1
        log.warning(
            "engine unreachable, reconnecting",
            extra={"category": "runtime", "event": "reconnect", "error_code": "engine_down"},
        )

    def _pause(self, seconds: float) -> None:
        self.stopping.wait(seconds)

    # -- one round ----------------------------------------------------------------------------

    def poll(self) -> int:
        """Reclaim stale entries, else read new ones; handle them. Returns entries handled."""
        batch = self._reclaimed() if self._reclaim_due() else []
        batch = batch or self._read_new()
        return self._handle_batch(batch)

    def _reclaim_due(self) -> bool:
        """Look for stale entries at most a few times per visibility timeout."""
        now = time.monotonic()
        if now < self._next_reclaim:
            return False
        self._next_reclaim = now + self.config.visibility_timeout_ms / 4000
        return True

    def _reclaimed(self) -> list[_Pending]:
        found: list[_Pending] = []
        for stream in self.streams:
            rows = self._reclaim(
                keys=[stream],
                args=[
                    self.group,
                    self.name,
                    self.config.visibility_timeout_ms,
                    self.config.batch_size,
                ],
            )
            found.extend(_reclaimed_rows(stream, rows))
        return found

    def _read_new(self) -> list[_Pending]:
        reply = self.client.xreadgroup(
            self.group,
            self.name,
            dict.fromkeys(self.streams, ">"),
            count=self.config.batch_size,
            block=self.config.block_ms,
        )
        return [
            _Pending(stream, entry_id, fields, 1)
            for stream, rows in _stream_rows(reply)
            for entry_id, fields in entries(rows)
        ]

    def _handle_batch(self, batch: list[_Pending]) -> int:
        with self._held_lock:
            self._held.update((p.stream, p.entry_id) for p in batch)
        done: list[_Pending] = []
        try:
            for pending in batch:
                if self.stopping.is_set():
                    break
                if self._handle(pending):
                    done.append(pending)
        finally:
            self._ack(done)
            with self._held_lock:
                self._held.difference_update((p.stream, p.entry_id) for p in batch)
        return len(done)

    def _handle(self, pending: _Pending) -> bool:
        """Handle one entry; True when it may be acknowledged."""
        try:
            event = decode(pending.fields)
        except DecodeError as error:
            self._dead_letter(pending, f"undecodable: {error}")
            return False
        if pending.attempt > self.config.max_deliveries:
            last_error = self._last_error(pending)
            self._dead_letter(pending, last_error)
            self._tell_dead_lettered(event, pending, last_error)
            return False
        delivery = Delivery(
            pending.stream, pending.entry_id, pending.attempt, self.name, self.stopping
        )
        try:
            self.handlers.dispatch(event, delivery)
        except CONNECTION_ERRORS:
            raise
        except Exception as error:
            if not self.stopping.is_set():
                self._record_failure(pending, error)
            return False
        return True

    # -- bookkeeping ----------------------------------------------------------------------------

    def _ack(self, done: Iterable[_Pending]) -> None:
        by_stream: dict[str, list[str]] = {}
        for pending in done:
            by_stream.setdefault(pending.stream, []).append(pending.entry_id)
        if not by_stream:
            return
        pipe = self.client.pipeline(transaction=False)
        for stream, ids in by_stream.items():
            pipe.xack(stream, self.group, *ids)
            pipe.hdel(names.failures_key(stream, self.group), *ids)
        replies = pipe.execute()
        self.acked += sum(int(count) for count in replies[::2])

    def _record_failure(self, pending: _Pending, error: Exception) -> None:
        message = f"{type(error).__name__}: {error}"
        log.warning(
            "handler failed",
            extra={
                "category": "runtime",
                "event": "handler_failed",
                "error_code": type(error).__name__,
            },
        )
        self.client.hset(names.failures_key(pending.stream, self.group), pending.entry_id, message)

    def _last_error(self, pending: _Pending) -> str:
        recorded = self.client.hget(
            names.failures_key(pending.stream, self.group), pending.entry_id
        )
        if recorded is None:
            return f"delivered {pending.attempt} times without being acknowledged"
        return text(recorded)

    def _dead_letter(self, pending: _Pending, error: str) -> None:
        letter: dict[FieldT, EncodableT] = {
            b"original_stream": pending.stream.encode(),
            b"original_id": pending.entry_id.encode(),
            b"group": self.group.encode(),
            b"error": error.encode(),
            b"attempts": str(pending.attempt).encode(),
            **{b"original:" + key: value for key, value in pending.fields.items()},
        }
        pipe = self.client.pipeline(transaction=True)
        pipe.xadd(names.dlq_stream(pending.stream, self.group), letter)
        pipe.xack(pending.stream, self.group, pending.entry_id)
        pipe.hdel(names.failures_key(pending.stream, self.group), pending.entry_id)
        pipe.execute()
        log.error(
            "entry dead-lettered",
            extra={"category": "runtime", "event": "dead_lettered", "error_code": "dead_letter"},
        )

    def _tell_dead_lettered(self, event: Event, pending: _Pending, error: str) -> None:
        """Run the dead-letter callback; its failure is logged, the dead letter stands."""
        if self.on_dead_letter is None:
            return
        letter = DeadLettered(
            event, pending.stream, self.group, pending.entry_id, pending.attempt, error
        )
        try:
            self.on_dead_letter(letter)
        except Exception:
            log.exception(
                "dead-letter callback failed",
                extra={
                    "category": "runtime",
                    "event": "dead_letter_callback_failed",
                    "error_code": "dead_letter_callback",
                },
            )

    def _beat(self) -> None:
        """Announce this consumer and refresh its claims until it stops; then withdraw."""
        while True:
            with contextlib.suppress(*CONNECTION_ERRORS):
                self._announcement.renew()
                self.refresh_claims()
            if self.stopping.wait(self.config.heartbeat_s):
                break
        with contextlib.suppress(*CONNECTION_ERRORS):
            self._announcement.withdraw()

    def refresh_claims(self) -> int:
        """Reset the idle time of the entries in hand; returns how many were refreshed."""
        with self._held_lock:
            held = sorted(self._held)
        refreshed = 0
        for stream in {stream for stream, _ in held}:
            ids = [entry_id for s, entry_id in held if s == stream]
            count = self._heartbeat(keys=[stream], args=[self.group, self.name, *ids])
            refreshed += int(str(count))
        return refreshed


def _stream_rows(reply: object) -> list[tuple[str, object]]:
    """XREADGROUP's RESP2 reply as `(stream, rows)` pairs (`events.connect` speaks RESP2)."""
    return [(text(stream), rows) for stream, rows in (reply if isinstance(reply, list) else [])]


def _reclaimed_rows(stream: str, rows: object) -> list[_Pending]:
    found: list[_Pending] = []
    for entry_id, flat, attempt in rows if isinstance(rows, list) else []:
        fields = {raw(flat[i]): raw(flat[i + 1]) for i in range(0, len(flat), 2)}
        found.append(_Pending(stream, text(entry_id), fields, int(attempt)))
    return found
