"""`/healthz`, `/readyz` and `/metrics`, and the engine down."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from databank import ArtifactFetcher
from events import PROBE_POLICY, connect
from inference import Generator, create_app
from projections import ReadModel
from tests.inference.conftest import Service
from tests.projections.factories import SIGNING_KEYS


@pytest.fixture
def engine_down(fetcher: ArtifactFetcher, generator: Generator) -> Iterator[TestClient]:
    """The service over an engine that is not there."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    client = connect(f"redis://127.0.0.1:{port}", PROBE_POLICY)
    with TestClient(
        create_app(ReadModel(client), fetcher, generator, signing_keys=SIGNING_KEYS)
    ) as test_client:
        yield test_client


def test_probes_answer_while_the_engine_does(service: Service) -> None:
    assert service.client.get("/healthz").json() == {"status": "ok"}
    assert service.client.get("/readyz").json() == {"status": "ready"}


def test_without_the_engine_it_is_alive_not_ready(engine_down: TestClient) -> None:
    assert engine_down.get("/healthz").status_code == 200
    ready = engine_down.get("/readyz")
    assert ready.status_code == 503
    assert ready.json()["code"] == "NOT_READY"
    answer = engine_down.post("/generate", json={"run_id": "r", "prompt": "x"})
    assert answer.status_code == 503
    assert answer.json()["code"] == "ENGINE_UNAVAILABLE"
    assert answer.json()["request_id"] == answer.headers["X-Request-ID"]
    scored = engine_down.post("/score", json={"run_id": "r", "text": "x"})
    streamed = engine_down.post("/generate", json={"run_id": "r", "prompt": "x", "stream": True})
    for other in (scored, streamed):
        assert (other.status_code, other.json()["code"]) == (503, "ENGINE_UNAVAILABLE")
        assert other.json()["request_id"] == other.headers["X-Request-ID"]
    for body in (ready.text, answer.text, scored.text):  # the engine's address: logs only
        assert "127.0.0.1" not in body
    assert engine_down.get("/metrics").status_code == 200


def test_metrics_count_what_happened(service: Service, artifact: bytes) -> None:
    service.publish("run-1", artifact)
    service.ok("/generate", run_id="run-1", prompt="The", max_new_tokens=4)
    service.ok("/generate", run_id="run-1", prompt="A", max_new_tokens=3)
    service.ok("/score", run_id="run-1", text="x")
    found = service.metrics()
    assert found["trainledger_inference_artifact_cache_misses_total"] == 1
    assert found["trainledger_inference_artifact_cache_hits_total"] == 0
    assert found["trainledger_inference_artifact_download_bytes_total"] == len(artifact)
    assert found["trainledger_inference_artifact_download_seconds_total"] > 0
    assert found["trainledger_inference_artifact_cache_bytes"] > 0
    assert found["trainledger_inference_artifact_cache_evictions_total"] == 0
    assert found["trainledger_inference_model_cache_misses_total"] == 1
    assert found["trainledger_inference_model_cache_hits_total"] == 2
    assert found["trainledger_inference_model_load_seconds_count"] == 1
    assert found["trainledger_inference_tokens_generated_total"] == 7
    assert found["trainledger_inference_batch_rows_count"] == 2
    assert found["trainledger_inference_batch_rows_sum"] == 2
    assert found['trainledger_inference_batch_rows_bucket{le="1"}'] == 2
    generate = 'method="POST",route="/generate"'
    assert found[f'trainledger_http_requests_total{{{generate},status="200"}}'] == 2
    assert found[f"trainledger_http_request_duration_seconds_count{{{generate}}}"] == 2


def test_a_cached_model_serves_while_data_bank_is_down(service: Service, artifact: bytes) -> None:
    service.publish("run-1", artifact)
    asked = {"run_id": "run-1", "prompt": "The", "max_new_tokens": 4}
    first = service.ok("/generate", **asked)
    service.bank.faults.outage(300)
    assert service.ok("/generate", **asked)["text"] == first["text"]  # from memory
    keeps_none = Generator(max_models=0)
    try:
        app = create_app(
            ReadModel(service.engine), service.fetcher, keeps_none, signing_keys=SIGNING_KEYS
        )
        with TestClient(app) as cold:  # nothing in memory: loaded from the disk cache
            answer = cold.post("/generate", json=asked)
        assert answer.status_code == 200
        assert answer.json()["text"] == first["text"]
    finally:
        keeps_none.close()
    assert service.bank.faults.applied["outage"] == 0


def test_data_bank_down_before_the_first_load_is_a_502(
    service: Service, other_artifact: bytes
) -> None:
    service.publish("run-2", other_artifact)
    service.bank.faults.outage(300)
    answer = service.client.post("/generate", json={"run_id": "run-2", "prompt": "The"})
    assert answer.status_code == 502
    assert answer.json()["code"] == "DATA_BANK_ERROR"
    assert service.bank.faults.applied["outage"] > 0
