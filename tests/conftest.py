"""Session fixtures: one real engine per test session, a clean database per test."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
import torch

from events.engine import engine_url

torch.set_num_threads(1)


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
