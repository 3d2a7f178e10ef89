"""A cancel request is looked up in the log at most once per interval, and stays seen."""

from __future__ import annotations

import redis

from consumers.cancel import CancelWatch
from events import EventLog, TrainingCancelRequested


class Clock:
    """A clock the test moves."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_the_log_is_read_at_most_once_per_interval(redis_client: redis.Redis) -> None:
    log, clock = EventLog(redis_client), Clock()
    watch = CancelWatch(log, "r1", interval=1.0, clock=clock)
    log.append(TrainingCancelRequested(correlation_id="r1"))

    assert not watch.requested()  # not due yet: the request is not seen
    clock.now += 1.0
    assert watch.requested()
    redis_client.flushdb()
    assert watch.requested()  # once seen, no further reads


def test_no_request_means_keep_going(redis_client: redis.Redis) -> None:
    clock = Clock()
    watch = CancelWatch(EventLog(redis_client), "r1", interval=0.5, clock=clock)
    clock.now += 0.5
    assert not watch.requested()
    assert not watch.requested()
