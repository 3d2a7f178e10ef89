"""Loss curves kept while training: bounded, whatever the length of the run.

Each point is the mean loss over a window of steps. The window starts at `total / cap` steps,
so a run of known length fills at most `cap` points; should the points pass `cap` anyway (a
run longer than planned, a validation interval of one step), every other point goes and the
window doubles: the curve keeps its shape at half the resolution. Losses are summed as
tensors and read (`.item()`, a device sync on CUDA) once per window, not once per step.
"""

from __future__ import annotations

import math

import torch
from pydantic import BaseModel, ConfigDict

from events import MAX_METRIC_POINTS, MetricPoint


class CurveState(BaseModel):
    """A curve mid-run, as a checkpoint keeps it: its points and its open window."""

    model_config = ConfigDict(extra="forbid")

    points: list[MetricPoint]
    window: int
    open_sum: float | None
    open_count: int


class LossCurve:
    """Window means of a loss, at most `cap` points."""

    def __init__(self, planned_points: int, *, cap: int = MAX_METRIC_POINTS) -> None:
        self.cap = cap
        self.window = max(1, math.ceil(planned_points / cap))
        self.points: list[MetricPoint] = []
        self._sum: torch.Tensor | None = None
        self._count = 0

    def add(self, step: int, loss: torch.Tensor) -> None:
        """Count one step's (detached) loss; close the window when it is full."""
        self._sum = loss if self._sum is None else self._sum + loss
        self._count += 1
        if self._count >= self.window:
            self.close(step)

    def close(self, step: int) -> None:
        """End the window at `step` (the last step of a run ends a partial one)."""
        if self._sum is None:
            return
        mean = (self._sum.float() / self._count).item()
        self._sum, self._count = None, 0
        self.points.append(MetricPoint(step=step, loss=mean))
        if len(self.points) > self.cap:
            self.points = self.points[1::2]
            self.window *= 2

    def state(self) -> CurveState:
        """The curve as a checkpoint keeps it."""
        open_sum = None if self._sum is None else self._sum.float().item()
        return CurveState(
            points=list(self.points), window=self.window, open_sum=open_sum, open_count=self._count
        )

    def restore(self, state: CurveState) -> None:
        """Continue the curve a checkpoint kept."""
        self.points, self.window, self._count = list(state.points), state.window, state.open_count
        self._sum = None if state.open_sum is None else torch.tensor(state.open_sum)
