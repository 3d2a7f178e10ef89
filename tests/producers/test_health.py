"""Probes and metrics."""

from __future__ import annotations

import redis
from fastapi.testclient import TestClient

from events import ensure_group, names
from events.engine import free_port
from tests.producers.conftest import MakeApi


def test_healthz(api: TestClient) -> None:
    assert api.get("/healthz").json() == {"status": "ok"}


def test_readyz_needs_every_group(api: TestClient, redis_client: redis.Redis) -> None:
    missing = api.get("/readyz")
    assert (missing.status_code, missing.json()["code"]) == (503, "NOT_READY")
    assert "training on stream:training" in missing.json()["message"]
    ensure_group(redis_client, names.TRAINING_STREAM, names.TRAINING_GROUP)
    for stream in names.ALL_STREAMS:
        ensure_group(redis_client, stream, names.PROJECTOR_GROUP)
    assert api.get("/readyz").json() == {"status": "ready"}


def test_an_unreachable_engine(make_api: MakeApi) -> None:
    api = make_api(url=f"redis://127.0.0.1:{free_port()}/0")
    ready = api.get("/readyz")
    assert (ready.status_code, ready.json()["code"]) == (503, "ENGINE_UNAVAILABLE")
    assert api.get("/runs/r1").status_code == 503
    assert "trainledger_engine_up 0.0" in api.get("/metrics").text


def test_metrics(api: TestClient, redis_client: redis.Redis) -> None:
    ensure_group(redis_client, names.TRAINING_STREAM, "upload:node-7")
    redis_client.xadd(names.TRAINING_STREAM, {b"event": b"{}"})
    api.get("/runs/none")
    text = api.get("/metrics").text
    assert (
        'trainledger_http_requests_total{method="GET",route="/runs/{run_id}",status="404"} 1.0'
        in text
    )
    assert (
        'trainledger_http_request_duration_seconds_count{method="GET",route="/runs/{run_id}"}'
        in text
    )
    assert 'trainledger_group_lag{group="upload:node-7",stream="stream:training"} 1.0' in text
    assert 'trainledger_group_lag{group="projector",stream="stream:training"} 1.0' in text
    assert 'trainledger_group_pending{group="training",stream="stream:training"} 0.0' in text
    assert "trainledger_group_oldest_pending_age_seconds" in text
    assert "trainledger_group_dead_letters" in text
    assert "trainledger_engine_up 1.0" in text
