"""A running training's reports: every one as a log line, some as `training.progress` events.

Lines go to the run's capped stream at the trainer's rate (every few seconds). Events go to
the log of record, which is never trimmed, and each carries the whole bounded curve, so they
are rarer: at most one per `interval_s`, plus the reports of the last step (the last one holds
the final validation loss). A lost or repeated event is harmless: the read model keeps the
latest report.
"""

from __future__ import annotations

import math
import time

from consumers.runlog import RunLog
from consumers.trainer import Progress
from events import EventLog, ProgressPayload, TrainingProgressed, TrainingRequested


class ProgressReporter:
    """The `on_progress` of one run's training."""

    def __init__(
        self,
        log: EventLog,
        lines: RunLog,
        cause: TrainingRequested,
        node_id: str,
        interval_s: float,
    ) -> None:
        self._log, self._lines, self._cause = log, lines, cause
        self._node_id, self._interval_s = node_id, interval_s
        self._last = -math.inf

    def __call__(self, progress: Progress) -> None:
        self._lines.progress(progress)
        now = time.monotonic()
        if progress.step < progress.total_steps and now - self._last < self._interval_s:
            return
        self._last = now
        payload = ProgressPayload(
            node_id=self._node_id,
            step=progress.step,
            total_steps=progress.total_steps,
            train=progress.train,
            validation=progress.validation,
        )
        self._log.append(
            TrainingProgressed(
                correlation_id=self._cause.correlation_id,
                causation_id=self._cause.event_id,
                payload=payload,
            )
        )
