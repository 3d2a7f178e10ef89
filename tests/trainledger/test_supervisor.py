"""The supervisor: readiness, failures at start, restarts with backoff, giving up on a child
that keeps dying, and stopping by PID (SIGKILL past the timeout)."""

from __future__ import annotations

import json
import logging
import os
import signal
import sys
import threading
from pathlib import Path

import pytest
from typer.testing import CliRunner

from events.engine import free_port
from httpservice import JsonFormatter
from tests import logged
from tests.waiting import wait_until
from trainledger.cli import app
from trainledger.local import Ports, data_bank
from trainledger.settings import AppSettings, Settings
from trainledger.supervisor import RestartPolicy, ServiceFailed, ServiceSpec, Supervisor

PYTHON = (sys.executable, "-c")
SLEEPER = "import time; time.sleep(60)"
FIRST_SLEEPS = (  # the first run waits to be killed; every later one exits 3 at once
    "import os, sys, time\n"
    "first = not os.path.exists(sys.argv[1])\n"
    "open(sys.argv[1], 'a').close()\n"
    "time.sleep(60) if first else sys.exit(3)"
)
QUICK = RestartPolicy(backoff_s=0.01, max_backoff_s=0.02, max_exits=3, window_s=60)


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


def supervisor_events(caplog: pytest.LogCaptureFixture) -> list[dict[str, object]]:
    """The supervisor's records as the JSON lines `up` writes."""
    formatter = JsonFormatter("up")
    return [
        json.loads(formatter.format(record))
        for record in caplog.records
        if record.name == "trainledger.supervisor"
    ]


def kill_and_wait_for_restart(supervisor: Supervisor) -> int:
    """SIGKILL the one child, run the supervisor's checks until it runs again; its old PID."""
    [service] = supervisor.running
    killed = service.process.pid
    os.kill(killed, signal.SIGKILL)

    def restarted() -> bool:
        supervisor.check()
        return service.process.pid != killed

    wait_until(restarted, what=f"a restart of {service.spec.name}")
    return killed


def started(supervisor: Supervisor, marker: Path) -> int:
    supervisor.start(ServiceSpec("crash", (FIRST_SLEEPS, str(marker)), program=PYTHON))
    wait_until(marker.exists, what="the first run")
    return supervisor.running[0].process.pid


def test_a_killed_child_is_logged_and_restarted_with_a_new_pid(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, "trainledger.supervisor")
    with Supervisor(tmp_path, {}, QUICK) as supervisor:
        supervisor.start(python("sleeper", SLEEPER))
        first = kill_and_wait_for_restart(supervisor)
        [service] = supervisor.running
        assert service.process.poll() is None
    exited, again = supervisor_events(caplog)[1:]
    assert exited["event"] == "service_exited"
    assert (exited["child"], exited["pid"], exited["exit_status"]) == ("sleeper", first, -9)
    assert f"sleeper (PID {first}) exited with signal SIGKILL" in str(exited["message"])
    assert (again["event"], again["pid"]) == ("service_started", service.process.pid)


def test_a_child_that_keeps_dying_stops_the_watch(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, "trainledger.supervisor")
    with Supervisor(tmp_path, {}, QUICK) as supervisor:
        os.kill(started(supervisor, tmp_path / "ran"), signal.SIGKILL)
        with pytest.raises(ServiceFailed) as failed:
            supervisor.watch(threading.Event(), tick=0.01)
    assert str(failed.value) == (
        f"crash exited 3 times in 60s (last: status 3); see {tmp_path / 'crash.log'}"
    )
    events = [event["event"] for event in supervisor_events(caplog)]
    assert events == ["service_started", "service_exited"] * 2 + [
        "service_started",
        "service_keeps_dying",
    ]


def test_exits_older_than_the_window_are_forgotten(tmp_path: Path) -> None:
    forgetful = RestartPolicy(backoff_s=0.01, max_exits=2, window_s=0)
    with Supervisor(tmp_path, {}, forgetful) as supervisor:
        supervisor.start(python("sleeper", SLEEPER))
        for _ in range(3):  # two exits would give up, were they in one window
            kill_and_wait_for_restart(supervisor)
        assert len(supervisor.running[0].exits) == 1


def test_watch_returns_once_stopping_is_set(tmp_path: Path) -> None:
    stopping = threading.Event()
    stopping.set()
    with Supervisor(tmp_path, {}) as supervisor:
        supervisor.start(python("sleeper", SLEEPER))
        supervisor.watch(stopping)
        assert supervisor.running[0].process.poll() is None


def test_the_backoff_doubles_up_to_its_cap() -> None:
    policy = RestartPolicy(backoff_s=0.5, max_backoff_s=3.0)
    assert [policy.delay(exits) for exits in (1, 2, 3, 4, 5)] == [0.5, 1.0, 2.0, 3.0, 3.0]
