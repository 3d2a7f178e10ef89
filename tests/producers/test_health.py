"""Probes and metrics."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator

import pytest
import redis
from fastapi.testclient import TestClient

from events import Consumer, Handlers, RuntimeConfig, ensure_group, names
from events.engine import free_port
from events.liveness import Announcement
from projections import Projector
from tests.producers.conftest import MakeApi
from tests.projections.factories import SIGNING_KEYS
from tests.waiting import wait_until

FAST = RuntimeConfig(block_ms=20, visibility_timeout_ms=600)

Stoppable = Consumer | Projector


@pytest.fixture
def running() -> Iterator[Callable[[Stoppable], Callable[[], None]]]:
    """Run a consumer or the projector in a thread; returns how to stop it (and join it)."""
    started: list[Callable[[], None]] = []

    def start(member: Stoppable) -> Callable[[], None]:
        thread = threading.Thread(target=member.run, daemon=True)
        thread.start()

        def stop() -> None:
            member.stop()
            thread.join(10)
            assert not thread.is_alive()

        started.append(stop)
        return stop

    yield start
    for stop in started:
        stop()


def training_consumer(client: redis.Redis) -> Consumer:
    """A member of the stages' `training` group (it handles nothing: readiness is the point)."""
    return Consumer(
        client,
        streams=[names.TRAINING_STREAM],
        group=names.TRAINING_GROUP,
        handlers=Handlers(),
        config=FAST,
    )


def readiness(api: TestClient) -> tuple[int, str]:
    answer = api.get("/readyz")
    body = answer.json()
    return answer.status_code, body.get("message", body.get("status"))


def test_healthz(api: TestClient) -> None:
    assert api.get("/healthz").json() == {"status": "ok"}


def test_readyz_needs_every_group(api: TestClient, redis_client: redis.Redis) -> None:
    missing = api.get("/readyz")
    assert (missing.status_code, missing.json()["code"]) == (503, "NOT_READY")
    assert "training on stream:training" in missing.json()["message"]
    ensure_group(redis_client, names.TRAINING_STREAM, names.TRAINING_GROUP)
    for stream in names.ALL_STREAMS:
        ensure_group(redis_client, stream, names.PROJECTOR_GROUP)
    assert readiness(api) == (503, "no live consumer in groups: training, projector")
    Announcement(redis_client, names.TRAINING_GROUP, "t", ttl_ms=60_000).renew()
    Announcement(redis_client, names.PROJECTOR_GROUP, "p", ttl_ms=60_000).renew()
    assert api.get("/readyz").json() == {"status": "ready"}


def test_readyz_needs_a_live_projector_and_training_consumer(
    api: TestClient,
    redis_client: redis.Redis,
    running: Callable[[Stoppable], Callable[[], None]],
) -> None:
    for stream in names.ALL_STREAMS:
        ensure_group(redis_client, stream, names.PROJECTOR_GROUP)
    stop_training = running(training_consumer(redis_client))
    wait_until(
        lambda: readiness(api) == (503, "no live consumer in groups: projector"),
        what="the training consumer to announce itself",
    )
    stop_projector = running(Projector(redis_client, SIGNING_KEYS, config=FAST))
    wait_until(lambda: readiness(api) == (200, "ready"), what="the projector to announce itself")

    stop_projector()
    assert readiness(api) == (503, "no live consumer in groups: projector")
    running(Projector(redis_client, SIGNING_KEYS, config=FAST))
    wait_until(lambda: readiness(api) == (200, "ready"), what="a new projector")
    stop_training()
    assert readiness(api) == (503, "no live consumer in groups: training")


def test_readyz_sees_a_consumer_that_died_without_cleanup(
    api: TestClient,
    redis_client: redis.Redis,
    running: Callable[[Stoppable], Callable[[], None]],
) -> None:
    running(Projector(redis_client, SIGNING_KEYS, config=FAST))
    ensure_group(redis_client, names.TRAINING_STREAM, names.TRAINING_GROUP)
    died = Announcement(redis_client, names.TRAINING_GROUP, "killed-worker", ttl_ms=300)
    died.renew()  # what its heartbeat last said before SIGKILL
    wait_until(lambda: readiness(api) == (200, "ready"), what="ready while it is fresh")
    wait_until(
        lambda: readiness(api) == (503, "no live consumer in groups: training"),
        what="its announcement to expire",
    )


def test_an_unreachable_engine(make_api: MakeApi) -> None:
    port = free_port()
    api = make_api(url=f"redis://127.0.0.1:{port}/0")
    ready = api.get("/readyz")
    assert (ready.status_code, ready.json()["code"]) == (503, "ENGINE_UNAVAILABLE")
    read = api.get("/runs/r1")
    assert read.status_code == 503
    for answer in (ready, read):  # the engine's address is for the logs, not for any reader
        assert "127.0.0.1" not in answer.text
        assert str(port) not in answer.text
        assert answer.json()["request_id"] == answer.headers["X-Request-ID"]
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
