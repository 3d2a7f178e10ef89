"""Drift: a verify reports exactly the keys that differ from the log, and writes nothing."""

from __future__ import annotations

import pytest
import redis

from events import names
from projections import rebuild_read_model
from projections.drift import Writes, canonical, chunks
from tests.projections.factories import FILE_B, SIGNING_KEYS
from tests.projections.helpers import project_sample, snapshot


@pytest.fixture
def projected(redis_client: redis.Redis) -> redis.Redis:
    """Three completed runs and a trained tokenizer, projected live."""
    project_sample(redis_client)
    return redis_client


def test_verify_reports_exactly_the_corrupted_keys_and_changes_nothing(
    projected: redis.Redis,
) -> None:
    client = projected
    client.hset(names.run_status_key("r1"), "status", "failed")
    client.delete(names.run_artifact_key("r2"))
    client.set(names.run_artifact_key("r0"), FILE_B)
    client.set(names.run_artifact_key("ghost"), FILE_B)
    client.hset(names.tokenizer_status_key("ghost"), "status", "queued")
    client.zadd(names.RUN_INDEX, {"r0": 1})
    client.hset("runs:not:ours:status", "x", "y")  # not an id the projector writes
    before = snapshot(client)

    report = rebuild_read_model(client, SIGNING_KEYS, verify=True)

    assert not report.applied
    assert set(report.drift.different) == {
        names.run_status_key("r1"),
        names.run_artifact_key("r0"),
        names.RUN_INDEX,
    }
    assert set(report.drift.missing) == {names.run_artifact_key("r2")}
    assert set(report.drift.extra) == {
        names.run_artifact_key("ghost"),
        names.tokenizer_status_key("ghost"),
    }
    assert snapshot(client) == before


def test_a_missing_index_is_reported_missing(projected: redis.Redis) -> None:
    projected.delete(names.RUN_INDEX)
    assert rebuild_read_model(projected, SIGNING_KEYS, verify=True).drift.missing == (
        names.RUN_INDEX,
    )


def test_canonical_form_chunks_and_writes() -> None:
    assert canonical({"b": "2", "a": "é"}) == b"1:a2:\xc3\xa91:b1:2"
    assert list(chunks(iter(range(5)), 2)) == [[0, 1], [2, 3], [4]]
    assert list(chunks(iter(()), 2)) == []
    assert not Writes()
    assert Writes(scores=["1", "r"]).document() == '{"h": [], "s": [], "z": ["1", "r"]}'
