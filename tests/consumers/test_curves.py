"""Loss curves stay bounded and keep their shape."""

from __future__ import annotations

import torch

from consumers.curves import LossCurve


def test_a_run_of_known_length_fills_at_most_the_cap() -> None:
    curve = LossCurve(1000, cap=10)
    for step in range(1, 1001):
        curve.add(step, torch.tensor(float(step)))
    assert curve.window == 100
    assert [p.step for p in curve.points] == list(range(100, 1001, 100))
    assert curve.points[0].loss == sum(range(1, 101)) / 100


def test_past_the_cap_every_other_point_goes_and_the_window_doubles() -> None:
    curve = LossCurve(4, cap=4)
    for step in range(1, 6):
        curve.add(step, torch.tensor(1.0))
    assert ([p.step for p in curve.points], curve.window) == ([2, 4], 2)
    curve.add(6, torch.tensor(3.0))
    curve.add(7, torch.tensor(5.0))
    assert ([p.step for p in curve.points], curve.points[-1].loss) == ([2, 4, 7], 4.0)


def test_closing_ends_a_partial_window_once() -> None:
    curve = LossCurve(10, cap=2)
    curve.add(1, torch.tensor(2.0))
    curve.close(1)
    curve.close(1)
    assert [(p.step, p.loss) for p in curve.points] == [(1, 2.0)]
