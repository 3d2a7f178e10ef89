"""The inference service over real parts: the test's engine with a live projector applying real
events, the local Data Bank on loopback (behind its fault layer), a tiny model trained once per
session by the pipeline's trainer, and the service itself.

Only this process imports transformers: the service runs in it (TestClient, or uvicorn on a
thread for tests that need real concurrent connections).
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import redis
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from consumers.tarball import tar_stream
from consumers.tokenizer import train_tokenizer
from consumers.trainer import train_model
from databank import ArtifactFetcher
from events import Event, ModelSpec, TokenizerParams, TrainingParams, TrainingSpec
from inference import (
    GenerateResponse,
    Generator,
    Loaded,
    ScoreResponse,
    create_app,
    load_model,
)
from projections import Projector, ReadModel
from tests.events.appending import append_all
from tests.harness import LocalBank, write_corpus
from tests.projections.factories import SIGNING_KEYS, Clock, alias_events, run_events
from tests.projections.helpers import FAST, drain

COMPLETED = (
    "training.requested",
    "training.started",
    "training.completed",
    "artifact.uploaded",
)


@pytest.fixture(scope="session")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny model (32-token context) trained once for these tests."""
    root = tmp_path_factory.mktemp("inference")
    corpus = write_corpus(root / "corpus.txt")
    tokenizer = train_tokenizer(corpus, TokenizerParams(vocab_size=300), root / "tokenizer")
    spec = TrainingSpec(
        corpus_file_id="0" * 64,
        model=ModelSpec(n_layer=1, n_head=2, n_embd=32),
        training=TrainingParams(max_steps=3, batch_size=4, sequence_length=32, device="cpu"),
    )
    outcome = train_model(
        corpus, tokenizer, spec, root / "run", should_stop=lambda: False, on_progress=lambda p: None
    )
    return outcome.directory


@pytest.fixture(scope="session")
def artifact(model_dir: Path) -> bytes:
    """The model's artifact, as the upload stage tars it."""
    return b"".join(tar_stream(model_dir))


@pytest.fixture(scope="session")
def other_artifact(model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> bytes:
    """The same model with one more file: another file id, as a second run would have."""
    copy = tmp_path_factory.mktemp("other") / "run"
    shutil.copytree(model_dir, copy)
    (copy / "NOTES.txt").write_text("the second run\n")
    return b"".join(tar_stream(copy))


@pytest.fixture(scope="session")
def reference(model_dir: Path) -> Loaded:
    """The model loaded directly, for computations the service must agree with."""
    return load_model(model_dir)


class Service:
    """The service under test, and the means to put runs and aliases behind it."""

    def __init__(
        self,
        client: TestClient,
        engine: redis.Redis,
        bank: LocalBank,
        fetcher: ArtifactFetcher,
        generator: Generator,
    ) -> None:
        self.client = client
        self.engine = engine
        self.bank = bank
        self.fetcher = fetcher
        self.generator = generator
        self.clock = Clock()

    def project(self, *events: Event) -> None:
        """Append `events` to the log and let a live projector apply them."""
        append_all(self.engine, events)
        drain(Projector(self.engine, SIGNING_KEYS, config=FAST))

    def run(self, run_id: str, *kinds: str) -> None:
        """Run `run_id` through the event `kinds` (see `run_events`)."""
        make = run_events(run_id, self.clock)
        self.project(*(make[kind]() for kind in kinds))

    def publish(self, run_id: str, blob: bytes) -> str:
        """A completed run whose pointer (signed as a worker signs it) names `blob`, uploaded
        to Data Bank; its file id."""
        file_id = self.bank.put(blob)
        make = run_events(run_id, self.clock)
        pointer = make["artifact.pointer_set"](file_id=file_id, size=len(blob))
        self.project(*(make[kind]() for kind in COMPLETED), pointer)
        return file_id

    def alias(self, model: str, alias: str, run_id: str | None) -> None:
        """Point `model@alias` at `run_id` (None: remove the alias)."""
        make = alias_events(model, self.clock)
        if run_id is None:
            self.project(make["model.alias_removed"](alias=alias))
        else:
            self.project(make["model.alias_set"](run=run_id, alias=alias))

    def ok(self, path: str, **body: object) -> dict[str, object]:
        """POST `body` as JSON; the 200 answer's JSON."""
        answer = self.client.post(path, json=body)
        assert answer.status_code == 200, answer.text
        found = answer.json()
        assert isinstance(found, dict)
        return found

    def generate(self, **body: object) -> GenerateResponse:
        """`POST /generate`: the 200 answer."""
        return GenerateResponse.model_validate(self.ok("/generate", **body))

    def score(self, **body: object) -> ScoreResponse:
        """`POST /score`: the 200 answer."""
        return ScoreResponse.model_validate(self.ok("/score", **body))

    def metrics(self) -> dict[str, float]:
        """`/metrics` samples by name and labels (`name{k="v"}`), labels sorted."""
        return samples(self.client.get("/metrics").text)


def samples(text: str) -> dict[str, float]:
    """Prometheus text as a map from `name{labels}` to value."""
    found: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            labels = ",".join(f'{k}="{v}"' for k, v in sorted(sample.labels.items()))
            found[f"{sample.name}{{{labels}}}" if labels else sample.name] = sample.value
    return found


def sse(text: str) -> list[tuple[str, dict[str, object]]]:
    """Server-Sent Events as (event name, JSON data) pairs."""
    events: list[tuple[str, dict[str, object]]] = []
    for block in text.strip().split("\n\n"):
        fields = dict(line.split(": ", 1) for line in block.splitlines())
        events.append((fields["event"], json.loads(fields["data"])))
    return events


@pytest.fixture
def generator() -> Iterator[Generator]:
    """A generator of the service's shape (the decoding thread stops with the test)."""
    made = Generator(max_models=2)
    yield made
    made.close()


@pytest.fixture
def fetcher(local_bank: LocalBank, tmp_path: Path) -> Iterator[ArtifactFetcher]:
    """An artifact cache on the local Data Bank."""
    with local_bank.client() as bank:
        yield ArtifactFetcher(bank, tmp_path / "cache")


@pytest.fixture
def service(
    redis_client: redis.Redis,
    local_bank: LocalBank,
    fetcher: ArtifactFetcher,
    generator: Generator,
) -> Iterator[Service]:
    """The inference service in this process, over the test's engine and Data Bank."""
    with serving(redis_client, local_bank, fetcher, generator) as made:
        yield made


@contextmanager
def serving(
    engine: redis.Redis, bank: LocalBank, fetcher: ArtifactFetcher, generator: Generator
) -> Iterator[Service]:
    """The inference service in this process until the block ends (for fixtures of any scope)."""
    app = create_app(ReadModel(engine), fetcher, generator, signing_keys=SIGNING_KEYS)
    with TestClient(app) as client:
        yield Service(client, engine, bank, fetcher, generator)
