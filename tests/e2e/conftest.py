"""The whole pipeline in this process: a real engine, the real local Data Bank over HTTP on
loopback, the projector, the API (uvicorn on loopback) and workers, each in threads.

Only the tests that SIGKILL a worker start one as a process (`python -m trainledger worker`);
everything else shares this process, so `transformers` is imported once.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

import httpx
import pytest
import redis
from pydantic import JsonValue

from consumers import Worker, WorkerConfig
from databank import DataBankClient
from events import EventLog, RuntimeConfig, TokenizerSpec, TrainingSpec, connect
from producers import ApiConfig, create_app
from projections import Projector
from tests.databank.serving import running
from tests.harness import LocalBank
from tests.projections.factories import SIGNING_KEY, SIGNING_KEYS
from tests.waiting import wait_until

FAST_RUNTIME = RuntimeConfig(block_ms=20, visibility_timeout_ms=1000)
FINAL = frozenset({"completed", "failed", "cancelled"})


class Pipeline:
    """A running pipeline: ask through the API, watch the log, add workers."""

    def __init__(
        self, redis_url: str, bank: LocalBank, api: httpx.Client, root: Path, stack: ExitStack
    ) -> None:
        self.redis_url = redis_url
        self.bank = bank
        self.api = api
        self.root = root
        self.client = stack.enter_context(connect(redis_url))
        self.log = EventLog(self.client)
        self._stack = stack

    def worker_config(self, node_id: str, **overrides: JsonValue) -> WorkerConfig:
        """A node with its own artifacts root, fast polls and a 1 s visibility timeout."""
        settings: dict[str, JsonValue] = {
            "node_id": node_id,
            "artifacts_root": str(self.root / node_id),
            "signing_keys": {"current": SIGNING_KEY},
            "progress_interval_s": 0.1,
            "cancel_check_s": 0.05,
            "block_ms": FAST_RUNTIME.block_ms,
            "visibility_timeout_ms": FAST_RUNTIME.visibility_timeout_ms,
        }
        return WorkerConfig.model_validate(settings | overrides)

    def start_worker(
        self, config: WorkerConfig, bank_client: DataBankClient | None = None
    ) -> Worker:
        """Run a worker node in threads until the test ends."""
        client = self._stack.enter_context(bank_client or self.bank.client())
        worker = Worker(self._stack.enter_context(connect(self.redis_url)), client, config)
        thread = threading.Thread(target=worker.run, name=f"worker-{config.node_id}")
        thread.start()
        self._stack.callback(thread.join, 30)
        self._stack.callback(worker.stop)
        return worker

    def train(self, spec: TrainingSpec) -> str:
        """`POST /runs/train`; the run id."""
        answer = self.api.post("/runs/train", content=spec.model_dump_json())
        assert answer.status_code == 202, answer.text
        run_id = answer.json()["run_id"]
        assert isinstance(run_id, str)
        return run_id

    def train_tokenizer(self, spec: TokenizerSpec) -> str:
        """`POST /tokenizers/train`; the tokenizer id."""
        answer = self.api.post("/tokenizers/train", content=spec.model_dump_json())
        assert answer.status_code == 202, answer.text
        tokenizer_id = answer.json()["tokenizer_id"]
        assert isinstance(tokenizer_id, str)
        return tokenizer_id

    def status(self, path: str) -> dict[str, JsonValue]:
        """`GET` of a status record (`/runs/{id}` or `/tokenizers/{id}`); {} while unknown."""
        answer = self.api.get(path)
        if answer.status_code == 404:
            return {}
        assert answer.status_code == 200, answer.text
        record = answer.json()
        assert isinstance(record, dict)
        return record

    def wait_final(self, path: str, *, timeout: float = 60) -> dict[str, JsonValue]:
        """The status record once it is completed, failed or cancelled."""
        wait_until(
            lambda: self.status(path).get("status") in FINAL, timeout=timeout, what=f"{path} final"
        )
        return self.status(path)


@pytest.fixture
def pipeline(
    redis_url: str, redis_client: redis.Redis, local_bank: LocalBank, tmp_path: Path
) -> Iterator[Pipeline]:
    """Projector and API running on a clean engine; add workers with `start_worker`."""
    with ExitStack() as stack:
        projector = Projector(
            stack.enter_context(connect(redis_url)), SIGNING_KEYS, config=FAST_RUNTIME
        )
        thread = threading.Thread(target=projector.run, name="projector")
        thread.start()
        stack.callback(thread.join, 30)
        stack.callback(projector.stop)
        base_url = stack.enter_context(running(create_app(ApiConfig(redis_url=redis_url))))
        api = stack.enter_context(httpx.Client(base_url=base_url, timeout=30))
        api.headers["Content-Type"] = "application/json"
        yield Pipeline(redis_url, local_bank, api, tmp_path, stack)
