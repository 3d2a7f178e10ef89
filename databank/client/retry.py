"""The client's one retry policy: exponential backoff with jitter, bounded in attempts and time.

Retried: connection errors, timeouts, 408 (the server gave up on a stalled body), 429 and 5xx
(but 507), for every call including POST, which content addressing makes idempotent. Never
another 4xx: the answer would not change.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TypeVar

from pydantic import BaseModel, ConfigDict, Field
from tenacity import (
    RetryCallState,
    Retrying,
    retry_if_exception_type,
    stop_after_attempt,
    stop_after_delay,
    wait_exponential_jitter,
)

from databank.client.errors import DataBankError, TransientError

_log = logging.getLogger("databank.client")

T = TypeVar("T")


class RetryPolicy(BaseModel):
    """How hard the client tries; tests shrink the backoffs to milliseconds."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    attempts: int = Field(default=5, ge=1)
    initial_backoff: float = Field(default=0.5, gt=0, description="seconds before the 2nd attempt")
    max_backoff: float = Field(default=8.0, gt=0, description="cap on one wait, in seconds")
    jitter: float = Field(default=0.5, ge=0, description="up to this many seconds added at random")
    total_seconds: float = Field(default=300.0, gt=0, description="no new attempt after this")


class RetryableError(DataBankError):
    """Raised by one attempt when trying again may succeed; never escapes the client.

    It carries what the service said, like every `DataBankError`; `call_with_retries`
    turns it into a `TransientError` once the policy is spent.
    """


def _log_retry(what: str) -> Callable[[RetryCallState], None]:
    def log(state: RetryCallState) -> None:
        error = state.outcome.exception() if state.outcome is not None else None
        wait = state.next_action.sleep if state.next_action is not None else 0.0
        _log.warning(
            "%s: attempt %d failed (%s); retrying in %.3fs", what, state.attempt_number, error, wait
        )

    return log


def call_with_retries(policy: RetryPolicy, attempt: Callable[[], T], *, what: str) -> T:
    """Run `attempt` until it returns, raises a non-`RetryableError` error, or the policy is spent.

    A spent policy raises `TransientError` carrying the number of attempts and the last failure.
    """
    attempts = 0

    def counted() -> T:
        nonlocal attempts
        attempts += 1
        return attempt()

    retrying = Retrying(
        stop=stop_after_attempt(policy.attempts) | stop_after_delay(policy.total_seconds),
        wait=wait_exponential_jitter(
            multiplier=policy.initial_backoff, max=policy.max_backoff, jitter=policy.jitter
        ),
        retry=retry_if_exception_type(RetryableError),
        before_sleep=_log_retry(what),
        reraise=True,
    )
    try:
        return retrying(counted)
    except RetryableError as exc:
        raise TransientError(
            f"{what} failed after {attempts} attempt(s): {exc}",
            attempts=attempts,
            status=exc.status,
            code=exc.code,
            request_id=exc.request_id,
        ) from exc
