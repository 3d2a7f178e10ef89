"""JSON-lines logging for every trainledger process.

One line per record with the time, level, logger and message, plus the extras the
services attach (`category`, `service`, `event`, `run_id`, `tokenizer_id`, `error_code`,
`file_id`) when present. Secrets never reach a record: the code never logs them, and
`redact` masks the configured ones should a message carry one anyway.
"""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import TextIO

EXTRAS = (
    "category",
    "service",
    "event",
    "run_id",
    "tokenizer_id",
    "error_code",
    "file_id",
    "node_id",
)


class JsonFormatter(logging.Formatter):
    """Format records as one JSON object per line, masking the given secrets."""

    def __init__(self, service: str, secrets: Iterable[str] = ()) -> None:
        super().__init__()
        self.service = service
        self.secrets = tuple(secret for secret in secrets if secret)

    def format(self, record: logging.LogRecord) -> str:
        """The record as a JSON line."""
        line: dict[str, str | int | float | None] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
            "service": self.service,
        }
        for name in EXTRAS:
            value = record.__dict__.get(name)
            if isinstance(value, str | int | float):
                line[name] = value
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return self.redact(json.dumps(line, ensure_ascii=False))

    def redact(self, text: str) -> str:
        """`text` with every configured secret replaced by `***`."""
        for secret in self.secrets:
            text = text.replace(secret, "***")
        return text


def configure(
    service: str, *, level: str = "INFO", secrets: Iterable[str] = (), stream: TextIO = sys.stderr
) -> None:
    """Send every logger's records to `stream` as JSON lines."""
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter(service, secrets))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for noisy in ("httpx", "httpcore"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
