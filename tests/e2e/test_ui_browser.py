"""`/ui` in a real browser: two tiny runs trained through the pipeline, then the runs table,
a run page and the compare page as headless Chromium (Debian's `chromium`, which `make
browser` installs) renders them, each checked against the API and kept as a screenshot.

Screenshots go to the test's tmp dir and to `$UI_SCREENSHOTS` (default `var/ui-screenshots`;
`make ui-screenshots` writes the README's, `docs/ui`).
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.e2e.conftest import Pipeline
from tests.harness import tiny_spec
from tests.markup import elements, point_count

REPO = Path(__file__).resolve().parents[2]
SCREENSHOTS = Path(os.environ.get("UI_SCREENSHOTS", REPO / "var" / "ui-screenshots"))


class Browser:
    """Headless Chromium, one process per page, with a profile of its own."""

    def __init__(self, profile: Path) -> None:
        found = shutil.which("chromium")
        assert found, "chromium is not installed: `make browser` installs it"
        self.command = [
            found,
            "--headless",
            "--no-sandbox",  # tests run as root in CI
            "--disable-gpu",
            "--hide-scrollbars",
            "--window-size=1280,900",
            f"--user-data-dir={profile}",
        ]

    def _run(self, scripts_ms: int, *args: str) -> str:
        budget = [f"--virtual-time-budget={scripts_ms}"] if scripts_ms else []
        done = subprocess.run(
            [*self.command, *budget, *args],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert done.returncode == 0, done.stderr[-2000:]
        return done.stdout

    def dom(self, url: str, *, scripts_ms: int = 0) -> str:
        """The page's DOM once loaded (and its scripts given `scripts_ms` of virtual time)."""
        return self._run(scripts_ms, "--dump-dom", url)

    def screenshot(self, url: str, path: Path, *, scripts_ms: int = 0) -> None:
        """A PNG of the page as a 1280x900 window shows it."""
        self._run(scripts_ms, f"--screenshot={path}", url)
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def _series(html: str) -> dict[str, int]:
    """Points per curve: the `data-points` counts, checked against the polylines drawn."""
    groups = elements(html, "g", "series")
    drawn = [group for group in groups if int(group["data-points"])]
    for group, line in zip(drawn, elements(html, "polyline", "curve"), strict=True):
        assert point_count(line) == int(group["data-points"])
    return {group["data-series"]: int(group["data-points"]) for group in groups}


@pytest.mark.slow
def test_the_pages_in_a_browser(pipeline: Pipeline, tmp_path: Path) -> None:
    browser = Browser(tmp_path / "chromium")
    pipeline.start_worker(pipeline.worker_config("node-a"))
    corpus = pipeline.bank.put_corpus(tmp_path)
    runs: dict[str, str] = {}
    for name, rate in (("tiny-a", 5e-3), ("tiny-b", 1e-3)):
        spec = tiny_spec(corpus, max_steps=8, learning_rate=rate, eval_every_steps=2)
        runs[name] = pipeline.train(
            spec.model_copy(update={"name": name, "tags": {"lr": str(rate)}})
        )
    records = {name: pipeline.wait_final(f"/runs/{run_id}") for name, run_id in runs.items()}
    assert {name: record["status"] for name, record in records.items()} == {
        "tiny-a": "completed",
        "tiny-b": "completed",
    }
    curves = {
        run_id: pipeline.api.get(f"/runs/{run_id}/metrics").json() for run_id in runs.values()
    }
    for metrics in curves.values():
        assert len(metrics["train"]) >= 2
        assert len(metrics["validation"]) >= 1
    base = str(pipeline.api.base_url).rstrip("/")
    shots = [tmp_path / "screenshots", SCREENSHOTS]
    for directory in shots:
        directory.mkdir(parents=True, exist_ok=True)

    table = browser.dom(f"{base}/ui")
    rows = {row["data-run-id"]: row["data-status"] for row in elements(table, "tr", "run")}
    assert rows == {runs["tiny-a"]: "completed", runs["tiny-b"]: "completed"}
    links = {a["href"]: a["title"] for a in elements(table, "a", "artifact")}
    for run_id in runs.values():
        pointer = pipeline.api.get(f"/runs/{run_id}/artifact").json()
        assert links[f"/runs/{run_id}/artifact"] == pointer["file_id"]
    assert "tiny-a" in table
    assert "lr=0.005" in table

    first = runs["tiny-a"]
    page = browser.dom(f"{base}/ui/runs/{first}")
    assert _series(page) == {
        f"{first}:train": len(curves[first]["train"]),
        f"{first}:validation": len(curves[first]["validation"]),
    }
    assert [a["href"] for a in elements(page, "a", "artifact")] == [f"/runs/{first}/artifact"]
    assert "training.max_steps" in page
    assert "artifact.pointer_set" in {row["data-type"] for row in elements(page, "tr", "event")}

    compare = f"{base}/ui/compare?run={runs['tiny-a']}&run={runs['tiny-b']}"
    overlay = browser.dom(compare)
    assert _series(overlay) == {
        f"{run_id}:{curve}": len(curves[run_id][curve])
        for run_id in runs.values()
        for curve in ("train", "validation")
    }
    assert {a["href"] for a in elements(overlay, "a", "artifact")} == {
        f"/runs/{run_id}/artifact" for run_id in runs.values()
    }

    docs = browser.dom(f"{base}/docs", scripts_ms=10_000)
    assert "/runs/{run_id}/metrics" in docs  # Swagger UI ran, from the API's own files

    for name, url, scripts_ms in (
        ("runs", f"{base}/ui", 0),
        ("run", f"{base}/ui/runs/{first}", 0),
        ("compare", compare, 0),
        ("groups", f"{base}/ui/groups", 0),
        ("docs", f"{base}/docs", 10_000),
    ):
        browser.screenshot(url, shots[0] / f"{name}.png", scripts_ms=scripts_ms)
        for directory in shots[1:]:
            shutil.copyfile(shots[0] / f"{name}.png", directory / f"{name}.png")
