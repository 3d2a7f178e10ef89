"""`/ui` and `/docs` over the ASGI client: what each page shows, escaping, filters, errors."""

from __future__ import annotations

import pytest
import redis
from fastapi.testclient import TestClient

from events import Event, TrainingRequested, TrainingSpec, names
from projections import Projector
from tests.events.appending import append_all
from tests.markup import elements, point_count
from tests.projections.factories import FILE_A, SIGNING_KEYS, Clock, at, completed_run, run_events
from tests.projections.helpers import FAST, drain

HOSTILE = "<script>alert(\"owned\")</script> & 'quotes'"


def _project(client: redis.Redis, events: list[Event]) -> None:
    append_all(client, events)
    drain(Projector(client, SIGNING_KEYS, config=FAST))


@pytest.fixture
def runs(api: TestClient, redis_client: redis.Redis) -> TestClient:
    """done: completed with two progress reports; live: running at step 12 of 20; waits: queued."""
    clock = Clock()
    done, live, waits = (run_events(run, clock) for run in ("done", "live", "waits"))
    _project(
        redis_client,
        [
            *completed_run("done", clock)[:2],
            done["training.progress"](step=4),
            done["training.progress"](step=6),
            *completed_run("done", clock)[2:],
            live["training.requested"](),
            live["training.started"](),
            live["training.progress"](step=12),
            waits["training.requested"](),
        ],
    )
    return api


def _note(html: str) -> str:
    """The note a missing or bad-input page shows."""
    start = html.index('id="missing">') + len('id="missing">')
    return html[start : html.index("</p>", start)]


def _rows(html: str) -> dict[str, str]:
    return {row["data-run-id"]: row["data-status"] for row in elements(html, "tr", "run")}


def test_the_runs_table_shows_each_run(runs: TestClient) -> None:
    page = runs.get("/ui")
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert _rows(page.text) == {"done": "completed", "live": "running", "waits": "queued"}
    assert "live name" in page.text
    assert "dataset=tiny" in page.text
    assert "12/20" in page.text  # live progress
    assert "2.8" in page.text  # the live train loss
    links = [a["href"] for a in elements(page.text, "a", "artifact")]
    assert links == ["/runs/done/artifact"]
    assert "10 B" in page.text  # the done run's artifact size, from artifact.uploaded
    assert [a["href"] for a in elements(page.text, "a", "run-link")] == [
        "/ui/runs/waits",
        "/ui/runs/live",
        "/ui/runs/done",
    ]
    assert elements(page.text, "meta")[-1] == {"http-equiv": "refresh", "content": "2"}
    boxes = elements(page.text, "input")
    assert {
        "type": "checkbox",
        "name": "run",
        "value": "done",
        "aria-label": "compare done name",
    } in boxes
    assert "cdn" not in page.text.lower()
    assert "<script" not in page.text


def test_the_runs_table_filters_and_pages(runs: TestClient) -> None:
    assert _rows(runs.get("/ui", params={"status": "running"}).text) == {"live": "running"}
    assert _rows(runs.get("/ui", params={"name": "do*"}).text) == {"done": "completed"}
    tagged = runs.get("/ui", params={"tag": ["dataset=tiny", ""], "status": ""})
    assert set(_rows(tagged.text)) == {"done", "live", "waits"}
    assert 'value="dataset=tiny"' in tagged.text
    assert _rows(runs.get("/ui", params={"tag": "dataset=big"}).text) == {}
    middle = runs.get("/ui", params={"offset": 1, "limit": 1}).text
    assert _rows(middle) == {"live": "running"}
    assert [a["href"] for a in elements(middle, "a", "previous")] == ["/ui?offset=0&limit=1"]
    assert [a["href"] for a in elements(middle, "a", "next")] == ["/ui?offset=2&limit=1"]
    first = runs.get("/ui", params={"limit": 1}).text
    assert not elements(first, "a", "previous")


@pytest.mark.parametrize(
    ("params", "says"),
    [({"tag": "novalue"}, "key=value"), ({"status": "lost"}, "status"), ({"tag": "b@d=1"}, "tag")],
)
def test_a_bad_filter_is_a_page_that_says_why(
    runs: TestClient, params: dict[str, str], says: str
) -> None:
    page = runs.get("/ui", params=params)
    assert page.status_code == 422
    assert page.headers["content-type"].startswith("text/html")
    assert says in _note(page.text)


def test_nothing_refreshes_once_every_run_ended(api: TestClient, redis_client: redis.Redis) -> None:
    _project(redis_client, completed_run("done"))
    page = api.get("/ui").text
    assert _rows(page) == {"done": "completed"}
    assert not [m for m in elements(page, "meta") if m.get("http-equiv") == "refresh"]


def test_an_empty_table_says_how_to_start(api: TestClient) -> None:
    page = api.get("/ui")
    assert page.status_code == 200
    assert "trainledger train" in page.text


