"""Every command starts the same way: settings read, JSON logging on, every secret masked."""

from __future__ import annotations

import json
import logging

import pytest
import redis
from typer.testing import CliRunner

from tests import logged
from trainledger.cli import app
from trainledger.startup import start


def test_start_masks_every_known_secret(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("APP__DATA_BANK_API_KEY", "bank-s3cret")
    monkeypatch.setenv("SECURITY__API_KEY", "api-s3cret")
    settings = start("tool", "extra-s3cret", None)
    assert settings.security.api_key == "api-s3cret"
    assert logged.formatter().secrets == ("bank-s3cret", "api-s3cret", "extra-s3cret")
    logging.getLogger("trainledger.test").warning(
        "keys bank-s3cret api-s3cret extra-s3cret", extra={"run_id": "r1"}
    )
    record = json.loads(capsys.readouterr().err)
    assert (record["service"], record["level"], record["run_id"]) == ("tool", "warning", "r1")
    assert record["message"] == "keys *** *** ***"


def test_without_keys_nothing_is_masked(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("APP__DATA_BANK_API_KEY", raising=False)
    monkeypatch.delenv("SECURITY__API_KEY", raising=False)
    start("tool")
    assert logged.formatter().secrets == ()


def test_the_dlq_commands_log_json(redis_url: str, redis_client: redis.Redis) -> None:
    env = {"REDIS__URL": redis_url}
    listed = CliRunner().invoke(app, ["dlq", "list"], env=env)
    assert listed.exit_code == 0, listed.output
    assert logged.formatter().service == "dlq"
    replayed = CliRunner().invoke(
        app, ["dlq", "replay", "--stream", "stream:training", "--group", "training"], env=env
    )
    assert replayed.exit_code == 0, replayed.output
    assert logged.formatter().service == "dlq"
