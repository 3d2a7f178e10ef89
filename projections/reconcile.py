"""Compare a replayed `MemoryModel` with the live keys and, holding the lock, write the drift.

Both directions go through Lua so a chunk of records costs one round trip and little client
CPU (redis-py's packing and parsing of a million small commands would dominate a rebuild):

- `_READ` returns, per record, its hash as one canonical string (fields sorted bytewise, each
  length-prefixed), its pointer and its index score; Python builds the same string from the
  model and compares.
- `_WRITE` replaces hashes whole, sets pointers and index scores for a chunk in one atomic
  step, and `_DELETE` removes keys and index members: both first check that the rebuild still
  owns `projector:lock` (`LOCKLOST` otherwise), so a rebuild whose lock expired never races
  the projector it was pausing.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import TypeVar

import redis
from pydantic import TypeAdapter, ValidationError

from events import RunId, names
from projections.effects import Kind
from projections.model import MemoryModel, Record, artifact_key, status_key
from projections.packed import MEMBERS, PACK, SCAN, blob, unpack
from projections.replies import text

T = TypeVar("T")
_RUN_ID: TypeAdapter[str] = TypeAdapter(RunId)
LOCK_LOST = "LOCKLOST"

_BYTEWISE = """
local function lt(a, b)
  for i = 1, math.min(#a, #b) do
    local x, y = string.byte(a, i), string.byte(b, i)
    if x ~= y then return x < y end
  end
  return #a < #b
end
"""

_READ = (
    _BYTEWISE
    + PACK
    + """
-- KEYS: status key, pointer key, per record; ARGV[1]: the run index; ARGV[1 + n]: run id or ''
local out = {}
for i = 1, #KEYS, 2 do
  local flat = redis.call('HGETALL', KEYS[i])
  local fields, values = {}, {}
  for j = 1, #flat, 2 do
    fields[#fields + 1] = flat[j]
    values[flat[j]] = flat[j + 1]
  end
  table.sort(fields, lt)
  local parts = {}
  for _, f in ipairs(fields) do
    parts[#parts + 1] = #f .. ':' .. f .. #values[f] .. ':' .. values[f]
  end
  out[#out + 1] = table.concat(parts)
  local pointer = redis.call('GET', KEYS[i + 1])
  out[#out + 1] = pointer and ('=' .. pointer) or ''
  local member = ARGV[(i + 1) / 2 + 1]
  local score = member ~= '' and redis.call('ZSCORE', ARGV[1], member)
  out[#out + 1] = score and ('=' .. score) or ''
end
return pack(out)
"""
)

_OWNED = """
if redis.call('GET', KEYS[1]) ~= ARGV[1] then
  return redis.error_reply('LOCKLOST the projector lock is no longer held by this rebuild')
end
"""

_WRITE = (
    _OWNED
    + """
-- KEYS[1]: the lock; ARGV: token, run index, JSON {h: [[key, [f, v, ...]]], s: [[key, v]],
-- z: [score, member, ...]}
local doc = cjson.decode(ARGV[3])
for _, h in ipairs(doc.h) do
  redis.call('DEL', h[1])
  redis.call('HSET', h[1], unpack(h[2]))
end
for _, s in ipairs(doc.s) do redis.call('SET', s[1], s[2]) end
if #doc.z > 0 then redis.call('ZADD', ARGV[2], unpack(doc.z)) end
return 1
"""
)

_DELETE = (
    _OWNED
    + """
-- KEYS[1]: the lock; ARGV: token, run index, JSON {k: [key, ...], m: [member, ...]}
local doc = cjson.decode(ARGV[3])
if #doc.k > 0 then redis.call('DEL', unpack(doc.k)) end
if #doc.m > 0 then redis.call('ZREM', ARGV[2], unpack(doc.m)) end
return 1
"""
)

_CHECKPOINTS = (
    _OWNED
    + """
-- KEYS[1]: the lock; then checkpoint keys; ARGV: token, then an entry id or '' per checkpoint
for i = 2, #KEYS do
  if ARGV[i] ~= '' then redis.call('SET', KEYS[i], ARGV[i]) else redis.call('DEL', KEYS[i]) end
end
return 1
"""
)


class RebuildError(RuntimeError):
    """A rebuild could not write its repairs."""


class LockLostError(RebuildError):
    """The projector lock expired under the rebuild; it stopped before writing more."""


@dataclass(frozen=True)
class Drift:
    """Keys where the live read model differs from the log's."""

    missing: tuple[str, ...] = ()
    extra: tuple[str, ...] = ()
    different: tuple[str, ...] = ()

    @property
    def clean(self) -> bool:
        """True when live and replayed read models agree."""
        return not (self.missing or self.extra or self.different)


def canonical(fields: dict[str, str]) -> bytes:
    """A hash as `_READ` renders it: fields sorted bytewise, lengths in bytes."""
    parts: list[bytes] = []
    for name, value in sorted((k.encode(), v.encode()) for k, v in fields.items()):
        parts.append(b"%d:%s%d:%s" % (len(name), name, len(value), value))
    return b"".join(parts)


class Reconciler:
    """One comparison of a replayed model with the live keys; writes only with a lock token."""

    def __init__(
        self, client: redis.Redis, model: MemoryModel, token: str | None, chunk: int = 500
    ) -> None:
        self.client = client
        self.model = model
        self.token = token
        self.chunk = chunk
        self.missing: list[str] = []
        self.extra: list[str] = []
        self.different: list[str] = []
        self._deletes: list[str] = []
        self._index_writes = 0
        self._index_removals: list[str] = []
        self._read = client.register_script(_READ)
        self._write = client.register_script(_WRITE)
        self._delete = client.register_script(_DELETE)
        self._checkpoints = client.register_script(_CHECKPOINTS)
        self._scan = client.register_script(SCAN)
        self._zrange = client.register_script(MEMBERS)

    def run(self) -> Drift:
        """Compare everything; write the repairs when holding the lock; report the drift.

        Two helper threads keep the engine busy while this one compares: the next chunk's
        live state is read, and the previous chunk's repairs written, in the background (the
        engine and the client each get a core). Writes stay in chunk order, one at a time.
        """
        live_index = int(self.client.zcard(names.RUN_INDEX))
        scored = sum(1 for record in self.model.records["run"].values() if record.score is not None)
        with ThreadPoolExecutor(max_workers=2, thread_name_prefix="reconcile") as pool:
            pieces = chunks(self.model.items(), self.chunk)
            chunk = next(pieces, None)
            reading = pool.submit(self._live, chunk or [])
            writing: Future[None] | None = None
            while chunk is not None:
                live = reading.result()
                following = next(pieces, None)
                reading = pool.submit(self._live, following or [])
                doc = self._compare(chunk, live)
                if writing is not None:
                    writing.result()
                writing = pool.submit(self._apply, self._write, doc) if doc else None
                chunk = following
            if writing is not None:
                writing.result()
        self._scan_extras()
        self._note_index(live_index, scored)
        self._remove()
        return Drift(tuple(self.missing), tuple(self.extra), tuple(self.different))

    def _live(self, chunk: list[tuple[Kind, str, Record]]) -> list[str]:
        """Hash (canonical), pointer and index score of each record of `chunk`, live."""
        if not chunk:
            return []
        keys: list[str] = []
        members: list[str] = []
        for kind, subject, _ in chunk:
            keys += [status_key(kind, subject), artifact_key(kind, subject)]
            members.append(subject if kind == "run" else "")
        reply = self._read(keys=keys, args=[names.RUN_INDEX, *members])
        return [value.decode() for value in unpack(blob(reply))]

    def _compare(
        self, chunk: list[tuple[Kind, str, Record]], live: list[str]
    ) -> dict[str, list[object]]:
        """Note the drift of `chunk`; the repairs as a `_WRITE` document (empty: none)."""
        hashes: list[tuple[str, list[str]]] = []
        pointers: list[list[str]] = []
        scores: list[str] = []
        for at, (kind, subject, record) in enumerate(chunk):
            fields = record.fields(kind)
            live_hash, live_pointer, live_score = live[3 * at : 3 * at + 3]
            if not live_hash or canonical(fields).decode() != live_hash:
                key = status_key(kind, subject)
                (self.different if live_hash else self.missing).append(key)
                hashes.append((key, [part for pair in fields.items() for part in pair]))
            self._pointer(kind, subject, record.file_id(), live_pointer, pointers)
            if record.score is not None and (
                not live_score or float(live_score[1:]) != record.score
            ):
                scores += [str(record.score), subject]
        self._index_writes += len(scores) // 2
        if hashes or pointers or scores:
            return {"h": list(hashes), "s": list(pointers), "z": list(scores)}
        return {}

    def _pointer(
        self,
        kind: Kind,
        subject: str,
        expected: str | None,
        live: str,
        writes: list[list[str]],
    ) -> None:
        key = artifact_key(kind, subject)
        if live == ("" if expected is None else f"={expected}"):
            return
        if expected is None:
            self.extra.append(key)
            self._deletes.append(key)
            return
        (self.different if live else self.missing).append(key)
        writes.append([key, expected])

    def _scan_extras(self) -> None:
        templates: tuple[tuple[Kind, str], ...] = (
            ("run", names.run_status_key("\0")),
            ("run", names.run_artifact_key("\0")),
            ("tokenizer", names.tokenizer_status_key("\0")),
            ("tokenizer", names.tokenizer_artifact_key("\0")),
        )
        for kind, template in templates:
            prefix, suffix = template.split("\0")
            for key in self._keys(f"{prefix}*{suffix}"):
                subject = key[len(prefix) : len(key) - len(suffix)]
                if _is_id(subject) and self.model.get(kind, subject) is None:
                    self.extra.append(key)
                    self._deletes.append(key)
        for member in self._members():
            record = self.model.get("run", member)
            if record is None or record.score is None:
                self._index_removals.append(member)

    def _keys(self, pattern: str) -> Iterator[str]:
        cursor = "0"
        while True:
            reply = self._scan(args=[cursor, pattern, 10 * self.chunk])
            assert isinstance(reply, list)
            cursor = text(reply[0])
            yield from (key.decode() for key in unpack(blob(reply[1])))
            if cursor == "0":
                return

    def _members(self) -> Iterator[str]:
        start = 0
        while page := unpack(
            blob(self._zrange(keys=[names.RUN_INDEX], args=[start, start + 10 * self.chunk - 1]))
        ):
            yield from (member.decode() for member in page)
            start += len(page)

    def _note_index(self, live_size: int, scored: int) -> None:
        if not (self._index_writes or self._index_removals):
            return
        if live_size == 0:
            self.missing.append(names.RUN_INDEX)
        elif scored == 0:
            self.extra.append(names.RUN_INDEX)
        else:
            self.different.append(names.RUN_INDEX)

    def _remove(self) -> None:
        for keys in chunks(iter(self._deletes), self.chunk):
            self._apply(self._delete, {"k": keys, "m": []})
        for members in chunks(iter(self._index_removals), self.chunk):
            self._apply(self._delete, {"k": [], "m": members})

    def _apply(
        self, script: redis.commands.core.Script, doc: Mapping[str, Sequence[object]]
    ) -> None:
        if self.token is None:
            return
        _owned(script, [names.PROJECTOR_LOCK], [self.token, names.RUN_INDEX, json.dumps(doc)])

    def set_checkpoints(self, positions: dict[str, str]) -> None:
        """Set each stream's checkpoint to its last replayed entry (drop it for an empty one)."""
        assert self.token is not None
        keys = [names.checkpoint_key(names.PROJECTOR_GROUP, s) for s in names.ALL_STREAMS]
        ids = [positions.get(stream, "") for stream in names.ALL_STREAMS]
        _owned(self._checkpoints, [names.PROJECTOR_LOCK, *keys], [self.token, *ids])


def _owned(script: redis.commands.core.Script, keys: list[str], args: list[str]) -> None:
    try:
        script(keys=keys, args=args)
    except redis.ResponseError as error:
        lost = str(error).startswith(LOCK_LOST)
        raise (LockLostError if lost else RebuildError)(str(error)) from error


def chunks(items: Iterable[T], size: int) -> Iterator[list[T]]:
    """`items` in lists of `size` (the last may be shorter)."""
    chunk: list[T] = []
    for item in items:
        chunk.append(item)
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def _is_id(subject: str) -> bool:
    """Only keys the projector could have written are ever reported or deleted."""
    try:
        _RUN_ID.validate_python(subject)
    except ValidationError:
        return False
    return True
