"""Schemathesis over the local Data Bank's schema: whatever it sends, no 5xx.

The server does not publish its schema (`openapi_url=None`, as the deployed service), so the
schema comes from the app itself and the generated requests go to the real server on loopback.
Each case is sent as generated (no key, or a wrong one), then with the upload key, once at a
generated file id and once at a stored file's, so the ranges and headers generated for a read
reach a real file.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import schemathesis

from databank.server import DataBankServerSettings, create_app
from tests.databank.conftest import KEY
from tests.fuzzing import GeneratedCase, check_reply, probe_all
from tests.harness import LocalBank, serve_bank


@pytest.fixture(scope="module")
def bank(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalBank]:
    """A local Data Bank of its own (the generated deletes must not reach other tests' files)."""
    with serve_bank(tmp_path_factory.mktemp("schema-bank")) as served:
        yield served


def prober(url: str, stored: str) -> Callable[[GeneratedCase], None]:
    """A check that sends each generated case three ways to the server at `url`."""

    def probe(case: GeneratedCase) -> None:
        check_reply(case, case.call(base_url=url, timeout=10))
        keyed = {"X-API-Key": KEY}
        check_reply(case, case.call(base_url=url, headers=keyed, timeout=10))
        parameters = case.path_parameters
        if parameters and "file_id" in parameters and case.method != "DELETE":
            parameters["file_id"] = stored
            check_reply(case, case.call(base_url=url, headers=keyed, timeout=10))

    return probe


def test_no_server_errors_on_any_operation(bank: LocalBank, tmp_path: Path) -> None:
    stored = bank.put(b"0123456789" * 100)
    schema = schemathesis.openapi.from_dict(
        create_app(DataBankServerSettings(data_dir=tmp_path, upload_keys=(KEY,))).openapi()
    )
    probe_all(schema, prober(bank.url, stored), operations=7, max_examples=40)
