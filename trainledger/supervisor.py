"""Run trainledger's services as child processes on one machine, and stop them by PID.

`trainledger up` and `trainledger demo` use it: each service is `python -m trainledger
<command>` with its environment, its output in a log file, and a readiness URL polled with
a deadline before the next service starts.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType

import httpx


class ServiceFailed(RuntimeError):  # noqa: N818 - reads as what happened to the service
    """A service exited or did not become ready in time."""


@dataclass(frozen=True)
class ServiceSpec:
    """How to start one service and how to tell it is ready."""

    name: str
    args: tuple[str, ...]
    env: dict[str, str] = field(default_factory=dict)
    ready_url: str | None = None
    program: tuple[str, ...] = (sys.executable, "-m", "trainledger")
    """What runs `args`: this interpreter's trainledger CLI."""

    def command(self) -> list[str]:
        """The command line."""
        return [*self.program, *self.args]


@dataclass
class _Running:
    spec: ServiceSpec
    process: subprocess.Popen[bytes]
    log: Path


class Supervisor:
    """Start services in order, wait for each, stop all in reverse order on exit."""

    def __init__(self, log_dir: Path, base_env: dict[str, str]) -> None:
        self.log_dir = log_dir
        self.base_env = base_env
        self.running: list[_Running] = []

    def __enter__(self) -> Supervisor:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop_all()

    def start(self, spec: ServiceSpec, *, timeout: float = 120.0) -> None:
        """Start `spec` and wait until its readiness URL answers 200 (or it is merely alive)."""
        self.log_dir.mkdir(parents=True, exist_ok=True)
        log = self.log_dir / f"{spec.name}.log"
        with log.open("ab") as out:
            process = subprocess.Popen(
                spec.command(), env={**self.base_env, **spec.env}, stdout=out, stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )  # fmt: skip
        self.running.append(_Running(spec, process, log))
        self._wait_ready(self.running[-1], timeout)

    def _wait_ready(self, service: _Running, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while not self._ready(service):
            if service.process.poll() is not None:
                raise ServiceFailed(f"{service.spec.name} exited; see {service.log}")
            if time.monotonic() > deadline:
                raise ServiceFailed(
                    f"{service.spec.name} not ready after {timeout}s; see {service.log}"
                )
            time.sleep(0.1)

    @staticmethod
    def _ready(service: _Running) -> bool:
        if service.spec.ready_url is None:
            return service.process.poll() is None
        try:
            return httpx.get(service.spec.ready_url, timeout=2.0).status_code == 200
        except httpx.HTTPError:
            return False

    def stop_all(self, timeout: float = 30.0) -> None:
        """SIGTERM each service, newest first; SIGKILL one that outlives `timeout`."""
        while self.running:
            service = self.running.pop()
            if service.process.poll() is None:
                service.process.send_signal(signal.SIGTERM)
            try:
                service.process.wait(timeout)
            except subprocess.TimeoutExpired:
                service.process.kill()
                service.process.wait()