def test_a_run_page_shows_curves_parameters_and_timeline(runs: TestClient) -> None:
    page = runs.get("/ui/runs/done")
    assert page.status_code == 200
    metrics = runs.get("/runs/done/metrics").json()
    series = {g["data-series"]: int(g["data-points"]) for g in elements(page.text, "g", "series")}
    assert series == {"done:train": 6, "done:validation": 1}
    assert series["done:train"] == len(metrics["train"])
    lines = elements(page.text, "polyline", "curve")
    assert [point_count(line) for line in lines] == [6, 1]
    assert len(elements(page.text, "circle")) == 7
    assert "training.sequence_length" in page.text
    assert "tokenizer.vocab_size" in page.text
    events = [row["data-type"] for row in elements(page.text, "tr", "event")]
    assert events == [
        "training.requested",
        "training.started",
        "training.progress",
        "training.completed",
        "artifact.uploaded",
        "artifact.pointer_set",
    ]
    assert "\u00d72, the last shown" in page.text
    assert "10 B" in page.text  # the artifact's size, from artifact.uploaded
    assert [a["href"] for a in elements(page.text, "a", "artifact")] == ["/runs/done/artifact"]
    assert FILE_A in page.text
    assert not [m for m in elements(page.text, "meta") if m.get("http-equiv") == "refresh"]


def test_a_running_run_page_refreshes_and_a_queued_one_has_no_curves(runs: TestClient) -> None:
    live = runs.get("/ui/runs/live").text
    assert {"http-equiv": "refresh", "content": "2"} in elements(live, "meta")
    assert "step 12 of 20" in live
    waits = runs.get("/ui/runs/waits").text
    assert "No loss recorded yet." in waits
    assert not elements(waits, "polyline")


def test_an_unknown_run_is_a_404_page(api: TestClient) -> None:
    page = api.get("/ui/runs/nothing")
    assert page.status_code == 404
    assert _note(page.text) == "no run nothing"
    assert api.get("/ui/runs/-bad").status_code == 422


def test_compare_overlays_the_chosen_runs(runs: TestClient) -> None:
    page = runs.get("/ui/compare", params={"run": ["done", "live", "done"]})
    assert page.status_code == 200
    assert _rows(page.text) == {"done": "completed", "live": "running"}
    series = {g["data-series"]: int(g["data-points"]) for g in elements(page.text, "g", "series")}
    assert series == {"done:train": 6, "done:validation": 1, "live:train": 12, "live:validation": 1}
    colours = {line["stroke"] for line in elements(page.text, "polyline", "curve")}
    assert len(colours) == 2
    assert "done name train" in page.text
    assert {"http-equiv": "refresh", "content": "2"} in elements(page.text, "meta")


def test_compare_without_runs_says_how_to_choose(api: TestClient) -> None:
    page = api.get("/ui/compare")
    assert page.status_code == 200
    assert "/ui/compare?run=ID&amp;run=ID" in page.text
    assert not elements(page.text, "svg")


def test_compare_refuses_unknown_runs_and_too_many(runs: TestClient) -> None:
    unknown = runs.get("/ui/compare", params={"run": ["done", "gone", "lost"]})
    assert unknown.status_code == 404
    assert _note(unknown.text) == "no run gone, lost"
    too_many = runs.get("/ui/compare", params={"run": [f"r{i}" for i in range(13)]})
    assert too_many.status_code == 422


def test_a_hostile_name_is_escaped_everywhere(api: TestClient, redis_client: redis.Redis) -> None:
    spec = TrainingSpec(corpus_file_id=FILE_A, name=HOSTILE, tags={"note": HOSTILE})
    _project(
        redis_client,
        [TrainingRequested(event_id="x1", occurred_at=at(1), correlation_id="evil", payload=spec)],
    )
    for path in ("/ui", "/ui/runs/evil", "/ui/compare?run=evil"):
        page = api.get(path)
        assert page.status_code == 200
        assert "<script" not in page.text, path
        assert (
            "&lt;script&gt;alert(&#34;owned&#34;)&lt;/script&gt; &amp; &#39;quotes&#39;"
            in page.text
        )


def test_groups_show_lag_pending_and_dead_letters(
    runs: TestClient, redis_client: redis.Redis
) -> None:
    redis_client.xgroup_create(names.TRAINING_STREAM, names.TRAINING_GROUP, id="0")
    redis_client.xreadgroup(names.TRAINING_GROUP, "c1", {names.TRAINING_STREAM: ">"}, count=1)
    redis_client.xadd(names.dlq_stream(names.TRAINING_STREAM, names.TRAINING_GROUP), {"x": "1"})
    page = runs.get("/ui/groups")
    assert page.status_code == 200
    rows = {(r["data-stream"], r["data-group"]) for r in elements(page.text, "tr", "group")}
    assert (names.TRAINING_STREAM, names.TRAINING_GROUP) in rows
    assert (names.TRAINING_STREAM, names.PROJECTOR_GROUP) in rows
    training = page.text.split(f'data-group="{names.TRAINING_GROUP}"')[1].split("</tr>")[0]
    total = int(redis_client.xlen(names.TRAINING_STREAM))
    assert f'<td class="num lag">{total - 1}</td>' in training
    assert '<td class="num pending">1</td>' in training
    assert '<td class="num dead">1</td>' in training
    assert " s</td>" in training  # the oldest pending entry's age


def test_docs_load_nothing_from_elsewhere(api: TestClient) -> None:
    page = api.get("/docs")
    assert page.status_code == 200
    assert "https://" not in page.text
    scripts = [s["src"] for s in elements(page.text, "script") if "src" in s]
    styles = [link["href"] for link in elements(page.text, "link")]
    assert scripts == ["/docs/assets/swagger-ui-bundle.js"]
    assert "/docs/assets/swagger-ui.css" in styles
    for asset in [*scripts, *styles]:
        answer = api.get(asset)
        assert answer.status_code == 200, asset
        assert len(answer.content) > 100
    assert api.get("/redoc").status_code == 404
    schema = api.get("/openapi.json").json()
    assert not [path for path in schema["paths"] if path.startswith(("/ui", "/docs"))]
