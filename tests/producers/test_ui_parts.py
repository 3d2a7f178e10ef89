"""The pieces `/ui` pages are made of: chart geometry, formatting, views of records and logs."""

from __future__ import annotations

import math
from datetime import timedelta

import pytest
from pydantic import JsonValue

from events import GroupStats, LogEntry, MetricPoint, encode, names
from producers.ui import charts, formatting, views
from projections import RunStatus
from tests.projections.factories import START, run_events


def _points(*pairs: tuple[int, float]) -> list[MetricPoint]:
    return [MetricPoint(step=step, loss=loss) for step, loss in pairs]


def _series(points: list[MetricPoint], key: str = "a:train") -> charts.Series:
    return charts.Series(key, key, "#000", False, points)


def test_a_chart_places_points_inside_the_frame() -> None:
    chart = charts.chart([_series(_points((1, 4.0), (10, 2.0))), _series([], "a:validation")])
    line, empty = chart.series
    assert line.points == " ".join(f"{x},{y}" for x, y in line.dots)
    (x1, y1), (x2, y2) = line.dots
    assert chart.left < x1 < x2 <= chart.left + chart.plot_width
    assert chart.top <= y1 < y2 <= chart.top + chart.plot_height  # lower loss is lower down
    assert [t.label for t in chart.x_ticks] == ["0", "2", "4", "6", "8", "10"]
    assert [t.label for t in chart.y_ticks] == ["2", "2.5", "3", "3.5", "4"]
    assert (empty.dots, empty.points) == ([], "")
    assert not chart.empty


def test_a_chart_leaves_out_what_is_not_finite_and_widens_a_flat_curve() -> None:
    chart = charts.chart([_series(_points((1, 3.0), (2, math.nan), (3, math.inf), (4, 3.0)))])
    assert len(chart.series[0].dots) == 2
    assert [t.label for t in chart.y_ticks] == ["2.5", "2.75", "3", "3.25", "3.5"]
    assert [t.label for t in chart.x_ticks] == ["0", "1", "2", "3", "4"]


def test_an_empty_chart_says_so() -> None:
    chart = charts.chart([])
    assert chart.empty
    assert [t.label for t in chart.x_ticks] == ["0", "1"]


def test_nice_steps_fall_back_past_the_factors() -> None:
    assert charts._nice(0.3, (1, 2)) == 1.0


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(None, "\u2013"), (3.25, "3.2 s"), (65, "1m 05s"), (3 * 3600 + 120, "3h 02m")],
)
def test_durations(seconds: float | None, text: str) -> None:
    assert formatting.duration(seconds) == text


@pytest.mark.parametrize(
    ("count", "text"),
    [
        (None, "\u2013"),
        (512, "512 B"),
        (1536, "1.5 KiB"),
        (5 * 2**20, "5.0 MiB"),
        (3 * 2**30, "3.0 GiB"),
    ],
)
def test_sizes(count: int | None, text: str) -> None:
    assert formatting.size(count) == text


def test_losses_moments_and_flattening() -> None:
    assert (formatting.loss(None), formatting.loss(2.345678)) == ("\u2013", "2.346")
    assert formatting.moment(None) == "\u2013"
    assert formatting.moment(START) == "2030-01-01 00:00:00 UTC"
    document: JsonValue = {"a": {"b": 1, "c": None}, "d": [1, 2], "e": "x"}
    assert formatting.flatten(document) == [("a.b", "1"), ("a.c", "null"), ("e", "x")]


def test_progress_without_a_total_is_zero_percent() -> None:
    assert views.Progress(5, 0).percent == 0
    assert views.Progress(5, 10).percent == 50
    assert views.Progress(12, 10).percent == 100


def _status(**fields: object) -> RunStatus:
    return RunStatus.model_validate({"run_id": "r", "status": "queued"} | fields)


def test_durations_of_runs() -> None:
    assert views.run_row(_status()).duration == "\u2013"
    ended = _status(status="cancelled", started_at=START, cancelled_at=START + timedelta(seconds=4))
    assert views.run_row(ended).duration == "4.0 s"
    trained_then_deleted = _status(
        status="deleted", started_at=START, trained_at=START + timedelta(seconds=2)
    )
    assert views.run_row(trained_then_deleted).duration == "2.0 s"
    never_started = _status(status="failed", failed_at=START)
    assert views.run_row(never_started).duration == "\u2013"
    assert views.times(never_started).ended == "2030-01-01 00:00:00 UTC"
    assert views.times(_status(started_at=START)).ended == "\u2013"


def test_a_row_prefers_live_figures_and_falls_back_to_the_final_ones() -> None:
    metrics = {"steps": 9, "tokens": 1, "seconds": 1.0, "tokens_per_second": 1.0}
    final = views.run_row(_status(metrics=metrics | {"train_loss": 1.5, "val_loss": 1.75}))
    assert (final.progress, final.train_loss, final.val_loss) == (
        views.Progress(9, 9),
        "1.5",
        "1.75",
    )
    live = {"step": 3, "total_steps": 9, "train_loss": 2.5, "val_loss": None}
    both = views.run_row(_status(progress=live, metrics=metrics | {"val_loss": 1.75}))
    assert (both.progress, both.train_loss, both.val_loss) == (views.Progress(3, 9), "2.5", "1.75")
    assert (both.title, both.active) == ("r", True)


def test_a_timeline_names_what_it_cannot_decode() -> None:
    make = run_events("r")
    good = LogEntry(names.TRAINING_STREAM, "1-0", encode(make["training.requested"]()))
    bad = LogEntry(names.TRAINING_STREAM, "2-0", {b"event": b"{not json"})
    moments = views.timeline([good, bad])
    assert [m.type for m in moments] == ["training.requested", "undecodable"]
    assert moments[1].detail
    assert ("corpus_file_id", "a" * 64) in views.parameters([bad, good])


def test_group_rows() -> None:
    idle = views.group_row(GroupStats("s", "g", 3, 0, 0.0, 2))
    assert (idle.lag, idle.oldest, idle.dead_letters) == (3, "\u2013", 2)
    busy = views.group_row(GroupStats("s", "g", 0, 1, 75.0, 0))
    assert busy.oldest == "1m 15s"
