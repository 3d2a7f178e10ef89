"""A service started alone (no `REDIS__URL`) stops the private engine it started on SIGTERM."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from events.engine import PID_FILE, free_port
from tests.waiting import wait_until

ROOT = Path(__file__).resolve().parents[2]


def answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


def test_sigterm_to_the_api_stops_its_private_engine(tmp_path: Path) -> None:
    env = {key: value for key, value in os.environ.items() if not key.startswith("REDIS__")}
    port = free_port()
    api = subprocess.Popen(
        [sys.executable, "-m", "trainledger", "api", "--port", str(port)],
        cwd=tmp_path, env={**env, "REDIS__DATA_DIR": "engine"},  # relative to the api's directory
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        wait_until(lambda: answers(f"http://127.0.0.1:{port}/healthz"), timeout=60, what="api")
        engine = int((tmp_path / "engine" / PID_FILE).read_text())
        os.kill(engine, 0)  # running
    finally:
        api.send_signal(signal.SIGTERM)
        _, errors = api.communicate(timeout=60)
    # uvicorn shuts down gracefully, then re-raises SIGTERM; it unwinds into the engine's stop
    assert api.returncode == 128 + signal.SIGTERM, errors
    with pytest.raises(ProcessLookupError):
        os.kill(engine, 0)
    assert "Traceback" not in errors
