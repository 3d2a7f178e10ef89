"""`trainledger databank`: settings from the environment, and the command serving them."""

from __future__ import annotations

import os
import signal
import socket
import threading
from collections.abc import Iterator
from pathlib import Path
from types import FrameType

import httpx
import pytest
from typer.testing import CliRunner

from databank.server import ServingLimits
from tests import logged
from tests.waiting import wait_until
from trainledger.cli import app
from trainledger.databank_cli import DataBankEnv


@pytest.fixture
def environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    for name in list(os.environ):
        if name.startswith("DATABANK__"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("DATABANK__DATA_DIR", str(tmp_path / "data"))
    return tmp_path / "data"


def test_key_lists_are_comma_separated_and_empty_means_unset(
    environment: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DATABANK__API_UPLOAD_KEYS", " up1 , up2,")
    monkeypatch.setenv("DATABANK__API_READ_KEYS", "")
    monkeypatch.setenv("DATABANK__MAX_FILE_BYTES", "123")
    monkeypatch.setenv("DATABANK__STRICT_DELETE", "true")

    settings = DataBankEnv().server_settings()

    assert [key.get_secret_value() for key in settings.upload_keys] == ["up1", "up2"]
    assert settings.read_keys is None
    assert settings.delete_keys is None
    assert settings.data_dir == environment
    assert (settings.max_file_bytes, settings.strict_delete) == (123, True)


def test_settings_can_be_given_directly() -> None:
    env = DataBankEnv(api_upload_keys=("k",), api_delete_keys=("d",), min_free_gb=0.5)

    settings = env.server_settings()

    assert [key.get_secret_value() for key in settings.delete_keys or ()] == ["d"]
    assert settings.min_free_bytes == 1 << 29


def test_the_bounds_on_clients_come_from_the_environment(
    environment: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in [("BODY_IDLE_TIMEOUT_S", "4"), ("HEADER_TIMEOUT_S", "2.5")]:
        monkeypatch.setenv(f"DATABANK__{name}", value)
    monkeypatch.setenv("DATABANK__KEEP_ALIVE_S", "7")
    monkeypatch.setenv("DATABANK__MAX_CONNECTIONS", "9")

    env = DataBankEnv(api_upload_keys=("k",))

    assert env.serving_limits() == ServingLimits(
        header_timeout_s=2.5, keep_alive_s=7, max_connections=9
    )
    assert env.server_settings().body_idle_timeout_s == 4


def test_the_command_refuses_to_start_without_upload_keys(environment: Path) -> None:
    result = CliRunner().invoke(app, ["databank", "--port", "1"])

    assert result.exit_code == 2
    assert "DATABANK__" in result.output


@pytest.fixture
def sigterm_recorded() -> Iterator[list[int]]:
    """Uvicorn re-raises the signal that stopped it; record it instead of dying."""
    received: list[int] = []

    def record(signum: int, frame: FrameType | None) -> None:
        received.append(signum)

    previous = signal.signal(signal.SIGTERM, record)
    yield received
    signal.signal(signal.SIGTERM, previous)


def test_the_command_serves_the_protocol_until_terminated(
    environment: Path, monkeypatch: pytest.MonkeyPatch, sigterm_recorded: list[int]
) -> None:
    monkeypatch.setenv("DATABANK__API_UPLOAD_KEYS", "cli-key")
    monkeypatch.setenv("DATABANK__MIN_FREE_GB", "0")
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    answers: list[httpx.Response] = []

    def use_then_stop() -> None:
        def ready() -> bool:
            try:
                answers.append(httpx.get(f"http://127.0.0.1:{port}/readyz"))
            except httpx.TransportError:
                return False
            return True

        try:
            wait_until(ready, timeout=30, what="the server to answer")
            answers.append(
                httpx.get(
                    f"http://127.0.0.1:{port}/files/{'0' * 64}", headers={"X-API-Key": "cli-key"}
                )
            )
        finally:
            os.kill(os.getpid(), signal.SIGTERM)

    helper = threading.Thread(target=use_then_stop)
    helper.start()
    result = CliRunner().invoke(app, ["databank", "--port", str(port), "--log-level", "warning"])
    helper.join(timeout=30)

    assert result.exit_code == 0, result.output
    assert [answer.status_code for answer in answers] == [200, 404]
    assert (environment / "objects").is_dir()
    assert sigterm_recorded == [signal.SIGTERM]
    assert logged.formatter().service == "databank"
    assert "cli-key" in logged.formatter().secrets
