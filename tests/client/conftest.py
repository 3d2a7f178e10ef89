"""A running system for the client commands, and a way to run them.

The services run in threads of this process (as in `tests/e2e`): a private engine (other
tests flush theirs), the session's local Data Bank, the projector, the API (with an API key,
short SSE responses so streams are resumed, behind a fault layer), a worker and the inference
service. Commands run in-process through typer's `CliRunner`, so `transformers` loads once.
"""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator, Mapping
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from pydantic import JsonValue
from typer.testing import CliRunner, Result

from consumers import Worker, WorkerConfig
from databank import ArtifactFetcher
from events import TrainingSpec, connect
from events.engine import engine_url
from inference import Generator
from inference import create_app as create_inference
from producers import ApiConfig, create_app
from projections import Projector, ReadModel
from tests.databank.faults import FaultInjector
from tests.databank.serving import running
from tests.e2e.conftest import FAST_RUNTIME, FINAL
from tests.harness import LocalBank, tiny_spec, write_corpus
from tests.projections.factories import SIGNING_KEYS
from tests.waiting import wait_until
from trainledger.cli import app

API_KEY = "client-test-key"
SSE_MAX_S = 2.0
"""Short SSE responses: every watch longer than this resumes with Last-Event-ID."""


@dataclass(frozen=True)
class System:
    """The running services, their fault layers, and an API client for test set-up."""

    api_url: str
    inference_url: str
    bank: LocalBank
    api_faults: FaultInjector
    api: httpx.Client
    corpus_id: str

    def env(self) -> dict[str, str | None]:
        """The environment a user of this system sets."""
        return {
            "TRAINLEDGER_API_URL": self.api_url,
            "TRAINLEDGER_API_KEY": API_KEY,
            "TRAINLEDGER_INFERENCE_URL": self.inference_url,
            "TRAINLEDGER_DATABANK_URL": self.bank.url,
            "TRAINLEDGER_DATABANK_KEY": self.bank.key,
            "COLUMNS": "250",
        }

    def train(self, spec: TrainingSpec) -> str:
        """`POST /runs/train`; the run id."""
        answer = self.api.post("/runs/train", json=spec.model_dump(mode="json"))
        assert answer.status_code == 202, answer.text
        run_id = answer.json()["run_id"]
        assert isinstance(run_id, str)
        return run_id

    def status(self, run_id: str) -> dict[str, JsonValue]:
        """The run's record ({} while the read model does not have it)."""
        answer = self.api.get(f"/runs/{run_id}")
        if answer.status_code == 404:
            return {}
        assert answer.status_code == 200, answer.text
        record = answer.json()
        assert isinstance(record, dict)
        return record

    def wait_final(self, run_id: str, *, timeout: float = 120) -> dict[str, JsonValue]:
        """The run's record once it ended (completed, failed, cancelled)."""
        wait_until(lambda: self.status(run_id).get("status") in FINAL, timeout=timeout)
        return self.status(run_id)

    def failed_run(self) -> str:
        """A run that fails at once (its corpus is not in Data Bank), once it failed."""
        run_id = self.train(tiny_spec("f" * 64))
        assert self.wait_final(run_id)["status"] == "failed"
        return run_id


