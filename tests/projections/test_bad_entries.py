"""Bad entries never stop a consumer: over ten thousand generated bad entries, interleaved with
real events on all three streams, each land in the projector's dead letters while the real
events around them are projected, and the projector keeps running."""

from __future__ import annotations

import itertools
import random
import threading
from collections.abc import Iterator

import pytest
import redis

from events import EventLog, RuntimeConfig, list_dead_letters, names
from projections import Projector, ReadModel, rebuild_read_model
from tests.projections.factories import FILE_A, SIGNING_KEYS, completed_run, run_events
from tests.projections.garbage import bad_entries
from tests.projections.helpers import idle
from tests.waiting import wait_until

RUNS = 100
"""Completed runs of five events each, spread over the three streams."""
GARBAGE_PER_GAP = 21
"""Bad entries written before each real event: 500 gaps, 10,500 bad entries."""
QUICK = RuntimeConfig(block_ms=5, batch_size=500, visibility_timeout_ms=200, max_deliveries=3)


@pytest.fixture
def projector(redis_client: redis.Redis) -> Iterator[tuple[Projector, threading.Thread]]:
    """A projector consuming in a thread from the start; stopped and joined after the test."""
    member = Projector(redis_client, SIGNING_KEYS, config=QUICK)
    thread = threading.Thread(target=member.run, daemon=True)
    thread.start()
    yield member, thread
    member.stop()
    thread.join(10)
    assert not thread.is_alive()


def write_interleaved(client: redis.Redis, seed: int) -> dict[str, set[str]]:
    """Real runs through `EventLog.append`, each event after a gap of bad entries written to
    random streams in one pipeline; the ids of the bad entries, by stream."""
    rng, garbage, log = random.Random(seed), bad_entries(seed), EventLog(client)
    bad: dict[str, set[str]] = {stream: set() for stream in names.ALL_STREAMS}
    events = [event for i in range(RUNS) for event in completed_run(f"run-{i}")]
    for event in events:
        pipe = client.pipeline(transaction=False)
        streams = [rng.choice(names.ALL_STREAMS) for _ in range(GARBAGE_PER_GAP)]
        for stream, fields in zip(streams, itertools.islice(garbage, GARBAGE_PER_GAP), strict=True):
            pipe.xadd(stream, dict(fields.items()))
        for stream, entry_id in zip(streams, pipe.execute(), strict=True):
            bad[stream].add(entry_id.decode())
        log.append(event)
    return bad


def dead_lettered(client: redis.Redis) -> int:
    streams = names.ALL_STREAMS
    return sum(int(client.xlen(names.dlq_stream(s, names.PROJECTOR_GROUP))) for s in streams)


def test_ten_thousand_bad_entries_are_dead_lettered_and_the_good_ones_projected(
    redis_client: redis.Redis, projector: tuple[Projector, threading.Thread]
) -> None:
    member, thread = projector
    bad = write_interleaved(redis_client, seed=10)
    total = sum(len(ids) for ids in bad.values())
    assert total == RUNS * 5 * GARBAGE_PER_GAP >= 10_000
    wait_until(
        lambda: dead_lettered(redis_client) == total and idle(redis_client),
        timeout=30,
        what="every bad entry dead-lettered and the rest projected",
    )
    for stream, ids in bad.items():
        letters = list_dead_letters(redis_client, stream, names.PROJECTOR_GROUP, count=total)
        assert {letter.original_id for letter in letters} == ids
        assert all(letter.error.startswith("undecodable:") for letter in letters)
        assert {letter.attempts for letter in letters} == {1}
    reads = ReadModel(redis_client)
    for i in range(RUNS):
        status = reads.run_status(f"run-{i}")
        assert status is not None
        assert (status.status, status.artifact) == ("completed", reads.run_artifact(f"run-{i}"))
        assert redis_client.get(names.run_artifact_key(f"run-{i}")) == FILE_A.encode()
    report = rebuild_read_model(redis_client, SIGNING_KEYS, verify=True)
    assert (report.events, report.skipped, report.drift.clean) == (RUNS * 5, total, True)
    assert thread.is_alive()
    EventLog(redis_client).append(run_events("after")["training.requested"]())
    wait_until(lambda: reads.run_status("after") is not None, what="a later event projected")
    assert member.consumer.reconnects == 0
