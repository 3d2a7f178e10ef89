"""Rebuild: replay the whole log through the projection and reconcile the live read model.

`replay` folds every stream from its first entry into a `MemoryModel` (undecodable entries,
and pointers whose signature does not verify, are skipped, as the live projector
dead-letters them). `rebuild` compares that model with the
live keys (`projections.drift`) and reports the drift: missing, extra and different keys.
Unless verifying, it also repairs the drift (`projections.repair`) while readers keep reading:

- it holds `projector:lock` (a `redis.lock.Lock`, kept alive by a thread) so the live
  projector pauses; every write script checks the lock still holds this rebuild's token,
  atomically with the write;
- each chunk of writes is one atomic script, and all writes happen before any delete: a
  pointer key is only ever SET, or deleted when the log says it is revoked or unknown, so a
  pointer the log has never vanishes;
- finally each checkpoint is set to the last replayed entry of its stream.

`verify` takes no lock and writes nothing; a projector that is still catching up shows as
drift, so verify a quiet system (or one whose projector lag is zero).
"""

from __future__ import annotations

import contextlib
import gc
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field

import redis
from redis.exceptions import LockNotOwnedError
from redis.lock import Lock

from events import (
    FIELD,
    DecodeError,
    PointerRefused,
    SigningKeys,
    blob,
    decode,
    lua_source,
    names,
    unpack,
)
from projections.drift import Comparison, Drift
from projections.projection import MemoryModel, project
from projections.repair import RebuildError, Repair
from projections.trust import admit

_PAGE = lua_source("projections", "pack", "page")
"""One page of a stream, packed: entry id, `event` field (or '' when absent), ..."""


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
    refused: int = 0
    """Pointers left out because their signature did not verify."""


@dataclass
class Replayed:
    """The read model the log implies, and how far each stream was read."""

    model: MemoryModel = field(default_factory=MemoryModel)
    events: int = 0
    skipped: int = 0
    refused: int = 0
    positions: dict[str, str] = field(default_factory=dict)


def replay(client: redis.Redis, signing_keys: SigningKeys, *, batch: int = 2000) -> Replayed:
    """Fold every stream of the log, oldest first, into an in-memory read model.

    Pages come packed (see `events.unpack`), and the next page is fetched by a helper thread
    while this one decodes the current. An entry without an `event` field decodes as such
    (`DecodeError`), and a pointer is verified (`projections.trust`), exactly as in the live
    consumer. The model keeps only each slot's
    winning write, so memory follows the number of runs and tokenizers, not of events.
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
                _fold(page[1::2], replayed, signing_keys)
                replayed.positions[stream] = last
                page = following.result()
    return replayed


@contextmanager
def _collector_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector while folding: the model holds a tuple and strings
    per slot of every record, none of them cyclic, and every collection would walk them all
    again; reference counting still frees everything transient. `bench/rebuild.py
    --gc-effect` prints what the pause saves."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _fold(payloads: list[bytes], replayed: Replayed, signing_keys: SigningKeys) -> None:
    apply = replayed.model.apply
    for payload in payloads:
        try:
            event = decode({FIELD: payload})
        except DecodeError:
            replayed.skipped += 1
            continue
        try:
            admit(event, signing_keys)
        except PointerRefused:
            replayed.refused += 1
            continue
        apply(project(event))
        replayed.events += 1


class RebuildLock:
    """`projector:lock` as a `redis.lock.Lock`, kept alive by a thread until released.

    Acquiring never waits: a held lock means another rebuild runs (`RebuildBusyError`). The
    keeper resets the lock's time to live well inside it, and stops once the lock is no
    longer this rebuild's; from then on the write scripts refuse, and release leaves the new
    holder's lock alone.
    """

    def __init__(self, client: redis.Redis, ttl_ms: int) -> None:
        self.lock = Lock(client, names.PROJECTOR_LOCK, timeout=ttl_ms / 1000, thread_local=False)
        self.ttl_ms = ttl_ms
        self._done = threading.Event()
        self.keeper = threading.Thread(target=self._keep, name="rebuild-lock", daemon=True)

    def __enter__(self) -> bytes:
        """Take the lock; its token, which the write scripts compare with the lock's value."""
        if not self.lock.acquire(blocking=False):
            raise RebuildBusyError("another rebuild holds the projector lock")
        self.keeper.start()
        token = self.lock.local.token
        assert isinstance(token, bytes)  # redis-py keeps the token it wrote as bytes
        return token

    def _keep(self) -> None:
        while not self._done.wait(self.ttl_ms / 3000):
            try:
                self.lock.reacquire()
            except LockNotOwnedError:
                return  # lost: the write scripts refuse from now on

    def __exit__(self, *exc: object) -> None:
        self._done.set()
        self.keeper.join()
        with contextlib.suppress(LockNotOwnedError):
            self.lock.release()


def rebuild_read_model(
    client: redis.Redis,
    signing_keys: SigningKeys,
    *,
    verify: bool = False,
    chunk: int = 500,
    batch: int = 2000,
    lock_ttl_ms: int = 30_000,
) -> RebuildReport:
    """Replay the log; report the drift; unless `verify`, repair it under the projector lock."""
    with _collector_paused():
        if verify:
            replayed = replay(client, signing_keys, batch=batch)
            drift = Comparison(client, replayed.model, chunk).run()
            return _report(replayed, drift, applied=False)
        with RebuildLock(client, lock_ttl_ms) as token:
            replayed = replay(client, signing_keys, batch=batch)
            repair = Repair(client, token, chunk)
            drift = repair.run(Comparison(client, replayed.model, chunk))
            repair.set_checkpoints(replayed.positions)
        return _report(replayed, drift, applied=True)


def _report(replayed: Replayed, drift: Drift, *, applied: bool) -> RebuildReport:
    return RebuildReport(
        replayed.events, replayed.skipped, replayed.positions, drift, applied, replayed.refused
    )
