"""What a command's JSON logging produced: its records, and the formatter it installed."""

from __future__ import annotations

import json
import logging

from httpservice import JsonFormatter


def records(text: str) -> list[dict[str, object]]:
    """The JSON log lines in `text` (a command's stderr); other lines are skipped."""
    found: list[dict[str, object]] = []
    for line in text.splitlines():
        if line.startswith("{"):
            record = json.loads(line)
            assert isinstance(record, dict)
            found.append(record)
    return found


def formatter() -> JsonFormatter:
    """The formatter of the root logger's one handler: proof a command set up JSON logging."""
    [handler] = logging.getLogger().handlers
    assert isinstance(handler.formatter, JsonFormatter)
    return handler.formatter
