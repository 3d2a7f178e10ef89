"""The API answers in `httpservice`'s one JSON shape, with UPPER_SNAKE codes and request ids."""

from __future__ import annotations

import pytest
import redis
from fastapi.testclient import TestClient

from events import names
from producers import ApiConfig
from producers.services import Services


def test_unknown_routes_and_methods(api: TestClient) -> None:
    missing = api.get("/nowhere")
    assert missing.status_code == 404
    assert missing.json() == {
        "code": "NOT_FOUND",
        "message": "GET /nowhere: Not Found",
        "request_id": missing.headers["x-request-id"],
        "errors": [],
    }
    wrong = api.delete("/runs")
    assert (wrong.status_code, wrong.json()["code"]) == (405, "METHOD_NOT_ALLOWED")
    assert wrong.headers["allow"] == "GET"


def test_request_ids_are_echoed_when_sane(api: TestClient) -> None:
    echoed = api.get("/healthz", headers={"X-Request-ID": "trace-1:a.b_c"})
    assert echoed.headers["x-request-id"] == "trace-1:a.b_c"
    replaced = api.get("/healthz", headers={"X-Request-ID": "no spaces please"})
    assert replaced.headers["x-request-id"] not in ("", "no spaces please")
    assert api.get("/healthz").headers["x-request-id"] != replaced.headers["x-request-id"]


def test_an_unexpected_failure_is_a_json_500(api: TestClient, redis_client: redis.Redis) -> None:
    redis_client.hset(names.run_status_key("r1"), "status", "exploded")
    response = api.get("/runs/r1", headers={"X-Request-ID": "boom"})
    assert response.status_code == 500
    assert response.json() == {
        "code": "INTERNAL_ERROR",
        "message": "internal error; see the server log",
        "request_id": "boom",
        "errors": [],
    }
    metrics = api.get("/metrics").text
    assert 'trainledger_http_requests_total{method="GET",route="/runs/{run_id}",status="500"}' in (
        metrics
    )
    assert 'route="unmatched",status="404"' not in metrics
    api.get("/nowhere")
    assert 'route="unmatched",status="404"' in api.get("/metrics").text


def test_every_validation_failure_is_listed(api: TestClient) -> None:
    body = {f"field{i}": i for i in range(7)}
    answer = api.post("/tokenizers/train", json=body).json()
    assert answer["code"] == "VALIDATION_ERROR"
    assert answer["message"].endswith("(+3 more)")
    assert answer["message"].count(";") == 4
    assert [error["field"] for error in answer["errors"]] == [
        "body.corpus_file_id",
        *(f"body.field{i}" for i in range(7)),
    ]


def test_services_exist_only_within_the_lifespan() -> None:
    services = Services(ApiConfig(redis_url="redis://127.0.0.1:1/0"))
    for name in ("aio", "client", "reads", "log"):
        with pytest.raises(RuntimeError, match="lifespan"):
            getattr(services, name)
