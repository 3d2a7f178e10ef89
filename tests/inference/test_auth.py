"""With an API key configured, generation and scoring need it in `X-API-Key`; health does not."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import redis
from fastapi.testclient import TestClient

from databank import ArtifactFetcher
from inference import Generator, create_app
from projections import ReadModel
from tests.projections.factories import SIGNING_KEYS

KEY = "inference-test-key"


@pytest.fixture
def guarded(
    redis_client: redis.Redis, fetcher: ArtifactFetcher, generator: Generator
) -> Iterator[TestClient]:
    app = create_app(
        ReadModel(redis_client), fetcher, generator, api_key=KEY, signing_keys=SIGNING_KEYS
    )
    with TestClient(app) as client:
        yield client


@pytest.mark.parametrize(
    ("path", "body"),
    [("/generate", {"run_id": "nope", "prompt": "x"}), ("/score", {"run_id": "nope", "text": "x"})],
)
def test_a_missing_or_wrong_key_is_refused_as_json(
    guarded: TestClient, path: str, body: dict[str, str]
) -> None:
    missing = guarded.post(path, json=body)
    assert missing.status_code == 401
    assert missing.json()["code"] == "UNAUTHORIZED"
    assert missing.json()["request_id"] == missing.headers["X-Request-ID"]
    wrong = guarded.post(path, json=body, headers={"X-API-Key": "guess"})
    assert wrong.status_code == 403
    assert wrong.json()["code"] == "FORBIDDEN"
    right = guarded.post(path, json=body, headers={"X-API-Key": KEY})
    assert right.status_code == 404, right.text
    assert right.json()["code"] == "NOT_FOUND"


def test_health_needs_no_key(guarded: TestClient) -> None:
    assert guarded.get("/healthz").status_code == 200
