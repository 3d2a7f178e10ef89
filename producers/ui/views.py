"""What each page shows, gathered from the read model and the log and shaped for templates.

Every value a template prints is prepared here (formatted text, chart geometry), so the
templates hold markup only. Status records and loss curves come from the read-model
queries; parameters and the timeline from the run's history in the log (the source of
`GET /runs/{run_id}/events`), which the read model does not keep.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime

from events import (
    DecodeError,
    GroupStats,
    LogEntry,
    TrainingRequested,
)
from producers.ui import formatting
from producers.ui.charts import PALETTE, Chart, Point, Series, chart
from projections import RunMetrics, RunStatus

TERMINAL = frozenset({"completed", "failed", "cancelled", "deleted"})
"""Statuses after which nothing changes: pages showing only these stop refreshing."""


@dataclass(frozen=True)
class Progress:
    """Steps done of the steps planned."""

    step: int
    total: int

    @property
    def percent(self) -> int:
        """Done, in whole percent (0 while the total is unknown)."""
        return min(100, 100 * self.step // self.total) if self.total else 0


@dataclass(frozen=True)
class RunRow:
    """One run as the runs table shows it."""

    run_id: str
    name: str | None
    tags: list[tuple[str, str]]
    status: str
    message: str | None
    progress: Progress | None
    train_loss: str
    val_loss: str
    duration: str
    file_id: str | None
    size: str

    @property
    def active(self) -> bool:
        """Still moving: the page showing it refreshes."""
        return self.status not in TERMINAL

    @property
    def title(self) -> str:
        """The name, else the id."""
        return self.name or self.run_id


def _ended(status: RunStatus) -> datetime | None:
    if status.status not in TERMINAL:
        return datetime.now(UTC)
    ends = (status.completed_at, status.failed_at, status.cancelled_at, status.uploaded_at)
    return next((end for end in ends if end is not None), status.trained_at)


def _duration(status: RunStatus) -> float | None:
    """From the start of training to its end (or now, while the run is active)."""
    end = _ended(status)
    if status.started_at is None or end is None:
        return None
    return max(0.0, (end - status.started_at).total_seconds())


def run_row(status: RunStatus) -> RunRow:
    """The table row of a status record: live progress while running, final metrics after."""
    progress, train, val = None, None, None
    if status.progress is not None:
        progress = Progress(status.progress.step, status.progress.total_steps)
        train, val = status.progress.train_loss, status.progress.val_loss
    if status.metrics is not None:
        progress = progress or Progress(status.metrics.steps, status.metrics.steps)
        train = status.metrics.train_loss if train is None else train
        val = status.metrics.val_loss if val is None else val
    return RunRow(
        run_id=status.run_id,
        name=status.name,
        tags=sorted(status.tags.items()),
        status=status.status,
        message=status.message,
        progress=progress,
        train_loss=formatting.loss(train),
        val_loss=formatting.loss(val),
        duration=formatting.duration(_duration(status)),
        file_id=status.artifact.file_id if status.artifact is not None else None,
        size=formatting.size(status.artifact_size if status.artifact is not None else None),
    )


@dataclass(frozen=True)
class Moment:
    """One row of the timeline: an event (or several progress reports in a row)."""

    at: str
    type: str
    stream: str
    entry_id: str
    detail: str
    count: int = 1


def _moment(entry: LogEntry) -> Moment:
    try:
        event = entry.event()
    except DecodeError as error:
        return Moment(formatting.DASH, "undecodable", entry.stream, entry.entry_id, str(error))
    pairs = formatting.flatten(event.payload.model_dump(mode="json"))
    detail = ", ".join(f"{key}={value}" for key, value in pairs)
    at = formatting.moment(event.occurred_at)
    return Moment(at, event.type, entry.stream, entry.entry_id, detail)


def timeline(entries: Sequence[LogEntry]) -> list[Moment]:
    """The history in append order; consecutive progress reports fold into their last one."""
    moments: list[Moment] = []
    for entry in entries:
        moment = _moment(entry)
        if moments and moment.type == moments[-1].type == "training.progress":
            moment = replace(moment, count=moments[-1].count + 1)
            moments.pop()
        moments.append(moment)
    return moments


def parameters(entries: Sequence[LogEntry]) -> list[tuple[str, str]]:
    """The request's parameters (name and tags aside), flattened, from the run's history."""
    found: list[tuple[str, str]] = []
    for entry in entries:
        try:
            event = entry.event()
        except DecodeError:
            continue
        if isinstance(event, TrainingRequested):
            spec = event.payload.model_dump(
                mode="json", exclude={"name", "tags"}, exclude_none=True
            )
            found = formatting.flatten(spec)
    return found


@dataclass(frozen=True)
class Curves:
    """A run's loss curves, as the chart draws and the page counts them."""

    run_id: str
    label: str
    train: Sequence[Point]
    validation: Sequence[Point]


def series(metrics: RunMetrics | None) -> tuple[Sequence[Point], Sequence[Point]]:
    """The train and validation curves of a run (none before its first report)."""
    return (metrics.train, metrics.validation) if metrics is not None else ([], [])


def curves_chart(runs: Sequence[Curves]) -> Chart:
    """Train (solid) and validation (dashed) curves of each run, one colour per run."""
    series: list[Series] = []
    for index, run in enumerate(runs):
        colour = PALETTE[index % len(PALETTE)]
        for curve, dashed, points in (
            ("train", False, run.train),
            ("validation", True, run.validation),
        ):
            label = f"{run.label} {curve}".strip()
            series.append(Series(label, f"{run.run_id}:{curve}", colour, dashed, points))
    return chart(series)


@dataclass(frozen=True)
class Times:
    """When a run was asked for, started and ended, as text."""

    requested: str
    started: str
    ended: str


def times(status: RunStatus) -> Times:
    """The run's three moments (a dash for those that have not happened)."""
    ended = _ended(status) if status.status in TERMINAL else None
    return Times(
        formatting.moment(status.requested_at),
        formatting.moment(status.started_at),
        formatting.moment(ended),
    )


@dataclass(frozen=True)
class GroupRow:
    """One consumer group on one stream."""

    stream: str
    group: str
    lag: int
    pending: int
    oldest: str
    dead_letters: int


def group_row(stats: GroupStats) -> GroupRow:
    """A group's figures, the oldest pending age as a duration (a dash when none pends)."""
    oldest = formatting.duration(stats.oldest_pending_age_s) if stats.pending else formatting.DASH
    return GroupRow(stats.stream, stats.group, stats.lag, stats.pending, oldest, stats.dead_letters)
