"""Drift: where the live read model differs from the one the log implies, and what repairs it.

A `Comparison` reads the live keys a chunk of records at a time through `read.lua`, which
returns each record's hash as one canonical string (fields sorted bytewise, each length
prefixed), its pointer and its index score, packed: a chunk costs one round trip and little
client CPU. Python renders the same string from the replayed model and compares. Along the
way it collects the repairs: per chunk the hashes, pointers and index scores to write
(`Writes`), and at the end the keys and index members to remove (`Deletes`). Only keys the
projector could have written are ever reported or removed. Writing is `projections.repair`'s.
"""

from __future__ import annotations

import json
from collections.abc import Generator, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TypeVar

import redis
from pydantic import TypeAdapter, ValidationError

from events import ModelName, RunId, blob, lua_source, names, text, unpack
from projections.projection import Kind, MemoryModel, Record
from projections.store import artifact_key, status_key

T = TypeVar("T")
_RUN_ID: TypeAdapter[str] = TypeAdapter(RunId)
_ALIAS_NAME: TypeAdapter[str] = TypeAdapter(ModelName)

_READ = lua_source("projections", "bytewise", "pack", "read")
"""The live hash (canonical), pointer and index score of each record of a chunk, packed."""
_SCAN = lua_source("projections", "pack", "scan")
"""One SCAN page: the next cursor and the matching keys, packed."""
_MEMBERS = lua_source("projections", "pack", "members")
"""Members of the run index between two ranks, packed."""


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


@dataclass(frozen=True)
class Writes:
    """The repairs of one chunk: hashes replaced whole, pointers set, run index scores."""

    hashes: list[tuple[str, list[str]]] = field(default_factory=list)
    pointers: list[tuple[str, str]] = field(default_factory=list)
    scores: list[str] = field(default_factory=list)
    """Flat `score, member, ...`, as ZADD takes them."""

    def __bool__(self) -> bool:
        return bool(self.hashes or self.pointers or self.scores)

    def document(self) -> str:
        """The JSON document `write.lua` reads."""
        return json.dumps({"h": self.hashes, "s": self.pointers, "z": self.scores})


@dataclass(frozen=True)
class Deletes:
    """Keys the log does not imply, and run index members without a requested run."""

    keys: list[str] = field(default_factory=list)
    members: list[str] = field(default_factory=list)


def canonical(fields: dict[str, str]) -> bytes:
    """A hash as `read.lua` renders it: fields sorted bytewise, lengths in bytes."""
    parts: list[bytes] = []
    for name, value in sorted((k.encode(), v.encode()) for k, v in fields.items()):
        parts.append(b"%d:%s%d:%s" % (len(name), name, len(value), value))
    return b"".join(parts)


class Comparison:
    """One comparison of a replayed model with the live keys.

    Use `writes` to the end, then `deletes`; `drift` then holds every difference found.
    `run` does all three, writing nothing (a verify).
    """

    def __init__(self, client: redis.Redis, model: MemoryModel, chunk: int = 500) -> None:
        self.client = client
        self.model = model
        self.chunk = chunk
        self.missing: list[str] = []
        self.extra: list[str] = []
        self.different: list[str] = []
        self._deletes = Deletes()
        self._live_index = 0
        self._index_writes = 0
        self._read = client.register_script(_READ)
        self._scan = client.register_script(_SCAN)
        self._zrange = client.register_script(_MEMBERS)

    @property
    def drift(self) -> Drift:
        """What differed, so far."""
        return Drift(tuple(self.missing), tuple(self.extra), tuple(self.different))

    def run(self) -> Drift:
        """Compare everything and report the drift; repair nothing."""
        for _ in self.writes():
            pass
        self.deletes()
        return self.drift

    def writes(self) -> Generator[Writes, None, None]:
        """Compare every record; yield the repairs of each chunk that has any.

        A helper thread reads the next chunk's live state while this one compares, so the
        engine and the client work at the same time.
        """
        self._live_index = int(self.client.zcard(names.RUN_INDEX))
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="drift") as pool:
            pieces = chunks(self.model.items(), self.chunk)
            chunk = next(pieces, None)
            reading = pool.submit(self._live, chunk or [])
            while chunk is not None:
                live = reading.result()
                following = next(pieces, None)
                reading = pool.submit(self._live, following or [])
                writes = self._compare(chunk, live)
                if writes:
                    yield writes
                chunk = following

    def deletes(self) -> Deletes:
        """After `writes`: the keys and index members the log does not imply."""
        self._scan_extras()
        self._note_index()
        return self._deletes

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

    def _compare(self, chunk: list[tuple[Kind, str, Record]], live: list[str]) -> Writes:
        """Note the drift of `chunk`; its repairs."""
        writes = Writes()
        for at, (kind, subject, record) in enumerate(chunk):
            fields = record.fields(kind)
            live_hash, live_pointer, live_score = live[3 * at : 3 * at + 3]
            if not live_hash or canonical(fields).decode() != live_hash:
                key = status_key(kind, subject)
                (self.different if live_hash else self.missing).append(key)
                writes.hashes.append((key, [part for pair in fields.items() for part in pair]))
            self._pointer(kind, subject, record.pointer(kind), live_pointer, writes)
            score = record.index_score()
            if score is not None and (not live_score or float(live_score[1:]) != score):
                writes.scores.extend((str(score), subject))
        self._index_writes += len(writes.scores) // 2
        return writes

    def _pointer(
        self, kind: Kind, subject: str, expected: str | None, live: str, writes: Writes
    ) -> None:
        key = artifact_key(kind, subject)
        if live == ("" if expected is None else f"={expected}"):
            return
        if expected is None:
            self.extra.append(key)
            self._deletes.keys.append(key)
            return
        (self.different if live else self.missing).append(key)
        writes.pointers.append((key, expected))

    def _scan_extras(self) -> None:
        templates: tuple[tuple[Kind, str], ...] = (
            ("run", names.run_status_key("\0")),
            ("run", names.run_artifact_key("\0")),
            ("tokenizer", names.tokenizer_status_key("\0")),
            ("tokenizer", names.tokenizer_artifact_key("\0")),
            ("alias", names.alias_status_key("\0")),
            ("alias", names.alias_run_key("\0")),
        )
        for kind, template in templates:
            prefix, suffix = template.split("\0")
            for key in self._keys(f"{prefix}*{suffix}"):
                subject = key[len(prefix) : len(key) - len(suffix)]
                if _is_subject(kind, subject) and self.model.get(kind, subject) is None:
                    self.extra.append(key)
                    self._deletes.keys.append(key)
        for member in self._members():
            record = self.model.get("run", member)
            if record is None or record.index_score() is None:
                self._deletes.members.append(member)

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

    def _note_index(self) -> None:
        """Report the run index once, as missing, extra or different, if it needs any repair."""
        if not (self._index_writes or self._deletes.members):
            return
        records = self.model.records["run"].values()
        scored = sum(1 for record in records if record.index_score() is not None)
        if self._live_index == 0:
            self.missing.append(names.RUN_INDEX)
        elif scored == 0:
            self.extra.append(names.RUN_INDEX)
        else:
            self.different.append(names.RUN_INDEX)


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


def _is_subject(kind: Kind, subject: str) -> bool:
    """Only keys the projector could have written are ever reported or deleted: an id, or
    for an alias `model@alias`."""
    parts = subject.split("@") if kind == "alias" else [subject]
    adapter = _ALIAS_NAME if kind == "alias" else _RUN_ID
    try:
        for part in parts:
            adapter.validate_python(part)
    except ValidationError:
        return False
    return len(parts) == (2 if kind == "alias" else 1)
