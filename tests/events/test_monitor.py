"""Per-group stats read off the engine."""

from __future__ import annotations

import redis

from events import EventLog, GroupStats, TrainingCancelRequested, ensure_group, group_stats, names
from tests.events.appending import append_all

GROUP = "g"


def test_a_missing_stream_or_group_counts_everything_as_lag(redis_client: redis.Redis) -> None:
    assert group_stats(redis_client, names.TRAINING_STREAM, GROUP) == GroupStats(
        names.TRAINING_STREAM, GROUP, 0, 0, 0.0, 0
    )
    EventLog(redis_client).append(TrainingCancelRequested(correlation_id="r"))
    assert group_stats(redis_client, names.TRAINING_STREAM, GROUP).lag == 1
    ensure_group(redis_client, names.TRAINING_STREAM, GROUP)
    stats = group_stats(redis_client, names.TRAINING_STREAM, GROUP)
    assert (stats.lag, stats.pending, stats.oldest_pending_age_s) == (1, 0, 0.0)


def test_lag_pending_age_and_dead_letters(redis_client: redis.Redis) -> None:
    append_all(redis_client, [TrainingCancelRequested(correlation_id=f"r{i}") for i in range(3)])
    ensure_group(redis_client, names.TRAINING_STREAM, GROUP)
    redis_client.xreadgroup(GROUP, "c", {names.TRAINING_STREAM: ">"}, count=1)
    redis_client.xadd(names.dlq_stream(names.TRAINING_STREAM, GROUP), {b"error": b"x"})
    stats = group_stats(redis_client, names.TRAINING_STREAM, GROUP)
    assert (stats.lag, stats.pending, stats.dead_letters) == (2, 1, 1)
    assert stats.oldest_pending_age_s >= 0


def test_unknown_lag_reads_as_zero(redis_client: redis.Redis) -> None:
    ids = [redis_client.xadd(names.TRAINING_STREAM, {b"k": b"v"}) for _ in range(3)]
    ensure_group(redis_client, names.TRAINING_STREAM, GROUP)
    redis_client.xreadgroup(GROUP, "c", {names.TRAINING_STREAM: ">"}, count=1)
    redis_client.xdel(names.TRAINING_STREAM, ids[1])
    [info] = redis_client.xinfo_groups(names.TRAINING_STREAM)
    assert info["lag"] is None
    assert group_stats(redis_client, names.TRAINING_STREAM, GROUP).lag == 0
