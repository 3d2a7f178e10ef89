"""Session fixtures: one real engine per test session, a clean database per test."""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
import torch

from events.engine import engine_url
from tests.harness import LocalBank, serve_bank

torch.set_num_threads(1)


@pytest.fixture(autouse=True)
def root_logging() -> Iterator[None]:
    """Every command configures the root logger (JSON on the stderr of its moment); give each
    test back the one it had, so no handler outlives the stream it writes to."""
    root = logging.getLogger()
    saved = (root.handlers[:], root.level)
    yield
    root.handlers[:], level = saved
    root.setLevel(level)


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """`REDIS__URL` when given, else a private engine started for this session."""
    with engine_url(os.environ.get("REDIS__URL"), tmp_path_factory.mktemp("engine")) as url:
        yield url


@pytest.fixture
def redis_client(redis_url: str) -> Iterator[redis.Redis]:
    """A client on a database flushed before the test."""
    client = redis.Redis.from_url(redis_url)
    client.flushdb()
    yield client
    client.close()


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    """A per-test data directory."""
    return tmp_path


@pytest.fixture(scope="session")
def local_bank_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalBank]:
    """One local Data Bank on loopback for the session, behind a fault layer."""
    with serve_bank(tmp_path_factory.mktemp("local-bank")) as bank:
        yield bank


@pytest.fixture
def local_bank(local_bank_server: LocalBank) -> LocalBank:
    """The session's local Data Bank with no faults queued and an empty request log."""
    local_bank_server.faults.reset()
    return local_bank_server
