"""Rebuild: replay the whole log through the projection and reconcile the live read model.

`replay` folds every stream from its first entry into a `MemoryModel` (undecodable entries
are skipped, as the live projector dead-letters them). `rebuild` compares that model with the
live keys (`projections.reconcile`) and reports the drift: missing, extra and different keys.
Unless verifying, it also repairs the drift while readers keep reading:

- it holds `projector:lock` (refreshed by a thread) so the live projector pauses; every
  write script checks the lock is still this rebuild's, atomically with the write;
- each chunk of writes is one atomic script (a status hash is replaced whole, never seen
  half-written), and all writes happen before any delete: a pointer key is only ever SET, or
  deleted when the log says it is revoked or unknown, so a pointer the log has never vanishes;
- finally each checkpoint is set to the last replayed entry of its stream.

`verify` takes no lock and writes nothing; a projector that is still catching up shows as
drift, so verify a quiet system (or one whose projector lag is zero).
"""

from __future__ import annotations

import gc
import threading
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field

import redis

from events import FIELD, DecodeError, decode, names
from projections.effects import project
from projections.model import MemoryModel
from projections.packed import PACK, blob, unpack
from projections.reconcile import Drift, RebuildError, Reconciler

_REFRESH = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 0
"""
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


class RebuildBusyError(RebuildError):
    """Another rebuild holds the projector lock."""


@dataclass(frozen=True)
class RebuildReport:
    """What a rebuild replayed, what drift it found, and whether it repaired it."""

    events: int
    skipped: int
    positions: dict[str, str]
    drift: Drift
    applied: bool


@dataclass
class Replayed:
    """The read model the log implies, and how far each stream was read."""

    model: MemoryModel = field(default_factory=MemoryModel)
    events: int = 0
    skipped: int = 0
    positions: dict[str, str] = field(default_factory=dict)


_PAGE = (
    PACK
    + """
local rows = redis.call('XRANGE', KEYS[1], ARGV[1], '+', 'COUNT', ARGV[2])
local items = {}
for _, row in ipairs(rows) do
  local payload = ''
  for i = 1, #row[2], 2 do
    if row[2][i] == ARGV[3] then payload = row[2][i + 1] end
  end
  items[#items + 1] = row[1]
  items[#items + 1] = payload
end
return pack(items)
"""
)
"""One page of a stream, packed: entry id, `event` field (or '' when absent), ..."""


def replay(client: redis.Redis, *, batch: int = 2000) -> Replayed:
    """Fold every stream of the log, oldest first, into an in-memory read model.

    Pages come packed from `_PAGE` (see `projections.packed`), and the next page is fetched
    by a helper thread while this one decodes the current. An entry without an `event`
    field decodes as such (`DecodeError`), exactly as in the live consumer. The model keeps
    only each slot's winning write, so memory follows the number of runs and tokenizers, not
    of events.
    """
    script = client.register_script(_PAGE)
    replayed = Replayed()

    def fetch(stream: str, start: str) -> list[bytes]:
        return unpack(blob(script(keys=[stream], args=[start, batch, FIELD])))

    with _collector_paused(), ThreadPoolExecutor(1, thread_name_prefix="replay") as pool:
        for stream in names.ALL_STREAMS:
            page = fetch(stream, "-")
            while page:
                last = page[-2].decode()
                following = pool.submit(fetch, stream, "(" + last)
                _fold(page[1::2], replayed)
                replayed.positions[stream] = last
                page = following.result()
    return replayed


@contextmanager
def _collector_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector while folding: the model is millions of acyclic
    tuples and strings, and every collection would walk them all again (a third of a
    million-event replay); reference counting still frees everything transient."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _fold(payloads: list[bytes], replayed: Replayed) -> None:
    apply = replayed.model.apply
    for payload in payloads:
        try:
            event = decode({FIELD: payload})
        except DecodeError:
            replayed.skipped += 1
            continue
        apply(project(event))
        replayed.events += 1


class _Lock:
    """`projector:lock`, held with a token and kept alive by a thread until released."""

    def __init__(self, client: redis.Redis, ttl_ms: int) -> None:
        self.client = client
        self.ttl_ms = ttl_ms
        self.token = uuid.uuid4().hex
        self._done = threading.Event()
        self._refresh = client.register_script(_REFRESH)
        self._release = client.register_script(_RELEASE)
        self._thread = threading.Thread(target=self._keep, name="rebuild-lock", daemon=True)

    def __enter__(self) -> str:
        if not self.client.set(names.PROJECTOR_LOCK, self.token, nx=True, px=self.ttl_ms):
            raise RebuildBusyError("another rebuild holds the projector lock")
        self._thread.start()
        return self.token

    def _keep(self) -> None:
        while not self._done.wait(self.ttl_ms / 3000):
            if not self._refresh(keys=[names.PROJECTOR_LOCK], args=[self.token, self.ttl_ms]):
                return  # lost: the write scripts refuse from now on

    def __exit__(self, *exc: object) -> None:
        self._done.set()
        self._thread.join()
        self._release(keys=[names.PROJECTOR_LOCK], args=[self.token])


def rebuild(
    client: redis.Redis,
    *,
    verify: bool = False,
    chunk: int = 500,
    batch: int = 2000,
    lock_ttl_ms: int = 30_000,
) -> RebuildReport:
    """Replay the log; report the drift; unless `verify`, repair it under the projector lock."""
    with _collector_paused():
        if verify:
            replayed = replay(client, batch=batch)
            drift = Reconciler(client, replayed.model, None, chunk).run()
            return RebuildReport(
                replayed.events, replayed.skipped, replayed.positions, drift, applied=False
            )
        with _Lock(client, lock_ttl_ms) as token:
            replayed = replay(client, batch=batch)
            reconciler = Reconciler(client, replayed.model, token, chunk)
            drift = reconciler.run()
            reconciler.set_checkpoints(replayed.positions)
        return RebuildReport(
            replayed.events, replayed.skipped, replayed.positions, drift, applied=True
        )
