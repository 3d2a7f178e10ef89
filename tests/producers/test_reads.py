"""Read endpoints: read-model queries, read-your-writes, history, log lines as SSE."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest
import redis
from fastapi.testclient import TestClient

from events import names, text
from producers.commands import ID_PATTERN
from producers.reads import POSITION_PATTERN
from projections import Projector
from tests.events.appending import append_all
from tests.producers.conftest import MakeApi
from tests.projections.factories import (
    FILE_A,
    SIGNING_KEYS,
    Clock,
    completed_run,
    run_events,
    tokenizer_events,
)
from tests.projections.helpers import FAST, drain


@pytest.fixture
def projected(api: TestClient, redis_client: redis.Redis) -> TestClient:
    """r0 completed, r1 requested, t0 completed with a pointer."""
    clock = Clock()
    make = tokenizer_events("t0", clock)
    events = [
        *completed_run("r0", clock),
        run_events("r1", clock)["training.requested"](),
        make["tokenizer.requested"](),
        make["tokenizer.completed"](),
        make["artifact.pointer_set"](),
    ]
    append_all(redis_client, events)
    drain(Projector(redis_client, SIGNING_KEYS, config=FAST))
    return api


@pytest.fixture
def live_projector(redis_client: redis.Redis) -> Iterator[Projector]:
    projector = Projector(redis_client, SIGNING_KEYS, config=FAST)
    projector.consumer.ensure_groups()
    thread = threading.Thread(target=projector.run)
    thread.start()
    yield projector
    projector.stop()
    thread.join(10)


def test_artifacts(projected: TestClient) -> None:
    run = projected.get("/runs/r0/artifact")
    assert run.status_code == 200
    assert run.json() == {"storage": "data-bank", "file_id": FILE_A}
    assert run.headers["content-type"] == "application/json"
    assert projected.get("/tokenizers/t0/artifact").json()["file_id"] == FILE_A
    none = projected.get("/runs/r1/artifact")
    assert (none.status_code, none.json()["code"]) == (404, "NOT_FOUND")
    assert projected.get("/tokenizers/t9/artifact").status_code == 404


def test_artifact_parameters_are_validated(projected: TestClient) -> None:
    bad_id = projected.get("/runs/-bad/artifact")
    assert (bad_id.status_code, bad_id.json()["code"]) == (422, "VALIDATION_ERROR")
    assert "path.run_id" in bad_id.json()["message"]
    bad_position = projected.get("/tokenizers/t0/artifact", params={"min_position": "x"})
    assert bad_position.status_code == 422
    assert "min_position" in bad_position.json()["message"]
    both = projected.get("/runs/-bad/artifact", params={"min_position": "x"}).json()
    assert both["errors"] == [
        {"field": "path.run_id", "message": f"String should match pattern '{ID_PATTERN}'"},
        {
            "field": "query.min_position",
            "message": f"String should match pattern '{POSITION_PATTERN}'",
        },
    ]
    checked_by_fastapi = projected.get("/runs/-bad", params={"min_position": "x"}).json()
    assert checked_by_fastapi["errors"] == both["errors"]
    ignored = projected.get("/runs/r0/artifact", params={"other": "1"})
    assert ignored.status_code == 200


def test_status_records(projected: TestClient) -> None:
    run = projected.get("/runs/r0").json()
    assert (run["status"], run["node"], run["artifact"]["file_id"]) == ("completed", "n1", FILE_A)
    assert run["metrics"]["tokens"] == 300
    assert projected.get("/runs/r1").json()["status"] == "queued"
    assert projected.get("/runs/zz").status_code == 404
    tokenizer = projected.get("/tokenizers/t0").json()
    assert (tokenizer["status"], tokenizer["vocab_size"]) == ("completed", 512)
    assert projected.get("/tokenizers/zz").status_code == 404


def test_runs_are_paged_newest_first(projected: TestClient) -> None:
    page = projected.get("/runs", params={"limit": 1}).json()
    assert [r["run_id"] for r in page["items"]] == ["r1"]
    assert (page["total"], page["next_offset"]) == (2, 1)
    assert projected.get("/runs", params={"offset": 1}).json()["next_offset"] is None
    assert projected.get("/runs", params={"limit": 0}).status_code == 422


def test_read_your_writes(api: TestClient, live_projector: Projector) -> None:
    accepted = api.post("/runs/train", json={"corpus_file_id": FILE_A}).json()
    run_id, entry_id = accepted["run_id"], accepted["entry_id"]
    response = api.get(f"/runs/{run_id}", params={"min_position": entry_id})
    assert response.status_code == 200
    assert response.json()["status"] == "queued"
    listed = api.get("/runs", params={"min_position": entry_id}).json()
    assert [r["run_id"] for r in listed["items"]] == [run_id]


def test_a_projector_that_lags_gives_504(make_api: MakeApi) -> None:
    api = make_api(timeout_s=0.05)
    accepted = api.post("/runs/train", json={"corpus_file_id": FILE_A}).json()
    response = api.get(f"/runs/{accepted['run_id']}/artifact",
                       params={"min_position": accepted["entry_id"]})  # fmt: skip
    assert (response.status_code, response.json()["code"]) == (504, "READ_MODEL_BEHIND")


def test_a_position_not_in_the_log_is_rejected(api: TestClient) -> None:
    assert api.get("/runs", params={"min_position": "1-0"}).status_code == 422
    entry_id = api.post("/runs/train", json={"corpus_file_id": FILE_A}).json()["entry_id"]
    millis = int(entry_id.split("-")[0]) + 10_000
    beyond = api.get("/tokenizers/t0", params={"min_position": f"{millis}-0"})
    assert (beyond.status_code, beyond.json()["code"]) == (422, "INVALID_REQUEST")
    assert api.get("/runs", params={"min_position": "bogus"}).status_code == 422
    beyond_64_bits = api.get("/runs", params={"min_position": "0-99999999999999999999"})
    assert (beyond_64_bits.status_code, beyond_64_bits.json()["code"]) == (422, "INVALID_REQUEST")


def test_history_comes_from_the_log(projected: TestClient, redis_client: redis.Redis) -> None:
    garbage = text(redis_client.xadd(names.UPLOAD_STREAM, {b"event": b"{}"}))
    redis_client.rpush(names.correlation_key("r0"), f"{names.UPLOAD_STREAM} {garbage}")
    body = projected.get("/runs/r0/events").json()
    types = [entry["event"]["type"] for entry in body["entries"] if entry["event"]]
    assert types == [
        "training.requested",
        "training.started",
        "training.completed",
        "artifact.uploaded",
        "artifact.pointer_set",
    ]
    assert body["entries"][-1]["error"] == "unknown event type None"
    assert projected.get("/runs/nobody/events").status_code == 404


def test_log_lines_as_server_sent_events(projected: TestClient, redis_client: redis.Redis) -> None:
    stream = names.run_logs_stream("r1")
    first = text(redis_client.xadd(stream, {"kind": "progress", "step": "1", "loss": "3.25"}))
    second = text(redis_client.xadd(stream, {"kind": "progress", "step": "two", "loss": "x"}))
    response = projected.get("/runs/r1/logs", params={"follow": "false"})
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/event-stream")
    assert response.text == (
        f'id: {first}\ndata: {{"kind": "progress", "step": 1, "loss": 3.25}}\n\n'
        f'id: {second}\ndata: {{"kind": "progress", "step": "two", "loss": "x"}}\n\n'
    )
    resumed = projected.get(
        "/runs/r1/logs", params={"follow": "false"}, headers={"Last-Event-ID": first}
    )
    assert resumed.text.startswith(f"id: {second}\n")
    assert projected.get("/runs/r1/logs", headers={"Last-Event-ID": "nope"}).status_code == 422
    beyond = projected.get("/runs/r1/logs", headers={"Last-Event-ID": "0-20000000000000000000"})
    assert (beyond.status_code, beyond.json()["code"]) == (422, "INVALID_REQUEST")


def test_the_log_of_an_unknown_run_is_404(api: TestClient) -> None:
    response = api.get("/runs/nobody/logs")
    assert (response.status_code, response.json()["code"]) == (404, "NOT_FOUND")


def test_the_log_of_a_finished_run_ends_with_its_status(
    projected: TestClient, redis_client: redis.Redis
) -> None:
    entry = text(redis_client.xadd(names.run_logs_stream("r0"), {"kind": "completed"}))
    response = projected.get("/runs/r0/logs")
    assert response.text == (
        f'id: {entry}\ndata: {{"kind": "completed"}}\n\n'
        'event: end\ndata: {"status": "completed", "message": null}\n\n'
    )


def test_following_log_lines_ends_at_the_bound(
    make_api: MakeApi, redis_client: redis.Redis
) -> None:
    api = make_api(sse_max_s=0.3)
    append_all(redis_client, [run_events("r2")["training.requested"]()])
    entry = text(redis_client.xadd(names.run_logs_stream("r2"), {"line": "started"}))
    response = api.get("/runs/r2/logs")
    assert response.text.startswith(f"id: {entry}\n")
    assert ": waiting\n\n" in response.text


def test_runs_filtered_by_status_name_and_tags(projected: TestClient) -> None:
    def ids(**params: str | list[str]) -> list[str]:
        response = projected.get("/runs", params=params)
        assert response.status_code == 200
        return [item["run_id"] for item in response.json()["items"]]

    assert ids(status="completed") == ["r0"]
    assert ids(name="r1*") == ["r1"]
    assert ids(tag=["dataset=tiny", "lr=5e-4"]) == ["r1", "r0"]
    assert ids(tag="dataset=other") == []
    for bad in ("dataset", "bad key=1"):
        response = projected.get("/runs", params={"tag": bad})
        assert (response.status_code, response.json()["errors"][0]["field"]) == (422, "query.tag")
    assert projected.get("/runs", params={"status": "lost"}).status_code == 422


def test_metrics_and_tokenizers(projected: TestClient) -> None:
    metrics = projected.get("/runs/r0/metrics")
    assert metrics.json() == {
        "run_id": "r0",
        "step": None,
        "total_steps": None,
        "train": [],
        "validation": [],
    }
    assert projected.get("/runs/nobody/metrics").status_code == 404
    page = projected.get("/tokenizers").json()
    assert ([t["tokenizer_id"] for t in page["items"]], page["total"]) == (["t0"], 1)
