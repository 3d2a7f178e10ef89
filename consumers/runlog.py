"""A run's progress and log lines, in its capped stream `runs:<run_id>:logs` and its file.

These are not domain events (the log of record is never trimmed; this stream is, with an
approximate MAXLEN so trimming stays cheap). The API serves the stream as Server-Sent
Events; each entry is the flat string fields of one `LogLine`.

The run's own log, `logs.jsonl` in the run directory, travels inside the artifact with the
model: every line of every attempt on the node, one `RecordedLine` (JSON) per line. Lines are
appended, each in one write, to a node-local file beside the run directory
(`ArtifactsLayout.run_log`), because the run directory is staged and appears only by rename
at the end (and a failed or cancelled run never gets one). Before that rename the stage hard
links the file into the staging directory (`keep_in`): one file under two names, so the lines
written after (the completion) reach the run directory too. The completion's line is written
before `training.completed` is appended, so the upload never archives a file still growing.
"""

from __future__ import annotations

import os
from datetime import datetime
from pathlib import Path
from typing import Literal

import redis
from pydantic import BaseModel, ConfigDict
from redis.typing import EncodableT, FieldT

from consumers.trainer import Progress
from events import names, utc_now

LOG_FILE = "logs.jsonl"
"""The run's own log in its run directory (and so in its artifact)."""

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


class RecordedLine(LogLine):
    """One line of `logs.jsonl`: a `LogLine` and when it was written."""

    at: datetime


class RunLog:
    """Writes the lines of one run: to its stream, and to `file` when given."""

    def __init__(
        self,
        client: redis.Redis,
        run_id: str,
        *,
        maxlen: int = DEFAULT_MAXLEN,
        file: Path | None = None,
    ) -> None:
        self._client = client
        self._stream = names.run_logs_stream(run_id)
        self._maxlen = maxlen
        self._file = file
        if file is not None:
            file.parent.mkdir(parents=True, exist_ok=True)

    def write(self, line: LogLine) -> None:
        """Append `line` to the file, then to the stream (trimmed to about `maxlen` entries)."""
        if self._file is not None:
            recorded = RecordedLine.model_validate(line.model_dump() | {"at": utc_now()})
            with self._file.open("a", encoding="utf-8") as handle:
                handle.write(recorded.model_dump_json(exclude_none=True) + "\n")
        self._client.xadd(self._stream, line.fields(), maxlen=self._maxlen, approximate=True)

    def keep_in(self, directory: Path) -> None:
        """Make the file `directory/logs.jsonl` too (a hard link: later lines reach both)."""
        if self._file is None:
            return
        self._file.touch()
        target = directory / LOG_FILE
        target.unlink(missing_ok=True)
        os.link(self._file, target)

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
