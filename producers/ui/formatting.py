"""How numbers, times and sizes read on the page (short, fixed-width friendly)."""

from __future__ import annotations

from datetime import UTC, datetime

from pydantic import JsonValue

DASH = "\u2013"


def duration(seconds: float | None) -> str:
    """`12.3 s`, `4m 05s`, `2h 03m`; a dash when unknown."""
    if seconds is None:
        return DASH
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, rest = divmod(int(seconds), 60)
    if minutes < 60:
        return f"{minutes}m {rest:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h {minutes:02d}m"


def loss(value: float | None) -> str:
    """Four significant digits; a dash when unknown."""
    return DASH if value is None else f"{value:.4g}"


def size(count: int | None) -> str:
    """Bytes in binary units: `512 B`, `1.5 KiB`, `3.2 MiB`."""
    if count is None:
        return DASH
    if count < 1024:
        return f"{count} B"
    value = count / 1024
    for unit in ("KiB", "MiB"):
        if value < 1024:
            return f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} GiB"


def moment(value: datetime | None) -> str:
    """A time in UTC, to the second; a dash when unknown."""
    return DASH if value is None else value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def flatten(value: JsonValue, prefix: str = "") -> list[tuple[str, str]]:
    """Scalars of a JSON document as (dotted key, text) pairs; lists are left out (curves)."""
    if isinstance(value, dict):
        pairs: list[tuple[str, str]] = []
        for key, item in value.items():
            pairs.extend(flatten(item, f"{prefix}.{key}" if prefix else key))
        return pairs
    if isinstance(value, list):
        return []
    return [(prefix, "null" if value is None else str(value))]
