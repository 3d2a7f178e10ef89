"""Loss curves as inline SVG: the geometry, computed here so the template only draws.

A chart maps every series onto one frame (steps on x, loss on y) and hands the template, per
series, the `points` attribute of a polyline and one dot per point (a one-point series has
no line to see). Points that are not finite (a diverged loss) are left out.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

WIDTH, HEIGHT = 720, 300
LEFT, RIGHT, TOP, BOTTOM = 60, 16, 24, 34
PALETTE = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#17becf", "#8c564b")


class Point(Protocol):
    """A point of a loss curve (the read model's and the events' both are)."""

    @property
    def step(self) -> int: ...

    @property
    def loss(self) -> float: ...


@dataclass(frozen=True)
class Series:
    """One curve to draw: who it is, how it looks, its points."""

    label: str
    key: str
    colour: str
    dashed: bool
    points: Sequence[Point]


@dataclass(frozen=True)
class Plotted:
    """A series placed in the frame."""

    label: str
    key: str
    colour: str
    dashed: bool
    points: str
    dots: list[tuple[float, float]]


@dataclass(frozen=True)
class Tick:
    """An axis mark: where (pixels) and what it says."""

    at: float
    label: str


@dataclass(frozen=True)
class Chart:
    """Everything the SVG needs."""

    width: int
    height: int
    left: int
    right: int
    top: int
    bottom: int
    series: list[Plotted]
    x_ticks: list[Tick]
    y_ticks: list[Tick]

    @property
    def plot_width(self) -> int:
        """Width of the plotting area inside the margins."""
        return self.width - self.left - self.right

    @property
    def plot_height(self) -> int:
        """Height of the plotting area inside the margins."""
        return self.height - self.top - self.bottom

    @property
    def empty(self) -> bool:
        """No point to draw."""
        return not any(plotted.dots for plotted in self.series)


def _nice(rough: float, factors: tuple[float, ...]) -> float:
    """The smallest of `factors` times a power of ten that is at least `rough` (> 0)."""
    power = 10.0 ** math.floor(math.log10(rough))
    return next((f * power for f in factors if f * power >= rough), 10 * power)


def _axis(
    low: float, high: float, parts: int, factors: tuple[float, ...], least: float = 0.0
) -> list[float]:
    """Round tick values covering [low, high] in about `parts` steps of at least `least`."""
    if high - low < 1e-9:
        low, high = low - 0.5, high + 0.5
    step = _nice(max(least, (high - low) / parts), factors)
    first, last = math.floor(low / step), math.ceil(high / step)
    return [round(i * step, 10) for i in range(first, last + 1)]


def chart(series: Sequence[Series]) -> Chart:
    """Place `series` in one frame: x from step 0 to the last step, y over every loss."""
    finite = [[p for p in s.points if math.isfinite(p.loss)] for s in series]
    steps = [p.step for points in finite for p in points]
    losses = [p.loss for points in finite for p in points]
    x_values = _axis(0, max([1, *steps]), 5, (1, 2, 5), least=1)
    y_values = _axis(min(losses, default=0.0), max(losses, default=1.0), 4, (1, 2, 2.5, 5))
    (x_low, x_high), (y_low, y_high) = (x_values[0], x_values[-1]), (y_values[0], y_values[-1])
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM

    def x(step: float) -> float:
        return round(LEFT + plot_w * (step - x_low) / (x_high - x_low), 1)

    def y(loss: float) -> float:
        return round(TOP + plot_h * (y_high - loss) / (y_high - y_low), 1)

    plotted = []
    for one, points in zip(series, finite, strict=True):
        dots = [(x(p.step), y(p.loss)) for p in points]
        line = " ".join(f"{a},{b}" for a, b in dots)
        plotted.append(Plotted(one.label, one.key, one.colour, one.dashed, line, dots))
    return Chart(
        width=WIDTH,
        height=HEIGHT,
        left=LEFT,
        right=RIGHT,
        top=TOP,
        bottom=BOTTOM,
        series=plotted,
        x_ticks=[Tick(x(v), f"{v:g}") for v in x_values],
        y_ticks=[Tick(y(v), f"{v:g}") for v in y_values],
    )
