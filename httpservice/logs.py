"""JSON-lines logging for every trainledger process.

One line per record with the time, level, logger and message, plus the extras the
services attach (`category`, `event`, `request_id`, `run_id`, `tokenizer_id`, `error_code`,
`file_id`, `node_id`; the supervisor's `child`, `pid`, `exit_status`) when present. Secrets
never reach a record: the code never logs them, and `redact` masks the configured ones should a
message carry one anyway.
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
    "request_id",
    "run_id",
    "tokenizer_id",
    "error_code",
    "file_id",
    "node_id",
    "child",
    "pid",
    "exit_status",
)


class JsonFormatter(logging.Formatter):
    """Format records as one JSON object per line, masking the given secrets."""

    def __init__(self, service: str, secrets: Iterable[str | None] = ()) -> None:
        super().__init__()
        self.service = service
        self.secrets = tuple(secret for secret in secrets if secret)

    def format(self, record: logging.LogRecord) -> str:
        """The record as a JSON line (secrets masked before encoding, which could escape them)."""
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
        masked = {key: self.redact(v) if isinstance(v, str) else v for key, v in line.items()}
        return json.dumps(masked, ensure_ascii=False)

    def redact(self, text: str) -> str:
        """`text` with every configured secret replaced by `***`."""
        for secret in self.secrets:
            text = text.replace(secret, "***")
        return text


def mask_also(*secrets: str) -> None:
    """Mask `secrets` too from now on: ones a process learns after its logging is configured
    (a key read from a file)."""
    for handler in logging.getLogger().handlers:
        if isinstance(handler.formatter, JsonFormatter):
            handler.formatter.secrets = (*handler.formatter.secrets, *secrets)


def configure_logging(
    service: str,
    *,
    level: str = "INFO",
    secrets: Iterable[str | None] = (),
    stream: TextIO | None = None,
) -> None:
    """Send every logger's records to `stream` (default: `sys.stderr` as it is now) as JSON
    lines, `secrets` masked (unset ones are skipped); what every process does first."""
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JsonFormatter(service, secrets))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for logger in logging.Logger.manager.loggerDict.values():
        if isinstance(logger, logging.Logger):  # libraries (uvicorn, transformers) that print
            logger.handlers.clear()  # their own plain text hand their records to ours
            logger.propagate = True
    for noisy in ("httpx", "httpcore"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
