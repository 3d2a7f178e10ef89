"""Values given on the command line: `key=value` tags and durations like `7d` or `1d12h`."""

from __future__ import annotations

import re
from datetime import timedelta

import typer

from trainledger.client.errors import ClientError

_DURATION = re.compile(r"(?:[0-9]+[smhdw])+")
_PART = re.compile(r"([0-9]+)([smhdw])")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def tags(values: list[str] | None) -> dict[str, str]:
    """`--tag key=value` options as a dict (a later key wins)."""
    found: dict[str, str] = {}
    for value in values or []:
        key, sign, tag = value.partition("=")
        if not (sign and key):
            raise ClientError(f"--tag {value!r}: expected key=value")
        found[key] = tag
    return found


def duration(value: str) -> timedelta:
    """`7d`, `12h`, `1d12h`, `90m`, `2w`, `30s` as a timedelta (a usage error otherwise)."""
    text = value.strip().lower()
    if not _DURATION.fullmatch(text):
        raise typer.BadParameter(f"{value!r}: expected a duration like 7d, 12h, 1d12h or 90m")
    seconds = sum(int(count) * _UNITS[unit] for count, unit in _PART.findall(text))
    return timedelta(seconds=seconds)
