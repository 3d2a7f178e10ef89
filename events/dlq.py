"""Dead letters: list them, and replay them into their original stream in bounded chunks.

A replayed entry is appended again (a new entry id), so every group of that stream sees it
once more; that is safe because every handler is idempotent per `event_id`. It is appended as
it was, past the log's append script (no new event id to refuse: the entry is the one the log
already holds, delivered again). Before a letter goes back, `replay` hands it to `revive`: the
composition root uses it to withdraw the failure the dead-lettering caused, so the stages see
the run as not finished when the entry arrives again.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import redis
from redis.typing import EncodableT, FieldT

from events import names
from events.replies import Fields, entries, text

ORIGINAL_PREFIX = b"original:"


@dataclass(frozen=True)
class DeadLetter:
    """One dead-lettered entry: where it came from, why, and after how many deliveries."""

    letter_id: str
    original_stream: str
    original_id: str
    group: str
    error: str
    attempts: int
    original_fields: Fields


def _letter(letter_id: str, fields: Fields) -> DeadLetter:
    original = {
        key.removeprefix(ORIGINAL_PREFIX): value
        for key, value in fields.items()
        if key.startswith(ORIGINAL_PREFIX)
    }
    return DeadLetter(
        letter_id=letter_id,
        original_stream=fields.get(b"original_stream", b"").decode(errors="replace"),
        original_id=fields.get(b"original_id", b"").decode(errors="replace"),
        group=fields.get(b"group", b"").decode(errors="replace"),
        error=fields.get(b"error", b"").decode(errors="replace"),
        attempts=int(fields.get(b"attempts", b"0") or b"0"),
        original_fields=original,
    )


def list_dead_letters(
    client: redis.Redis, stream: str, group: str, *, count: int = 100
) -> list[DeadLetter]:
    """The oldest `count` dead letters of `group` on `stream`."""
    rows = client.xrange(names.dlq_stream(stream, group), "-", "+", count)
    return [_letter(letter_id, fields) for letter_id, fields in entries(rows)]


def dead_letter_streams(client: redis.Redis) -> list[str]:
    """Every dead-letter stream that exists."""
    return sorted(text(key) for key in client.scan_iter(match="dlq:*", _type="stream"))


Revive = Callable[[DeadLetter], None]
"""Called with each dead letter before it goes back; must be idempotent (see `replay`)."""


def replay(
    client: redis.Redis,
    stream: str,
    group: str,
    *,
    chunk: int = 100,
    revive: Revive | None = None,
) -> int:
    """Move every dead letter back to `stream`, `chunk` at a time; returns how many moved.

    Each chunk is one transaction: the entries are appended to the source stream and
    removed from the dead-letter stream together, so a crash never loses or doubles one.
    `revive` runs for each letter of a chunk before its transaction, so what it appends is in
    the log before the entry is delivered again; a crash in between runs it again for the
    same letter on the next replay, hence idempotent.
    """
    dlq = names.dlq_stream(stream, group)
    moved = 0
    while letters := list_dead_letters(client, stream, group, count=chunk):
        if revive is not None:
            for letter in letters:
                revive(letter)
        pipe = client.pipeline(transaction=True)
        for letter in letters:
            fields: dict[FieldT, EncodableT] = dict(letter.original_fields.items())
            pipe.xadd(stream, fields or {b"event": b""})
            pipe.xdel(dlq, letter.letter_id)
        pipe.execute()
        moved += len(letters)
    return moved
