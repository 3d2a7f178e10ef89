"""The README's first run and walk-through, exactly as written, in a fresh copy of the checkout.

Default settings and a relative `var/`: `.venv/bin/trainledger up` from the checkout, the API
and inference answering on the README's ports, the address table printed while `up` runs; the
README's marked shell blocks (first run, CLI walk-through) run as pasted in a second shell; a
second `up` refused, `rebuild --verify` from another directory, a killed service restarted, and
after SIGTERM no child and no engine left, checked by PID.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from tests import logged
from tests.waiting import wait_until

ROOT = Path(__file__).resolve().parents[2]
API, DATA_BANK, INFERENCE = (
    "http://127.0.0.1:8000",
    "http://127.0.0.1:8010",
    "http://127.0.0.1:8020",
)


def fresh_checkout(target: Path) -> Path:
    """The repository's files (tracked or not ignored) without `var/`, and its `.venv`."""
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT, check=True, capture_output=True,
    ).stdout.decode()  # fmt: skip
    for name in filter(None, listed.split("\0")):
        if (ROOT / name).is_file():  # a file deleted in the working tree is still listed
            (target / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(ROOT / name, target / name)
    (target / ".venv").symlink_to(Path(sys.prefix))
    return target


def readme_block(marker: str) -> str:
    """The shell block the README marks with `<!-- readme-test: marker -->`."""
    text = (ROOT / "README.md").read_text()
    after = text.split(f"<!-- readme-test: {marker} -->\n```sh\n", 1)[1]
    return after.split("\n```", 1)[0]


def status(url: str) -> int | None:
    try:
        return httpx.get(url, timeout=2).status_code
    except httpx.HTTPError:
        return None


def started(stderr: Path) -> list[tuple[str, int]]:
    """(service, PID) of every child `up` logged as started, in order."""
    return [
        (str(record["child"]), int(str(record["pid"])))
        for record in logged.records(stderr.read_text())
        if record.get("event") == "service_started"
    ]


def gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


def test_the_readme_commands_in_a_fresh_checkout(tmp_path: Path) -> None:
    for port in (8000, 8010, 8020):
        with socket.socket() as probe:
            assert probe.connect_ex(("127.0.0.1", port)) != 0, f"port {port} is taken"
    checkout = fresh_checkout(tmp_path / "trainledger")
    env = {"PATH": os.environ["PATH"], "HOME": os.environ["HOME"]}
    out, err = tmp_path / "up.out", tmp_path / "up.err"
    with out.open("w") as stdout, err.open("w") as stderr:
        up = subprocess.Popen(
            [".venv/bin/trainledger", "up"], cwd=checkout, env=env, stdout=stdout, stderr=stderr
        )
    try:
        wait_until(lambda: "write/read API" in out.read_text(), timeout=240, what="the table")
        assert (status(f"{API}/healthz"), status(f"{INFERENCE}/healthz")) == (200, 200)
        wait_until(lambda: status(f"{API}/readyz") == 200, timeout=120, what="the API ready")
        engine = int((checkout / "var" / "engine" / "engine.pid").read_text())

        key = (checkout / "var" / "databank.key").read_text()  # KEY=$(cat var/databank.key)
        uploaded = httpx.post(
            f"{DATA_BANK}/files", headers={"X-API-Key": key}, files={"file": ("corpus.txt", b"x")}
        )
        assert uploaded.status_code == 201, uploaded.text

        script = readme_block("first-run") + "\n" + readme_block("walk-through")
        pasted = subprocess.run(
            ["bash", "-euo", "pipefail", "-c", script], cwd=checkout, env=env,
            capture_output=True, text=True, timeout=900,
        )  # fmt: skip
        assert pasted.returncode == 0, pasted.stderr[-3000:]
        assert (checkout / "first-run-model" / "config.json").is_file()
        listed = httpx.get(f"{API}/runs", params={"tag": "try=readme"}).json()["items"]
        assert [(run["name"], run["status"]) for run in listed] == [("first-run", "completed")]
        assert "would delete" in pasted.stdout, pasted.stdout[-2000:]

        second = subprocess.run(
            [".venv/bin/trainledger", "up"], cwd=checkout, env=env, capture_output=True,
            text=True, timeout=120,
        )  # fmt: skip
        assert second.returncode == 1
        assert second.stderr.strip().endswith(
            f"var is in use by another trainledger up (PID {up.pid}); "
            "stop it first, or give this one another --root"
        )

        elsewhere = tmp_path / "elsewhere"
        elsewhere.mkdir()
        rebuilt = subprocess.run(
            [checkout / ".venv/bin/trainledger", "rebuild", "--verify"], cwd=elsewhere,
            env={**env, "REDIS__DATA_DIR": "../trainledger/var/engine"},  # and its key beside
            capture_output=True,
            text=True, timeout=120,
        )  # fmt: skip
        assert rebuilt.returncode == 0, rebuilt.stderr
        assert "missing: 0" in rebuilt.stdout

        projector = dict(started(err))["projector"]
        os.kill(projector, signal.SIGKILL)
        wait_until(
            lambda: [name for name, _ in started(err)].count("projector") == 2,
            timeout=30,
            what="the projector restarted",
        )
        assert gone(projector)
        wait_until(lambda: status(f"{API}/readyz") == 200, timeout=60, what="ready again")
    finally:
        up.send_signal(signal.SIGTERM)
        up.wait(120)
    assert up.returncode == 0, err.read_text()[-2000:]
    assert out.read_text().rstrip().endswith("stopped")
    children = started(err)
    assert {name for name, _ in children} == {"databank", "projector", "worker", "api", "inference"}
    left = [pid for pid in (engine, *(pid for _, pid in children)) if not gone(pid)]
    assert left == [], f"still running: {left}"
    assert not (checkout / "var" / "engine" / "engine.pid").exists()


@pytest.fixture(autouse=True)
def _no_stray_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    """Nothing of this process's environment reaches `up` (it gets PATH and HOME only)."""
    monkeypatch.delenv("REDIS__URL", raising=False)
