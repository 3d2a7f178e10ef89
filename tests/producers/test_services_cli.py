"""`trainledger api`, `projector` and `rebuild` through the real command line."""

from __future__ import annotations

import os
import signal
import threading
from collections.abc import Iterator
from types import FrameType

import httpx
import pytest
import redis
from typer.testing import CliRunner

from events import SigningKeys, names
from events.engine import free_port
from projections import ReadModel
from tests import logged
from tests.events.appending import append_all
from tests.projections.factories import FILE_A, SIGNING_KEY, completed_run, signed_pointer
from tests.waiting import wait_until
from trainledger.cli import app


@pytest.fixture
def env(redis_url: str, redis_client: redis.Redis) -> dict[str, str]:
    return {"REDIS__URL": redis_url, "APP__SIGNING_KEY": SIGNING_KEY}


@pytest.fixture
def sigterms() -> Iterator[list[int]]:
    """Record SIGTERMs instead of dying (uvicorn re-raises the one it caught when it stops)."""
    seen: list[int] = []

    def record(signum: int, frame: FrameType | None) -> None:
        seen.append(signum)

    previous = signal.signal(signal.SIGTERM, record)
    yield seen
    signal.signal(signal.SIGTERM, previous)


def terminate_when(condition: str, check: object) -> threading.Thread:
    def run() -> None:
        assert callable(check)
        wait_until(lambda: bool(check()), what=condition)
        os.kill(os.getpid(), signal.SIGTERM)

    thread = threading.Thread(target=run)
    thread.start()
    return thread


def test_rebuild_verify_and_repair(env: dict[str, str], redis_client: redis.Redis) -> None:
    append_all(redis_client, completed_run("r1"))
    runner = CliRunner()
    drifted = runner.invoke(app, ["rebuild", "--verify", "--show", "1"], env=env)
    assert drifted.exit_code == 1
    assert "missing: 3" in drifted.output
    assert "... and 2 more" in drifted.output
    assert "verified only: nothing changed" in drifted.output
    repaired = runner.invoke(app, ["rebuild"], env=env)
    assert repaired.exit_code == 0
    assert "replayed 5 events (0 undecodable skipped)" in repaired.output
    assert "repaired" in repaired.output
    clean = runner.invoke(app, ["rebuild", "--verify"], env=env)
    assert clean.exit_code == 0
    assert "missing: 0" in clean.output
    assert logged.formatter().service == "rebuild"


def test_projector_command_serves_until_sigterm(
    env: dict[str, str], redis_client: redis.Redis
) -> None:
    append_all(redis_client, completed_run("r1"))
    killer = terminate_when("the pointer", lambda: ReadModel(redis_client).run_artifact("r1"))
    result = CliRunner().invoke(app, ["projector"], env=env)
    killer.join(10)
    assert result.exit_code == 0
    assert redis_client.exists(names.run_status_key("r1")) == 1
    assert logged.formatter().service == "projector"


def test_api_command_serves_until_sigterm_logging_json(
    env: dict[str, str], redis_client: redis.Redis, sigterms: list[int]
) -> None:
    port = free_port()
    redis_client.hset(names.run_status_key("r1"), "status", "exploded")
    answers: list[int] = []

    def healthy() -> bool:
        try:
            return httpx.get(f"http://127.0.0.1:{port}/healthz").status_code == 200
        except httpx.TransportError:
            return False

    def fail_once() -> bool:
        if healthy():
            headers = {"X-Request-ID": "cli-500"}
            answers.append(
                httpx.get(f"http://127.0.0.1:{port}/runs/r1", headers=headers).status_code
            )
        return bool(answers)

    killer = terminate_when("the API", fail_once)
    result = CliRunner().invoke(
        app,
        ["api", "--port", str(port), "--host", "127.0.0.1"],
        env={**env, "SECURITY__API_KEY": "api-s3cret"},
    )
    killer.join(10)
    assert result.exit_code == 0, result.output
    assert sigterms == [signal.SIGTERM]
    assert answers == [500]
    assert not healthy()
    lines = logged.records(result.stderr)
    assert all(line["service"] == "api" for line in lines)
    [failure] = [line for line in lines if line.get("request_id") == "cli-500"]
    assert (failure["level"], failure["message"]) == ("error", "unhandled error in GET /runs/r1")
    assert "exploded" in str(failure["exception"])
    assert "api-s3cret" in logged.formatter().secrets


def test_rebuild_reports_the_pointers_it_refused(
    env: dict[str, str], redis_client: redis.Redis
) -> None:
    stranger = SigningKeys(current="someone-elses-key-" + "9" * 32)
    forged = signed_pointer("run", {"correlation_id": "r1"}, FILE_A, keys=stranger)
    append_all(redis_client, [*completed_run("r1")[:-1], forged])
    result = CliRunner().invoke(app, ["rebuild"], env=env)
    assert result.exit_code == 0, result.output
    assert "replayed 4 events (0 undecodable skipped)" in result.output
    assert "refused 1 pointer(s) whose signature does not verify" in result.output
    assert ReadModel(redis_client).run_artifact("r1") is None
