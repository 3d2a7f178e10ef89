"""Training specs are bounded by the API's settings, below `TrainingSpec`'s own hard limits."""

from __future__ import annotations

import pytest
import redis
from fastapi.testclient import TestClient

from events import names
from producers import ApiConfig, SpecLimits, create_app
from tests.producers.test_commands import SPEC
from trainledger.services_cli import api_config
from trainledger.settings import Settings

HUGE = {
    **SPEC,
    "model": {"family": "gpt2", "n_layer": 48, "n_head": 64, "n_embd": 4096},
    "training": {"max_steps": 10, "batch_size": 1024, "sequence_length": 4096, "processes": 64},
}


def test_a_spec_beyond_the_default_bounds_is_422_and_appends_nothing(
    api: TestClient, redis_client: redis.Redis
) -> None:
    response = api.post("/runs/train", json=HUGE)
    assert response.status_code == 422, response.text
    body = response.json()
    assert body["code"] == "SPEC_TOO_LARGE"
    assert body["request_id"]
    fields = {error["field"]: error["message"] for error in body["errors"]}
    assert fields == {
        "body.model.n_layer": "at most 12 (API__MAX_N_LAYER)",
        "body.model.n_embd": "at most 1024 (API__MAX_N_EMBD)",
        "body.training.batch_size": "at most 256 (API__MAX_BATCH_SIZE)",
        "body.training.sequence_length": "at most 1024 (API__MAX_SEQUENCE_LENGTH)",
        "body.training.processes": "at most 8 (API__MAX_PROCESSES)",
    }
    assert redis_client.xlen(names.TRAINING_STREAM) == 0
    assert api.post("/runs/train", json=SPEC).status_code == 202


def test_a_named_size_beyond_a_lowered_bound_names_the_size(
    redis_url: str, redis_client: redis.Redis
) -> None:
    limits = SpecLimits(max_n_layer=4, max_n_embd=256)
    config = ApiConfig(redis_url=redis_url, limits=limits)
    with TestClient(create_app(config)) as client:
        small = client.post("/runs/train", json={**SPEC, "model": {"size": "small"}})
        mini = client.post("/runs/train", json={**SPEC, "model": {"size": "mini"}})
    assert small.status_code == 422
    assert [error["field"] for error in small.json()["errors"]] == [
        "body.model.size",
        "body.model.size",
    ]
    assert mini.status_code == 202


def test_the_bounds_come_from_the_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("API__MAX_N_LAYER", "24")
    monkeypatch.setenv("API__MAX_SEQUENCE_LENGTH", "2048")
    monkeypatch.setenv("API__MAX_PROCESSES", "2")
    limits = api_config(Settings(), "redis://127.0.0.1:1/0").limits
    assert limits == SpecLimits(max_n_layer=24, max_sequence_length=2048, max_processes=2)
