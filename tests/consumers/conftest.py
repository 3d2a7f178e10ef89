"""Shared fixtures: a small generated corpus and one tokenizer trained on it per session."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from transformers import PreTrainedTokenizerFast

from consumers import WorkerConfig
from consumers.tokenizer import train_tokenizer
from databank import DataBankClient
from events.specs import TokenizerParams
from tests.harness import LocalBank
from tests.harness import write_corpus as write_corpus  # re-exported: other tests use it
from tests.projections.factories import SIGNING_KEYS


@pytest.fixture
def corpus(tmp_path: Path) -> Path:
    """A fresh copy of the standard corpus in this test's directory."""
    return write_corpus(tmp_path / "corpus.txt")


@pytest.fixture(scope="session")
def tokenizer(tmp_path_factory: pytest.TempPathFactory) -> PreTrainedTokenizerFast:
    """A tokenizer trained once on the standard corpus."""
    root = tmp_path_factory.mktemp("tokenizer")
    corpus = write_corpus(root / "corpus.txt")
    return train_tokenizer(corpus, TokenizerParams(vocab_size=320, min_frequency=2), root / "out")


@pytest.fixture
def bank_client(local_bank: LocalBank) -> Iterator[DataBankClient]:
    """A client of the local Data Bank with millisecond backoffs."""
    with local_bank.client() as client:
        yield client


@pytest.fixture
def worker_config(tmp_path: Path) -> WorkerConfig:
    """Node `node-a` with its artifacts under this test's directory; progress and cancel
    checks on every step, so tests need not wait for a rate limit."""
    return WorkerConfig(
        node_id="node-a",
        artifacts_root=tmp_path / "artifacts",
        progress_interval_s=0,
        cancel_check_s=0,
        trainledger_version="1.2.3",
        signing_keys=SIGNING_KEYS,
    )
