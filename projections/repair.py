"""Repair: write a comparison's repairs into the live read model, only while holding the lock.

Every write script starts with `owned.lua`: it checks that `projector:lock` still holds this
rebuild's token, atomically with the writes (`LOCKLOST` otherwise), so a rebuild whose lock
expired never races the projector it was pausing. `write.lua` replaces a chunk's hashes
whole and sets its pointers and index scores in one atomic step (a reader never sees a hash
half-written); `delete.lua` removes keys and index members, and runs only after every write,
so a pointer the log has is only ever set, never deleted and written again.
"""

from __future__ import annotations

import json
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import closing

import redis

from events import lua_source, names
from projections.drift import Comparison, Deletes, Drift, Writes, chunks

LOCK_LOST = "LOCKLOST"

_WRITE = lua_source("projections", "owned", "write")
"""Replace a chunk's hashes, set its pointers and index scores, if the lock is still ours."""
_DELETE = lua_source("projections", "owned", "delete")
"""Delete keys and remove index members, if the lock is still ours."""
_CHECKPOINTS = lua_source("projections", "owned", "checkpoints")
"""Set (or drop) each stream's projector checkpoint, if the lock is still ours."""


class RebuildError(RuntimeError):
    """A rebuild could not write its repairs."""


class LockLostError(RebuildError):
    """The projector lock expired under the rebuild; it stopped before writing more."""


class Repair:
    """Writes repairs on behalf of the rebuild whose lock token is `token`."""

    def __init__(self, client: redis.Redis, token: bytes, chunk: int = 500) -> None:
        self.token = token
        self.chunk = chunk
        self._write = client.register_script(_WRITE)
        self._delete = client.register_script(_DELETE)
        self._checkpoints = client.register_script(_CHECKPOINTS)

    def run(self, comparison: Comparison) -> Drift:
        """Run `comparison`, writing its repairs; report the drift it found.

        A helper thread writes each chunk's repairs while the next chunk is compared; writes
        stay in chunk order, one at a time, and all of them land before any delete.
        """
        with (
            ThreadPoolExecutor(max_workers=1, thread_name_prefix="repair") as pool,
            closing(comparison.writes()) as pending,
        ):
            writing: Future[None] | None = None
            for writes in pending:
                if writing is not None:
                    writing.result()
                writing = pool.submit(self.write, writes)
            if writing is not None:
                writing.result()
        self.delete(comparison.deletes())
        return comparison.drift

    def write(self, writes: Writes) -> None:
        """Write one chunk's repairs atomically."""
        self._owned(self._write, [names.PROJECTOR_LOCK], [names.RUN_INDEX, writes.document()])

    def delete(self, deletes: Deletes) -> None:
        """Remove keys, then index members, a chunk at a time."""
        for keys in chunks(deletes.keys, self.chunk):
            self._remove(keys, [])
        for members in chunks(deletes.members, self.chunk):
            self._remove([], members)

    def _remove(self, keys: list[str], members: list[str]) -> None:
        doc = json.dumps({"k": keys, "m": members})
        self._owned(self._delete, [names.PROJECTOR_LOCK], [names.RUN_INDEX, doc])

    def set_checkpoints(self, positions: dict[str, str]) -> None:
        """Set each stream's checkpoint to its last replayed entry (drop it for an empty one)."""
        keys = [names.checkpoint_key(names.PROJECTOR_GROUP, s) for s in names.ALL_STREAMS]
        ids = [positions.get(stream, "") for stream in names.ALL_STREAMS]
        self._owned(self._checkpoints, [names.PROJECTOR_LOCK, *keys], ids)

    def _owned(self, script: redis.commands.core.Script, keys: list[str], args: list[str]) -> None:
        """Run a write script with the token first; `LockLostError` when the lock is gone."""
        try:
            script(keys=keys, args=[self.token, *args])
        except redis.ResponseError as error:
            lost = str(error).startswith(LOCK_LOST)
            raise (LockLostError if lost else RebuildError)(str(error)) from error
