"""Narrow redis-py's loosely typed replies into the precise shapes the code works with.

redis-py annotates replies as unions of bytes, str and None; these helpers turn them into
one precise type, raising `TypeError` on a reply no engine should send.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

Fields = dict[bytes, bytes]


def text(value: object) -> str:
    """A reply as `str`."""
    if isinstance(value, bytes):
        return value.decode()
    if isinstance(value, str):
        return value
    raise TypeError(f"expected a string reply, got {type(value).__name__}")


def raw(value: object) -> bytes:
    """A reply as `bytes`."""
    if isinstance(value, bytes):
        return value
    if isinstance(value, str):
        return value.encode()
    raise TypeError(f"expected a string reply, got {type(value).__name__}")


def text_map(reply: object) -> dict[str, str]:
    """A hash reply (HGETALL) as `dict[str, str]`."""
    if not isinstance(reply, dict):
        raise TypeError(f"expected a hash reply, got {type(reply).__name__}")
    return {text(key): text(value) for key, value in reply.items()}


def fields(value: object) -> Fields:
    """A stream entry's field map (an empty one for an entry deleted while pending)."""
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise TypeError(f"expected a field map, got {type(value).__name__}")
    return {raw(key): raw(item) for key, item in value.items()}


def entries(rows: object) -> list[tuple[str, Fields]]:
    """A list of `(entry_id, fields)` from an XRANGE / XREADGROUP / XAUTOCLAIM reply."""
    if rows is None:
        return []
    if not isinstance(rows, Iterable):
        raise TypeError(f"expected a list of entries, got {type(rows).__name__}")
    return [(text(entry_id), fields(values)) for entry_id, values in rows]


def blob(reply: object) -> bytes:
    """A packed reply as bytes (an empty one for anything else)."""
    return reply if isinstance(reply, bytes) else b""


def unpack(packed: bytes) -> list[bytes]:
    """The items of a reply a script packed into one string: `<length>:<bytes>` per item.

    Scripts that return many items (a rebuild's pages) pack them so the client splits one
    bulk string by slicing instead of parsing a reply per item in pure Python.
    """
    items: list[bytes] = []
    at, end = 0, len(packed)
    while at < end:
        colon = packed.index(b":", at)
        start = colon + 1
        stop = start + int(packed[at:colon])
        items.append(packed[start:stop])
        at = stop
    return items
