"""Narrow redis-py's loosely typed replies (bytes or str) into `str` for the read model."""

from __future__ import annotations


def text(value: object) -> str:
    """A string reply as `str`."""
    if isinstance(value, bytes):
        return value.decode()
    if isinstance(value, str):
        return value
    raise TypeError(f"expected a string reply, got {type(value).__name__}")


def text_map(reply: object) -> dict[str, str]:
    """A hash reply (HGETALL) as `dict[str, str]`."""
    if not isinstance(reply, dict):
        raise TypeError(f"expected a hash reply, got {type(reply).__name__}")
    return {text(key): text(value) for key, value in reply.items()}
