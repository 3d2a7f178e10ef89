"""Narrow redis-py's loosely typed replies (bytes or str) into `str` for the read model."""

from __future__ import annotations

from events.wire import text

__all__ = ["text", "text_map"]


def text_map(reply: object) -> dict[str, str]:
    """A hash reply (HGETALL) as `dict[str, str]`."""
    if not isinstance(reply, dict):
        raise TypeError(f"expected a hash reply, got {type(reply).__name__}")
    return {text(key): text(value) for key, value in reply.items()}
