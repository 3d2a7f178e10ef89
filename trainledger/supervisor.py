"""Run trainledger's services as child processes on one machine, keep them running, and stop
them by PID.

`trainledger up` and `trainledger demo` use it: each service is `python -m trainledger
<command>` with its environment, its output in a log file, and a readiness URL polled with
a deadline before the next service starts. Once all are up, `watch` restarts a child that
exits, after a backoff that doubles with each recent exit (`RestartPolicy`); a child that
keeps dying ends the watch with `ServiceFailed`, and leaving the block stops the others.
"""

from __future__ import annotations

import logging
import signal
import subprocess
import sys
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType

import httpx

log = logging.getLogger(__name__)


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


@dataclass(frozen=True)
class RestartPolicy:
    """When a child that exited is started again, and when it counts as one that keeps dying.

    The n-th exit within `window_s` waits `backoff_s * 2**(n-1)` (at most `max_backoff_s`)
    before the restart; the `max_exits`-th exit within `window_s` gives up. A child that stays
    up for `window_s` starts again from the shortest backoff.
    """

    backoff_s: float = 0.5
    max_backoff_s: float = 30.0
    max_exits: int = 5
    window_s: float = 60.0

    def delay(self, exits: int) -> float:
        """The wait before the restart that follows `exits` recent exits."""
        return min(self.max_backoff_s, self.backoff_s * 2.0 ** (exits - 1))


@dataclass
class _Running:
    spec: ServiceSpec
    process: subprocess.Popen[bytes]
    log: Path
    exits: deque[float] = field(default_factory=deque)
    restart_at: float | None = None


def _status(code: int) -> str:
    return f"signal {signal.Signals(-code).name}" if code < 0 else f"status {code}"


class Supervisor:
    """Start services in order, wait for each, restart those that exit while `watch` runs,
    stop all in reverse order on exit."""

    def __init__(
        self, log_dir: Path, base_env: dict[str, str], policy: RestartPolicy | None = None
    ) -> None:
        self.log_dir = log_dir
        self.base_env = base_env
        self.policy = policy or RestartPolicy()
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
        path = self.log_dir / f"{spec.name}.log"
        self.running.append(_Running(spec, self._spawn(spec, path), path))
        self._wait_ready(self.running[-1], timeout)

    def _spawn(self, spec: ServiceSpec, path: Path) -> subprocess.Popen[bytes]:
        with path.open("ab") as out:
            process = subprocess.Popen(
                spec.command(), env={**self.base_env, **spec.env}, stdout=out, stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )  # fmt: skip
        log.info(
            "%s started (PID %d)", spec.name, process.pid,
            extra={"category": "supervisor", "event": "service_started", "child": spec.name, "pid": process.pid},
        )  # fmt: skip
        return process

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

    def watch(self, stopping: threading.Event, *, tick: float = 0.1) -> None:
        """Check the children every `tick` seconds until `stopping` is set; raise
        `ServiceFailed` when one keeps dying."""
        while not stopping.wait(tick):
            self.check()

    def check(self) -> None:
        """Restart the children whose backoff is over; note the ones that exited since."""
        now = time.monotonic()
        for service in self.running:
            if service.restart_at is not None:
                if now >= service.restart_at:
                    service.restart_at = None
                    service.process = self._spawn(service.spec, service.log)
            elif (code := service.process.poll()) is not None:
                self._exited(service, code, now)

    def _exited(self, service: _Running, code: int, now: float) -> None:
        name, pid, policy = service.spec.name, service.process.pid, self.policy
        service.exits.append(now)
        while service.exits[0] < now - policy.window_s:
            service.exits.popleft()
        exits = len(service.exits)
        fields = {"category": "supervisor", "child": name, "pid": pid, "exit_status": code}
        if exits >= policy.max_exits:
            log.error(
                "%s (PID %d) exited with %s, %d times in %gs: giving up",
                name, pid, _status(code), exits, policy.window_s,
                extra={**fields, "event": "service_keeps_dying"},
            )  # fmt: skip
            raise ServiceFailed(
                f"{name} exited {exits} times in {policy.window_s:g}s (last: {_status(code)});"
                f" see {service.log}"
            )
        delay = policy.delay(exits)
        service.restart_at = now + delay
        log.warning(
            "%s (PID %d) exited with %s; restarting in %gs",
            name, pid, _status(code), delay,
            extra={**fields, "event": "service_exited"},
        )  # fmt: skip

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
