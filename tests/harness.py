"""Shared test plumbing beyond the engine: a generated corpus, a real local Data Bank on loopback
behind the fault layer (`tests.databank.faults`, served by `tests.databank.serving`), a tiny
training spec, and reads of the log. The databank tests keep their own fixtures; these build on
the same parts."""

from __future__ import annotations

import random
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from pydantic import JsonValue

from databank import DataBankClient, RetryPolicy, Timeouts
from databank.server import DataBankServerSettings, create_app
from events import (
    Delivery,
    EventLog,
    ModelSpec,
    TokenizerParams,
    TrainingParams,
    TrainingSpec,
    names,
)
from events.envelope import Envelope
from tests.databank.conftest import FAST, KEY
from tests.databank.faults import FaultInjector
from tests.databank.serving import running

E = TypeVar("E", bound=Envelope)

_WORDS = (
    "the", "a", "fox", "dog", "runs", "jumps", "over", "under", "quick", "lazy", "brown",
    "red", "river", "tree", "sky", "blue", "green", "cat", "sits", "on", "mat", "héllo",
    "wörld", "naïve", "café", "ünïcode", "東京",
)  # fmt: skip


def write_corpus(path: Path, *, lines: int = 120, seed: int = 0) -> Path:
    """A few KB of seeded pseudo-text with non-ASCII words, so byte-level handling is exercised."""
    rng = random.Random(seed)
    text = "".join(
        " ".join(rng.choice(_WORDS) for _ in range(rng.randint(4, 12))).capitalize() + ".\n"
        for _ in range(lines)
    )
    path.write_text(text, encoding="utf-8")
    return path


@dataclass(frozen=True)
class LocalBank:
    """A running local Data Bank: its URL, upload key, data directory and fault layer."""

    url: str
    key: str
    data_dir: Path
    faults: FaultInjector

    def client(
        self, *, retry: RetryPolicy = FAST, timeouts: Timeouts | None = None
    ) -> DataBankClient:
        """A client with millisecond backoffs (close it, or use it in `with`)."""
        return DataBankClient(self.url, self.key, retry=retry, timeouts=timeouts)

    def put(self, data: bytes) -> str:
        """Upload `data`; its file id."""
        with self.client() as client:
            return client.upload(lambda: [data]).file_id

    def put_corpus(self, directory: Path, *, lines: int = 120, seed: int = 0) -> str:
        """Upload the standard generated corpus (a few KB); its file id."""
        corpus = write_corpus(directory / f"corpus-{lines}-{seed}.txt", lines=lines, seed=seed)
        return self.put(corpus.read_bytes())


@contextmanager
def serve_bank(data_dir: Path) -> Iterator[LocalBank]:
    """Serve a local Data Bank (upload key `KEY`, no disk guard) until the block ends."""
    settings = DataBankServerSettings(data_dir=data_dir, upload_keys=(KEY,), min_free_gb=0)
    faults = FaultInjector(create_app(settings))
    with running(faults) as url:
        yield LocalBank(url, KEY, data_dir, faults)


def tiny_spec(corpus_file_id: str, **training: JsonValue) -> TrainingSpec:
    """A one-layer GPT-2 on 32-token blocks, on CPU, a few steps; its own small tokenizer."""
    params: dict[str, JsonValue] = {
        "batch_size": 4,
        "sequence_length": 32,
        "device": "cpu",
        "max_steps": 3,
        "holdout_fraction": 0.1,
    }
    return TrainingSpec(
        corpus_file_id=corpus_file_id,
        tokenizer=TokenizerParams(vocab_size=300, min_frequency=2),
        model=ModelSpec(n_layer=1, n_head=2, n_embd=32),
        training=TrainingParams.model_validate(params | training),
    )


def types_of(log: EventLog, correlation_id: str, *, progress: bool = False) -> list[str]:
    """The event types about one run or tokenizer, in append order; progress reports
    (`training.progress`, as many as the run's length and rate make) only when asked."""
    found = [entry.event().type for entry in log.read_correlation(correlation_id)]
    return [kind for kind in found if progress or kind != "training.progress"]


def events_of(log: EventLog, correlation_id: str, kind: type[E]) -> list[E]:
    """The events of `kind` about one run or tokenizer, in append order."""
    return [
        event
        for entry in log.read_correlation(correlation_id)
        if isinstance(event := entry.event(), kind)
    ]


def delivery(
    *,
    stopping: bool = False,
    attempt: int = 1,
    consumer: str = "test",
    stream: str = names.TRAINING_STREAM,
    entry_id: str = "1-0",
) -> Delivery:
    """What a handler is told about its entry, for calling a stage's handler directly."""
    stop = threading.Event()
    if stopping:
        stop.set()
    return Delivery(stream, entry_id, attempt, consumer, stop)
