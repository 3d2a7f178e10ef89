"""Narrow redis-py's loosely typed replies into the shapes the log works with.

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
