"""The whole system on one machine: engine, Data Bank, projector, worker, API, inference.

`local_stack` starts what the settings do not point elsewhere (no `REDIS__URL`: a private
engine; no `APP__DATA_BANK_API_URL`: a local Data Bank with a fresh key; no
`APP__SIGNING_KEY`: a pointer signing key generated and kept in the root) and every service
as a child process, each waited for before the next; leaving the block stops them all. It
runs one worker or several (`workers`), each with a node id of its own and a share of the
cores. One stack at a time holds a root (`up.lock`), so a second one cannot start a second
worker under the same node id or lose its services to "address already in use".
"""

from __future__ import annotations

import fcntl
import os
import secrets
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from events import engine_url, free_port
from trainledger.settings import Settings
from trainledger.supervisor import RestartPolicy, ServiceSpec, Supervisor

LOCK_FILE = "up.lock"
"""Under the root: locked (`flock`) by the stack that runs there, with its PID in it."""


class RootBusy(RuntimeError):  # noqa: N818 - reads as what the root is
    """Another process runs a stack on this root."""


@dataclass(frozen=True)
class Ports:
    """Where the HTTP services listen."""

    api: int
    databank: int
    inference: int

    @classmethod
    def free(cls) -> Ports:
        """Ports the kernel says are free now (for demos and tests)."""
        return cls(free_port(), free_port(), free_port())


@dataclass(frozen=True)
class Stack:
    """Addresses of a running local stack."""

    redis_url: str
    api_url: str
    databank_url: str
    databank_key: str
    inference_url: str
    logs: Path
    key_file: Path
    signing_key_file: Path | None = None
    """Where the generated pointer signing key is kept (None: `APP__SIGNING_KEY` was given)."""


def _url(port: int) -> str:
    return f"http://127.0.0.1:{port}"


SIGNING_KEY_FILE = "signing.key"
"""Under the root: the generated pointer signing key (mode 0600)."""


def _kept(path: Path, given: str | None, generate: Callable[[], str]) -> str:
    """`given`, else the secret kept in `path`, generated there (mode 0600) on first use."""
    if given:
        return given
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.touch(mode=0o600)
        path.chmod(0o600)
        path.write_text(generate())
    return path.read_text().strip()


def local_key(root: Path, given: str | None) -> str:
    """The local Data Bank's upload key: `given`, else the one kept in `root/databank.key`.

    A new key is generated once and kept (mode 0600), so a restarted stack and its users
    (`curl -H "X-API-Key: $(cat var/databank.key)" ...`) keep working.
    """
    return _kept(root / "databank.key", given, lambda: secrets.token_urlsafe(24))


def signing_key(root: Path, given: str | None) -> str:
    """The pointer signing key of the stack: `given`, else the one kept in
    `root/signing.key`, generated once (mode 0600) like the Data Bank key, so the pointers a
    restarted stack finds in its log still verify."""
    return _kept(root / SIGNING_KEY_FILE, given, lambda: secrets.token_hex(32))


def data_bank(settings: Settings, root: Path, ports: Ports) -> tuple[str, str, list[ServiceSpec]]:
    """Data Bank's URL and key, and the local server to start when the settings name none."""
    url, key = settings.app.data_bank_api_url, settings.app.data_bank_api_key
    if url and key:
        return url, key, []
    url, key = _url(ports.databank), local_key(root, key)
    env = {"DATABANK__DATA_DIR": str(root / "databank"), "DATABANK__API_UPLOAD_KEYS": key}
    args = ("databank", "--port", str(ports.databank))
    return url, key, [ServiceSpec("databank", args, env, f"{url}/readyz")]


def worker_services(settings: Settings, workers: int) -> list[ServiceSpec]:
    """`workers` worker processes: node ids `<node>-1`, `<node>-2`, ... (one worker keeps the
    plain node id), torch threads split so that together they do not oversubscribe the cores
    (`WORKER__TORCH_THREADS` when set)."""
    threads = {"WORKER__TORCH_THREADS": str(settings.worker.threads(workers))}
    if workers == 1:
        return [ServiceSpec("worker", ("worker",), threads)]
    node = settings.app.node_id
    return [
        ServiceSpec(f"worker-{n}", ("worker",), {**threads, "APP__NODE_ID": f"{node}-{n}"})
        for n in range(1, workers + 1)
    ]


@contextmanager
def hold_root(root: Path) -> Iterator[None]:
    """Hold `root/up.lock` for the block, or raise `RootBusy` naming the PID that holds it.

    The kernel releases an `flock` when its holder dies, so a lock file left behind by an `up`
    that was killed does not block the next one.
    """
    root.mkdir(parents=True, exist_ok=True)
    path = root / LOCK_FILE
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = path.read_text().strip() or "unknown"
            raise RootBusy(
                f"{root} is in use by another trainledger up (PID {holder}); "
                "stop it first, or give this one another --root"
            ) from None
        os.ftruncate(fd, 0)
        os.write(fd, str(os.getpid()).encode())
        yield
    finally:
        os.close(fd)  # releases the lock


@contextmanager
def local_stack(
    settings: Settings,
    root: Path,
    ports: Ports,
    policy: RestartPolicy | None = None,
    *,
    workers: int = 1,
) -> Iterator[tuple[Stack, Supervisor]]:
    """Run every service under `root` (data, artifacts, logs; made absolute here), with
    `workers` workers, until the block ends; the supervisor's `watch` keeps them running."""
    root = root.resolve()
    with hold_root(root), _stack(settings, root, ports, policy, workers) as running:
        yield running


@contextmanager
def _stack(
    settings: Settings, root: Path, ports: Ports, policy: RestartPolicy | None, workers: int
) -> Iterator[tuple[Stack, Supervisor]]:
    bank_url, bank_key, bank = data_bank(settings, root, ports)
    given = settings.app.signing_key
    signing = signing_key(root, given.get_secret_value() if given else None)
    api, inference = _url(ports.api), _url(ports.inference)
    services = [
        *bank,
        ServiceSpec("projector", ("projector",)),
        *worker_services(settings, workers),
        ServiceSpec("api", ("api", "--port", str(ports.api)), ready_url=f"{api}/healthz"),
        ServiceSpec(
            "inference",
            ("inference", "--port", str(ports.inference)),
            ready_url=f"{inference}/healthz",
        ),
    ]
    with engine_url(settings.redis.url, root / "engine") as redis_url:
        env = {
            **os.environ,
            "REDIS__URL": redis_url,
            "APP__ARTIFACTS_ROOT": str(root / "artifacts"),
            "INFERENCE__CACHE_DIR": str(root / "inference"),
            "APP__DATA_BANK_API_URL": bank_url,
            "APP__DATA_BANK_API_KEY": bank_key,
            "APP__SIGNING_KEY": signing,
        }
        with Supervisor(root / "logs", env, policy) as supervisor:
            for spec in services:
                supervisor.start(spec)
            stack = Stack(
                redis_url,
                api,
                bank_url,
                bank_key,
                inference,
                root / "logs",
                root / "databank.key",
                None if given else root / SIGNING_KEY_FILE,
            )
            yield stack, supervisor
