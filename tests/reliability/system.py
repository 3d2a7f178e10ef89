"""The whole system on loopback for the chaos harness: a private engine that can be restarted on
its port and directory, the local Data Bank served in this process behind the fault layer, and
the API, two worker nodes, the projector and inference as children of `trainledger.supervisor`
(restarted by its watch, with a policy that never gives up)."""

from __future__ import annotations

import os
import secrets
import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from databank.server import DataBankServerSettings, create_app
from events import LocalEngine, free_port
from tests.databank.faults import FaultInjector
from tests.databank.serving import running
from tests.projections.factories import SIGNING_KEY
from tests.reliability.plan import Scale, Target
from trainledger.supervisor import RestartPolicy, ServiceFailed, ServiceSpec, Supervisor

POLICY = RestartPolicy(backoff_s=0.2, max_backoff_s=2.0, max_exits=10_000, window_s=60.0)
"""Restart every child, however often the harness kills it."""


@dataclass
class System:
    """The running system: addresses, secrets, the engine, the fault layer, the children."""

    root: Path
    engine: LocalEngine
    bank_url: str
    bank_key: str
    api_url: str
    api_key: str
    inference_url: str
    faults: FaultInjector
    supervisor: Supervisor
    watch_errors: list[str] = field(default_factory=list)

    def kill(self, target: Target) -> bool:
        """SIGKILL `target` if it runs now; False when it is between restarts."""
        service = next(child for child in self.supervisor.running if child.spec.name == target)
        process = service.process
        if process.poll() is not None:
            return False
        os.kill(process.pid, signal.SIGKILL)
        return True

    def log_files(self) -> list[Path]:
        """Every log the services and the engine wrote."""
        return [*sorted((self.root / "logs").glob("*.log")), self.root / "engine" / "engine.log"]


def _specs(api_port: int, inference_port: int, root: Path) -> list[ServiceSpec]:
    def node(name: str, node_id: str) -> ServiceSpec:
        env = {"APP__NODE_ID": node_id, "APP__ARTIFACTS_ROOT": str(root / node_id)}
        return ServiceSpec(name, ("worker",), env)

    api, inference = f"http://127.0.0.1:{api_port}", f"http://127.0.0.1:{inference_port}"
    return [
        ServiceSpec("projector", ("projector",)),
        node("worker-a", "node-a"),
        node("worker-b", "node-b"),
        ServiceSpec("api", ("api", "--port", str(api_port)), ready_url=f"{api}/healthz"),
        ServiceSpec(
            "inference",
            ("inference", "--port", str(inference_port)),
            ready_url=f"{inference}/healthz",
        ),
    ]


@contextmanager
def running_system(root: Path, scale: Scale) -> Iterator[System]:
    """Start everything under `root`; the supervisor watches in a thread until the block ends."""
    bank_key, api_key = secrets.token_urlsafe(24), secrets.token_urlsafe(24)
    settings = DataBankServerSettings(
        data_dir=root / "databank", upload_keys=(bank_key,), min_free_gb=0
    )
    faults = FaultInjector(create_app(settings))
    engine = LocalEngine(root / "engine")
    engine.start()
    try:
        with running(faults) as bank_url:
            api_port, inference_port = free_port(), free_port()
            env = {
                **os.environ,
                "REDIS__URL": engine.url,
                "APP__DATA_BANK_API_URL": bank_url,
                "APP__DATA_BANK_API_KEY": bank_key,
                "APP__SIGNING_KEY": SIGNING_KEY,  # the checks' rebuild verifies with it
                "SECURITY__API_KEY": api_key,
                "INFERENCE__CACHE_DIR": str(root / "inference"),
                "WORKER__VISIBILITY_TIMEOUT_MS": "2000",
                "WORKER__PROGRESS_INTERVAL_S": "0.5",
                "WORKER__UPLOAD_RETRY_WINDOW_S": str(scale.upload_window_s),
                "OMP_NUM_THREADS": "1",
            }
            with Supervisor(root / "logs", env, POLICY) as supervisor:
                for spec in _specs(api_port, inference_port, root):
                    supervisor.start(spec, timeout=180)
                system = System(
                    root, engine, bank_url, bank_key, f"http://127.0.0.1:{api_port}", api_key,
                    f"http://127.0.0.1:{inference_port}", faults, supervisor,
                )  # fmt: skip
                with _watching(system):
                    yield system
    finally:
        engine.stop()


@contextmanager
def _watching(system: System) -> Iterator[None]:
    stopping = threading.Event()

    def watch() -> None:
        try:
            system.supervisor.watch(stopping)
        except ServiceFailed as error:  # reported by the checks, not lost in a thread
            system.watch_errors.append(str(error))

    thread = threading.Thread(target=watch, name="supervisor", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stopping.set()
        thread.join(timeout=10)
