"""The supervisor: readiness, failures at start, and stopping by PID (SIGKILL past the timeout)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from events.engine import free_port
from tests import logged
from tests.waiting import wait_until
from trainledger.cli import app
from trainledger.local import Ports, data_bank
from trainledger.settings import AppSettings, Settings
from trainledger.supervisor import ServiceFailed, ServiceSpec, Supervisor

PYTHON = (sys.executable, "-c")


def python(name: str, code: str, ready_url: str | None = None) -> ServiceSpec:
    return ServiceSpec(name, (code,), ready_url=ready_url, program=PYTHON)


def test_a_service_that_exits_at_start_is_reported(tmp_path: Path) -> None:
    with Supervisor(tmp_path, {}) as supervisor, pytest.raises(ServiceFailed, match="crash exited"):
        supervisor.start(python("crash", "raise SystemExit(3)", ready_url="http://127.0.0.1:1/"))


def test_a_service_that_never_gets_ready_times_out(tmp_path: Path) -> None:
    url = f"http://127.0.0.1:{free_port()}/healthz"
    with Supervisor(tmp_path, {}) as supervisor:
        with pytest.raises(ServiceFailed, match=r"slow not ready after 0\.2s"):
            supervisor.start(
                python("slow", "import time; time.sleep(60)", ready_url=url), timeout=0.2
            )
        assert len(supervisor.running) == 1
    assert supervisor.running == []


def test_stop_all_kills_what_ignores_sigterm_and_skips_the_dead(tmp_path: Path) -> None:
    stubborn = "import signal, sys, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); print('up', flush=True); time.sleep(60)"
    supervisor = Supervisor(tmp_path, {})
    supervisor.start(python("done", "pass", ready_url=None))
    supervisor.start(python("stubborn", stubborn))
    done, stubborn_service = (service.process for service in supervisor.running)
    done.wait(10)
    wait_until(lambda: "up" in (tmp_path / "stubborn.log").read_text(), what="SIGTERM ignored")
    supervisor.stop_all(timeout=0.2)
    assert stubborn_service.returncode == -9
    assert done.returncode == 0


def test_the_stack_uses_a_given_data_bank(tmp_path: Path) -> None:
    settings = Settings(app=AppSettings(data_bank_api_url="http://bank", data_bank_api_key="k"))
    assert data_bank(settings, tmp_path, Ports.free()) == ("http://bank", "k", [])
    url, key, [local] = data_bank(Settings(), tmp_path, Ports(1, 2, 3))
    assert (url, local.name, local.args) == (
        "http://127.0.0.1:2",
        "databank",
        ("databank", "--port", "2"),
    )
    assert local.env["DATABANK__API_UPLOAD_KEYS"] == key == (tmp_path / "databank.key").read_text()


def test_inference_refuses_to_start_without_data_bank(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("APP__DATA_BANK_API_URL", raising=False)
    monkeypatch.delenv("APP__DATA_BANK_API_KEY", raising=False)
    result = CliRunner().invoke(app, ["inference"])
    assert result.exit_code == 2
    assert "APP__DATA_BANK_API_URL" in result.output
    assert logged.formatter().service == "inference"