@contextmanager
def serve_system(root: Path, bank: LocalBank) -> Iterator[System]:
    """Every service on a private engine until the block ends."""
    with ExitStack() as stack:
        url = stack.enter_context(engine_url(None, root / "engine"))
        _thread(
            stack,
            Projector(stack.enter_context(connect(url)), SIGNING_KEYS, config=FAST_RUNTIME),
            "projector",
        )
        faults = FaultInjector(
            create_app(ApiConfig(redis_url=url, api_key=API_KEY, sse_max_s=SSE_MAX_S))
        )
        api_url = stack.enter_context(running(faults))
        bank_client = stack.enter_context(bank.client())
        config = WorkerConfig(
            node_id="node-a",
            artifacts_root=root / "artifacts",
            progress_interval_s=0,
            cancel_check_s=0.05,
            block_ms=FAST_RUNTIME.block_ms,
            visibility_timeout_ms=FAST_RUNTIME.visibility_timeout_ms,
            signing_keys=SIGNING_KEYS,
        )
        _thread(stack, Worker(stack.enter_context(connect(url)), bank_client, config), "worker")
        inference = create_inference(
            ReadModel(stack.enter_context(connect(url))),
            ArtifactFetcher(bank_client, root / "inference"),
            Generator(max_models=2),
            api_key=API_KEY,
            signing_keys=SIGNING_KEYS,
        )
        inference_url = stack.enter_context(running(inference))
        api = stack.enter_context(
            httpx.Client(base_url=api_url, headers={"X-API-Key": API_KEY}, timeout=30)
        )
        corpus_id = bank.put(write_corpus(root / "corpus.txt").read_bytes())
        yield System(api_url, inference_url, bank, faults, api, corpus_id)


def _thread(stack: ExitStack, service: Projector | Worker, name: str) -> None:
    thread = threading.Thread(target=service.run, name=name)
    thread.start()
    stack.callback(thread.join, 30)
    stack.callback(service.stop)


@pytest.fixture(scope="session")
def system(
    tmp_path_factory: pytest.TempPathFactory, local_bank_server: LocalBank
) -> Iterator[System]:
    """The services, for the whole session."""
    with serve_system(
        tmp_path_factory.mktemp("client-system"), local_bank_server
    ) as running_system:
        yield running_system


@pytest.fixture(scope="session")
def trained(system: System) -> str:
    """A completed run, named `baseline` and tagged `suite=client`."""
    spec = TrainingSpec.model_validate(
        tiny_spec(system.corpus_id).model_dump()
        | {"name": "baseline", "tags": {"suite": "client", "lr": "default"}}
    )
    run_id = system.train(spec)
    assert system.wait_final(run_id)["status"] == "completed"
    return run_id


class Cli:
    """Runs `trainledger` commands against a system."""

    def __init__(self, env: Mapping[str, str | None]) -> None:
        self.env = dict(env)

    def run(
        self, *args: str, env: Mapping[str, str | None] | None = None, stdin: str | None = None
    ) -> Result:
        """The command's result, whatever its exit status."""
        return CliRunner().invoke(app, list(args), env=self.env | dict(env or {}), input=stdin)

    def ok(
        self, *args: str, env: Mapping[str, str | None] | None = None, stdin: str | None = None
    ) -> Result:
        """The result of a command that must succeed."""
        result = self.run(*args, env=env, stdin=stdin)
        assert result.exit_code == 0, (result.stdout, result.stderr, result.exception)
        return result

    def json(self, *args: str, env: Mapping[str, str | None] | None = None) -> JsonValue:
        """The JSON a command prints with `--json`."""
        parsed: JsonValue = json.loads(self.ok(*args, "--json", env=env).stdout)
        return parsed

    def fails(
        self,
        *args: str,
        code: int = 1,
        env: Mapping[str, str | None] | None = None,
        stdin: str | None = None,
    ) -> str:
        """The one `error: ...` line of a command that must fail with `code` (no traceback)."""
        result = self.run(*args, env=env, stdin=stdin)
        assert result.exit_code == code, (result.stdout, result.stderr, result.exception)
        assert isinstance(result.exception, SystemExit), result.exception
        # (a prompt's answer is not echoed: its error line may follow the prompt)
        lines = [
            line[line.index("error: ") :]
            for line in result.stderr.splitlines()
            if "error: " in line
        ]
        assert len(lines) == 1, result.stderr
        assert "Traceback" not in result.stderr
        return lines[0]


@pytest.fixture
def cli(system: System, local_bank: LocalBank) -> Cli:
    """A command runner with the system's environment; both fault layers reset."""
    system.api_faults.reset()
    return Cli(system.env())


def closed_port_url() -> str:
    """An http URL where nothing listens."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"http://127.0.0.1:{port}"
