"""Concurrent requests over real connections: one download and one load for ten first
requests, and batched answers equal to the answers given one by one."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from inference import create_app
from projections import ReadModel
from tests.databank.serving import running
from tests.inference.conftest import Service, samples
from tests.projections.factories import SIGNING_KEYS


@pytest.fixture
def url(service: Service) -> Iterator[str]:
    """The service on uvicorn (loopback, a thread), for truly concurrent connections."""
    app = create_app(
        ReadModel(service.engine), service.fetcher, service.generator, signing_keys=SIGNING_KEYS
    )
    with running(app) as base:
        yield base


def post_all(url: str, bodies: list[dict[str, object]]) -> list[dict[str, object]]:
    """POST every body to `/generate` at once; the answers in order."""

    def post(body: dict[str, object]) -> dict[str, object]:
        answer = httpx.post(f"{url}/generate", json=body, timeout=120)
        assert answer.status_code == 200, answer.text
        found = answer.json()
        assert isinstance(found, dict)
        return found

    with ThreadPoolExecutor(len(bodies)) as pool:
        return list(pool.map(post, bodies))


def test_ten_first_requests_download_and_load_once(
    service: Service, url: str, artifact: bytes
) -> None:
    file_id = service.publish("run-1", artifact)
    body = {"run_id": "run-1", "prompt": "The quick", "max_new_tokens": 8}
    answers = post_all(url, [body] * 10)
    assert len({answer["text"] for answer in answers}) == 1
    assert {answer["file_id"] for answer in answers} == {file_id}
    assert service.fetcher.stats().misses == 1
    assert len(service.bank.faults.requests("GET", f"/files/{file_id}")) == 1
    assert service.generator.stats().loads == 1
    found = samples(httpx.get(f"{url}/metrics").text)
    assert found["trainledger_inference_model_cache_misses_total"] == 1
    assert found["trainledger_inference_model_load_seconds_count"] == 1
    rows = service.generator.stats().batch_rows
    assert sum(size * count for size, count in rows.items()) == 10
    assert max(rows) <= 8


def test_concurrent_answers_equal_those_given_one_by_one(
    service: Service, url: str, artifact: bytes
) -> None:
    service.publish("run-1", artifact)
    bodies: list[dict[str, object]] = [
        {"run_id": "run-1", "prompt": prompt, "max_new_tokens": tokens, **sampling}
        for prompt, tokens in (("The", 12), ("A quick brown", 5), ("x", 20), ("The river", 9))
        for sampling in ({}, {"temperature": 0.8, "seed": 11, "top_k": 20, "top_p": 0.9})
    ]
    alone = [service.ok("/generate", **body) for body in bodies]
    together = post_all(url, bodies)
    assert [a["texts"] for a in together] == [a["texts"] for a in alone]
    assert [a["usage"] for a in together] == [a["usage"] for a in alone]
    rows = service.generator.stats().batch_rows
    assert sum(size * count for size, count in rows.items()) == 2 * len(bodies)
