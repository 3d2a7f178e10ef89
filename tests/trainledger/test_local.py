"""The local stack, as a user runs it: `trainledger up` and `trainledger demo`."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import typer
from starlette.types import Receive, Scope, Send
from typer.testing import CliRunner

from projections import RunStatus
from tests import logged
from tests.databank.serving import running
from tests.waiting import wait_until
from trainledger import local_cli
from trainledger.cli import app
from trainledger.local import LOCK_FILE, Ports, RootBusy, Stack, hold_root, local_key

ROOT = Path(__file__).resolve().parents[2]


def answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """`trainledger up --workers 2` in a process of its own, stopped with SIGTERM afterwards."""
    root = tmp_path_factory.mktemp("up")
    ports = Ports.free()
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("REDIS__", "APP__", "WORKER__"))
    }
    env["APP__NODE_ID"] = "box"
    process = subprocess.Popen(
        [sys.executable, "-m", "trainledger", "up", "--root", str(root), "--api-port", str(ports.api),
         "--databank-port", str(ports.databank), "--inference-port", str(ports.inference),
         "--workers", "2"],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    try:
        wait_until(  # seven processes importing torch or transformers on a loaded 2-core machine
            lambda: answers(f"http://127.0.0.1:{ports.inference}/healthz"), timeout=360, what="up"
        )
        yield Stack(
            redis_url="",
            api_url=f"http://127.0.0.1:{ports.api}",
            databank_url=f"http://127.0.0.1:{ports.databank}",
            databank_key=(root / "databank.key").read_text(),
            inference_url=f"http://127.0.0.1:{ports.inference}",
            logs=root / "logs",
            key_file=root / "databank.key",
        )
    finally:
        process.send_signal(signal.SIGTERM)
        output, _ = process.communicate(timeout=60)
    assert process.returncode == 0, output
    assert "stopped" in output
    assert "write/read API" in output
    assert oct((root / "databank.key").stat().st_mode & 0o777) == "0o600"
    signing = (root / "signing.key").read_text()  # generated: every service verified with it
    assert oct((root / "signing.key").stat().st_mode & 0o777) == "0o600"
    assert signing not in output
    assert not [log.name for log in (root / "logs").iterdir() if signing in log.read_text()]


def test_up_runs_the_pipeline(stack: Stack) -> None:
    run_id = local_cli.train(stack, steps=3)
    status = local_cli.completed(local_cli.wait_for(stack, run_id, timeout=240))
    assert status.artifact is not None
    pointer, text = local_cli.use(stack, run_id)
    assert pointer == status.artifact
    assert text.startswith("The river")
    for service in ("databank", "api", "inference", "worker-1", "worker-2"):
        lines = logged.records((stack.logs / f"{service}.log").read_text())
        assert lines, f"{service} logged no JSON"
        assert {line["service"] for line in lines} == {service.partition("-")[0]}


def test_up_starts_each_worker_with_its_node_id_and_share_of_the_cores(stack: Stack) -> None:
    threads = max(1, len(os.sched_getaffinity(0)) // 2)
    for n in (1, 2):
        lines = logged.records((stack.logs / f"worker-{n}.log").read_text())
        [starting] = [line for line in lines if line.get("event") == "worker_starting"]
        assert starting["node_id"] == f"box-{n}"
        assert str(starting["message"]).endswith(f", {threads} torch threads")


def test_a_run_that_never_appears_times_out(stack: Stack) -> None:
    with pytest.raises(typer.Exit):
        local_cli.wait_for(stack, "no-such-run", timeout=0)


def test_waiting_prints_each_status_once_and_returns_the_final_one(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    script = iter(["queued", "queued", "running", "running", "completed"])

    async def read_api(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":  # the lifespan scope: nothing to start
            return
        body = RunStatus(run_id="r", status=next(script)).model_dump_json().encode()
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": body})

    with running(read_api) as url:
        stack = Stack(
            redis_url="",
            api_url=url,
            databank_url="",
            databank_key="",
            inference_url="",
            logs=tmp_path,
            key_file=tmp_path / "key",
        )
        status = local_cli.wait_for(stack, "r", timeout=60)

    assert status.status == "completed"
    assert capsys.readouterr().out.split() == ["queued", "running", "completed"]


def test_a_run_that_did_not_complete_exits_1() -> None:
    with pytest.raises(typer.Exit):
        local_cli.completed(
            RunStatus(run_id="r", status="failed", message="artifact upload failed")
        )


def test_demo_runs_end_to_end() -> None:
    env = {key: value for key, value in os.environ.items() if key.startswith(("REDIS__", "APP__"))}
    for key in env:
        os.environ.pop(key)
    try:
        result = CliRunner().invoke(app, ["demo", "--steps", "3"], terminal_width=200)
    finally:
        os.environ.update(env)
    assert result.exit_code == 0, result.output
    assert "completed; artifact in Data Bank" in result.output
    assert "generated: 'The river" in result.output
    assert logged.formatter().service == "demo"


def test_a_given_key_is_used_and_a_generated_one_is_kept(tmp_path: Path) -> None:
    assert local_key(tmp_path, "given") == "given"
    generated = local_key(tmp_path / "fresh", None)
    assert local_key(tmp_path / "fresh", None) == generated
    assert len(generated) >= 24


def test_a_root_is_held_by_one_stack_and_the_holder_is_named(tmp_path: Path) -> None:
    busy = rf"in use by another trainledger up \(PID {os.getpid()}\)"
    with hold_root(tmp_path):
        assert (tmp_path / LOCK_FILE).read_text() == str(os.getpid())
        with pytest.raises(RootBusy, match=busy), hold_root(tmp_path):
            pass  # pragma: no cover - never entered
    with hold_root(tmp_path):  # released when the holder ends
        pass


def test_a_lock_file_left_by_a_dead_up_does_not_block(tmp_path: Path) -> None:
    (tmp_path / LOCK_FILE).write_text("999999999")  # written, but no living process locks it
    with hold_root(tmp_path):
        assert (tmp_path / LOCK_FILE).read_text() == str(os.getpid())


def test_up_stops_with_one_line_when_a_service_cannot_start(tmp_path: Path) -> None:
    env = {
        key: value for key, value in os.environ.items() if not key.startswith(("REDIS__", "APP__"))
    }
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        finished = subprocess.run(
            [sys.executable, "-m", "trainledger", "up", "--root", str(tmp_path),
             "--databank-port", str(port)],
            cwd=ROOT, env=env, capture_output=True, text=True, timeout=120,
        )  # fmt: skip
    assert finished.returncode == 1
    last = finished.stderr.strip().splitlines()[-1]
    assert last == f"trainledger up: databank exited; see {tmp_path.resolve()}/logs/databank.log"
    assert "Traceback" not in finished.stderr
    assert not (tmp_path / "engine" / "engine.pid").exists()  # the engine was stopped too
