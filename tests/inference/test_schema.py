"""Schemathesis over the inference service's schema: whatever it sends, no 5xx.

The service runs on loopback over a real (empty) read model and a fetcher on the local Data
Bank, with no model loaded: the schema-level probing stops at validation (422) or at the
unknown run (404), which are the answers under test.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
import schemathesis

from databank import ArtifactFetcher
from inference import Generator, create_app
from projections import ReadModel
from tests.databank.serving import running
from tests.fuzzing import check, probe_all
from tests.harness import LocalBank
from tests.projections.factories import SIGNING_KEYS


@pytest.fixture
def inference_schema(
    redis_client: redis.Redis, local_bank: LocalBank, tmp_path: Path
) -> Iterator[schemathesis.BaseSchema]:
    """The inference service on uvicorn (loopback, a thread), its schema from `/openapi.json`."""
    with local_bank.client() as bank:
        fetcher = ArtifactFetcher(bank, tmp_path / "cache")
        app = create_app(
            ReadModel(redis_client), fetcher, Generator(max_models=1), signing_keys=SIGNING_KEYS
        )
        with running(app) as url:
            yield schemathesis.openapi.from_url(f"{url}/openapi.json")


def test_no_server_errors_on_any_operation(inference_schema: schemathesis.BaseSchema) -> None:
    probe_all(inference_schema, check, operations=5, max_examples=60)
