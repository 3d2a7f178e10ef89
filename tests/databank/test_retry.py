"""The retry policy: retries only what may pass, and stops on attempts or on time."""

from __future__ import annotations

import logging

import pytest
from pydantic import ValidationError

from databank import RetryPolicy, TransientError
from databank.client.retry import RetryableError, call_with_retries

FAST = RetryPolicy(attempts=4, initial_backoff=0.001, max_backoff=0.002, jitter=0)


def test_a_transient_failure_is_retried_until_it_passes(caplog: pytest.LogCaptureFixture) -> None:
    outcomes: list[Exception | str] = [RetryableError("a"), RetryableError("b"), "done"]

    def attempt() -> str:
        outcome = outcomes.pop(0)
        if isinstance(outcome, Exception):
            raise outcome
        return outcome

    with caplog.at_level(logging.WARNING, logger="databank.client"):
        assert call_with_retries(FAST, attempt, what="thing") == "done"

    assert outcomes == []
    assert "thing: attempt 2 failed (b)" in caplog.text


def test_attempts_are_bounded_and_reported() -> None:
    calls = 0

    def attempt() -> None:
        nonlocal calls
        calls += 1
        raise RetryableError("still down", status=503, code="UNAVAILABLE", request_id="r")

    with pytest.raises(TransientError) as caught:
        call_with_retries(FAST, attempt, what="thing")

    assert calls == caught.value.attempts == 4
    assert (caught.value.status, caught.value.code, caught.value.request_id) == (
        503,
        "UNAVAILABLE",
        "r",
    )
    assert "attempts=4" in str(caught.value)
    assert isinstance(caught.value.__cause__, RetryableError)


def test_total_time_is_bounded() -> None:
    policy = RetryPolicy(
        attempts=1000, initial_backoff=0.01, max_backoff=0.01, jitter=0, total_seconds=0.05
    )

    def attempt() -> None:
        raise RetryableError("down")

    with pytest.raises(TransientError) as caught:
        call_with_retries(policy, attempt, what="thing")

    assert 2 <= caught.value.attempts < 1000


def test_other_failures_are_not_retried() -> None:
    calls = 0

    def attempt() -> None:
        nonlocal calls
        calls += 1
        raise KeyError("not transient")

    with pytest.raises(KeyError):
        call_with_retries(FAST, attempt, what="thing")

    assert calls == 1


def test_a_policy_must_make_sense() -> None:
    with pytest.raises(ValidationError):
        RetryPolicy(attempts=0)
    with pytest.raises(ValidationError):
        RetryPolicy.model_validate({"unknown": 1})
