"""The short chaos run of `make check`: a handful of runs, a kill of each service, one engine
restart, Data Bank faults and a short outage; nothing lost, doubled or drifted."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from rich.console import Console

from tests.reliability.chaos import chaos_run
from tests.reliability.plan import SHORT, make_plan


@pytest.mark.chaos
def test_a_short_chaos_run_loses_nothing(tmp_path: Path) -> None:
    seed = int(os.environ.get("CHAOS_SEED", "7"))
    plan = make_plan(seed, SHORT)

    report = chaos_run(plan, tmp_path)

    report.print(Console())  # shown with -s, and in the report of a failure
    assert report.problems == []
    assert (report.lost, report.duplicate_pointers, report.drift) == (0, 0, 0)
    assert report.completed + report.failed == report.submitted == 5
    assert report.kills >= SHORT.kills
    assert report.engine_restarts == SHORT.engine_restarts
    assert report.faults["outage"] > 0
