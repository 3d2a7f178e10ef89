"""Fixtures: a real local Data Bank on loopback (optionally behaving like the deployed one),
behind a fault injector, and clients with millisecond backoffs."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import ExitStack
from pathlib import Path

import pytest
from pydantic import BaseModel, ConfigDict

from databank import DataBankClient, RetryPolicy, Timeouts
from databank.server import DataBankServerSettings, create_app
from tests.databank.faults import FaultInjector
from tests.databank.quirks import DeployedQuirks
from tests.databank.serving import running

KEY = "upload-key-7f3a"
FAST = RetryPolicy(
    attempts=3, initial_backoff=0.001, max_backoff=0.004, jitter=0.001, total_seconds=20
)


class Bank:
    """A running server, its data directory, its fault layer, and a way to get clients."""

    def __init__(self, url: str, data_dir: Path, faults: FaultInjector, stack: ExitStack) -> None:
        self.url = url
        self.data_dir = data_dir
        self.faults = faults
        self._stack = stack

    def client(
        self,
        key: str = KEY,
        *,
        retry: RetryPolicy = FAST,
        timeouts: Timeouts | None = None,
    ) -> DataBankClient:
        return self._stack.enter_context(
            DataBankClient(self.url, key, retry=retry, timeouts=timeouts)
        )

    def partials(self) -> list[Path]:
        """Uploads the server holds in progress."""
        return sorted((self.data_dir / "tmp").iterdir())


MakeBank = Callable[..., Bank]


class _Served:
    """A server that outlives one test: its URL, data directory and fault layer."""

    def __init__(self, url: str, data_dir: Path, faults: FaultInjector) -> None:
        self.url = url
        self.data_dir = data_dir
        self.faults = faults


class Options(BaseModel):
    """How a test's own server differs from the default (upload key `KEY`, no disk guard)."""

    model_config = ConfigDict(extra="forbid")

    deployed: bool = False
    read_keys: tuple[str, ...] | None = None
    delete_keys: tuple[str, ...] | None = None
    max_file_bytes: int = 0
    min_free_gb: float = 0.0
    body_idle_timeout_s: float = 30.0
    strict_delete: bool = False


def _serve(stack: ExitStack, data_dir: Path, options: Options) -> _Served:
    settings = DataBankServerSettings.model_validate(
        {"data_dir": data_dir, "upload_keys": (KEY,)} | options.model_dump(exclude={"deployed"})
    )
    app = create_app(settings)
    faults = FaultInjector(DeployedQuirks(app) if options.deployed else app)
    return _Served(stack.enter_context(running(faults)), data_dir, faults)


@pytest.fixture(scope="session")
def shared_servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, _Served]]:
    """One local and one deployed-like server for the whole session (starting one costs ~0.2s)."""
    with ExitStack() as stack:
        yield {
            "local": _serve(stack, tmp_path_factory.mktemp("shared-local"), Options()),
            "deployed": _serve(
                stack, tmp_path_factory.mktemp("shared-deployed"), Options(deployed=True)
            ),
        }


@pytest.fixture
def stack() -> Iterator[ExitStack]:
    with ExitStack() as exits:
        yield exits


def _bank(served: _Served, stack: ExitStack) -> Bank:
    served.faults.reset()
    return Bank(served.url, served.data_dir, served.faults, stack)


@pytest.fixture
def bank(shared_servers: dict[str, _Served], stack: ExitStack) -> Bank:
    """The local server, speaking the protocol correctly (shared; faults reset per test)."""
    return _bank(shared_servers["local"], stack)


@pytest.fixture(params=["local", "deployed"])
def any_bank(
    request: pytest.FixtureRequest, shared_servers: dict[str, _Served], stack: ExitStack
) -> Bank:
    """The local server as it is, and emulating the deployed service's quirks."""
    return _bank(shared_servers[request.param], stack)


@pytest.fixture
def deployed_bank(shared_servers: dict[str, _Served], stack: ExitStack) -> Bank:
    """The local server emulating the deployed service (shared; faults reset per test)."""
    return _bank(shared_servers["deployed"], stack)


@pytest.fixture
def make_bank(tmp_path_factory: pytest.TempPathFactory, stack: ExitStack) -> MakeBank:
    """A fresh server of its own, with the settings a test names."""

    def make(**options: object) -> Bank:
        served = _serve(stack, tmp_path_factory.mktemp("bank"), Options.model_validate(options))
        return Bank(served.url, served.data_dir, served.faults, stack)

    return make
