"""Schemathesis over a service's OpenAPI schema: whatever a generated request holds, the service
never answers 5xx, and every error has `httpservice`'s one JSON shape."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Protocol

import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.core.result import Ok

from httpservice import ErrorBody


class Reply(Protocol):
    """What the check reads of a response."""

    status_code: int
    content: bytes


class GeneratedCase(Protocol):
    """What the check uses of a generated case."""

    method: str
    path_parameters: dict[str, object] | None

    @property
    def formatted_path(self) -> str:
        """The path with its parameters filled in."""

    def call(
        self, *, base_url: str | None = None, headers: dict[str, str] | None = None, timeout: float
    ) -> Reply:
        """Send the request."""


def check_reply(case: GeneratedCase, response: Reply) -> None:
    """No 5xx, and every error (but a HEAD's, which has no body) has the one JSON shape."""
    where = f"{case.method} {case.formatted_path}: {response.content!r}"
    assert response.status_code < 500, where
    if response.status_code >= 400 and case.method.upper() != "HEAD":
        assert set(json.loads(response.content)) == set(ErrorBody.model_fields), where
        code = ErrorBody.model_validate_json(response.content).code
        assert re.fullmatch(r"[A-Z][A-Z0-9_]*", code), where


def check(case: GeneratedCase) -> None:
    """Send `case` to the URL its schema was loaded from, and check the reply."""
    check_reply(case, case.call(timeout=10))


def probe_all(
    schema: schemathesis.BaseSchema,
    probe: Callable[[GeneratedCase], None],
    *,
    operations: int,
    max_examples: int,
) -> None:
    """Run `probe` on `max_examples` generated cases of each operation (`operations` of them,
    all valid): requests the schema allows and requests it refuses, mixed."""
    results = list(schema.get_all_operations())
    found = [result.ok() for result in results if isinstance(result, Ok)]
    assert len(found) == len(results) >= operations
    for operation in found:
        cases = st.one_of([operation.as_strategy(mode) for mode in GenerationMode])
        run = given(case=cases)(probe)
        settings(
            max_examples=max_examples,
            deadline=None,
            database=None,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
        )(run)()
