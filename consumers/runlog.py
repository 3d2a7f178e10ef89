"""A run's progress and log lines, in its capped stream `runs:<run_id>:logs`.

These are not domain events (the log of record is never trimmed; this stream is, with an
approximate MAXLEN so trimming stays cheap). The API serves the stream as Server-Sent
Events; each entry is the flat string fields of one `LogLine`.
"""

from __future__ import annotations

from typing import Literal

import redis
from pydantic import BaseModel, ConfigDict
from redis.typing import EncodableT, FieldT

from consumers.trainer import Progress
from events import names

DEFAULT_MAXLEN = 1000
"""Lines kept per run: enough for a long run at the bounded progress rate."""

LineKind = Literal["started", "progress", "completed", "failed", "cancelled"]


class LogLine(BaseModel):
    """One entry of a run's log stream: what happened, in words, and the numbers of progress."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: LineKind
    message: str
    step: int | None = None
    total_steps: int | None = None
    loss: float | None = None
    tokens_per_second: float | None = None
    eta_seconds: float | None = None

    def fields(self) -> dict[FieldT, EncodableT]:
        """The stream entry's fields (strings; absent numbers are left out)."""
        dumped = self.model_dump(exclude_none=True)
        fields: dict[FieldT, EncodableT] = {key: str(value) for key, value in dumped.items()}
        return fields


class RunLog:
    """Writes the lines of one run."""

    def __init__(self, client: redis.Redis, run_id: str, *, maxlen: int = DEFAULT_MAXLEN) -> None:
        self._client = client
        self._stream = names.run_logs_stream(run_id)
        self._maxlen = maxlen

    def write(self, line: LogLine) -> None:
        """Append `line`, trimming the stream to about `maxlen` entries."""
        self._client.xadd(self._stream, line.fields(), maxlen=self._maxlen, approximate=True)

    def say(self, kind: LineKind, message: str) -> None:
        """Append a line of words."""
        self.write(LogLine(kind=kind, message=message))

    def progress(self, progress: Progress) -> None:
        """Append a progress report."""
        message = (
            f"step {progress.step}/{progress.total_steps} loss {progress.loss:.4f} "
            f"{progress.tokens_per_second:.0f} tokens/s eta {progress.eta_seconds:.1f}s"
        )
        self.write(
            LogLine(
                kind="progress",
                message=message,
                step=progress.step,
                total_steps=progress.total_steps,
                loss=progress.loss,
                tokens_per_second=progress.tokens_per_second,
                eta_seconds=progress.eta_seconds,
            )
        )
