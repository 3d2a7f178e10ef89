"""Replies packed into one string by the engine: `<length>:<bytes>` per item, concatenated.

At a million entries the client's parsing of RESP replies (a few microseconds per bulk
string, in pure Python) costs as much as decoding the events. The rebuild's scripts
therefore return a whole page as one bulk string, which `unpack` splits with slicing.
"""

from __future__ import annotations

PACK = """
local function pack(items)
  local parts = {}
  for i, item in ipairs(items) do parts[i] = #item .. ':' .. item end
  return table.concat(parts)
end
"""
"""The Lua side: prepend to a script that returns `pack(list of strings)`."""

SCAN = (
    PACK
    + """
local reply = redis.call('SCAN', ARGV[1], 'MATCH', ARGV[2], 'COUNT', ARGV[3])
return {reply[1], pack(reply[2])}
"""
)
"""One SCAN page: the next cursor and the matching keys, packed."""

MEMBERS = (
    PACK
    + """
return pack(redis.call('ZRANGE', KEYS[1], ARGV[1], ARGV[2]))
"""
)
"""Members of a sorted set between two ranks, packed."""


def unpack(blob: bytes) -> list[bytes]:
    """The items of a packed reply."""
    items: list[bytes] = []
    at, end = 0, len(blob)
    while at < end:
        colon = blob.index(b":", at)
        start = colon + 1
        stop = start + int(blob[at:colon])
        items.append(blob[start:stop])
        at = stop
    return items


def blob(reply: object) -> bytes:
    """A packed reply as bytes (an empty one for anything else)."""
    return reply if isinstance(reply, bytes) else b""
