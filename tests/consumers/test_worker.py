"""The `Worker`: both groups of a node in threads, stopped together."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
import redis

from consumers import Worker, WorkerConfig, WorkerFailed
from databank import DataBankClient
from events import (
    ArtifactPointerSet,
    EventLog,
    TokenizerParams,
    TokenizerRequested,
    TokenizerSpec,
    names,
)
from tests.harness import LocalBank, events_of
from tests.waiting import wait_until


def test_a_worker_trains_and_uploads_then_stops_on_request(
    redis_client: redis.Redis,
    bank_client: DataBankClient,
    local_bank: LocalBank,
    worker_config: WorkerConfig,
    tmp_path: Path,
) -> None:
    worker = Worker(redis_client, bank_client, worker_config.model_copy(update={"block_ms": 20}))
    runner = threading.Thread(target=worker.run)
    runner.start()
    try:
        spec = TokenizerSpec(
            corpus_file_id=local_bank.put_corpus(tmp_path), params=TokenizerParams(vocab_size=300)
        )
        EventLog(redis_client).append(TokenizerRequested(correlation_id="tok-1", payload=spec))
        log = EventLog(redis_client)
        wait_until(lambda: bool(events_of(log, "tok-1", ArtifactPointerSet)), timeout=30)
    finally:
        worker.stop()
        runner.join(timeout=30)
    assert not runner.is_alive()
    groups = {group["name"] for group in redis_client.xinfo_groups(names.TRAINING_STREAM)}
    assert groups == {b"training", b"upload:node-a", b"retention"}


def test_when_one_consumer_ends_the_worker_stops_the_other(
    redis_client: redis.Redis, bank_client: DataBankClient, worker_config: WorkerConfig
) -> None:
    worker = Worker(redis_client, bank_client, worker_config.model_copy(update={"block_ms": 20}))
    worker.start()
    wait_until(lambda: _has_group(redis_client, b"upload:node-a"), what="the upload group")
    worker.consumers[1].stop()
    worker.wait()
    assert all(consumer.stopping.is_set() for consumer in worker.consumers)


def test_a_consumer_that_fails_stops_the_worker_with_the_error(
    redis_client: redis.Redis, bank_client: DataBankClient, worker_config: WorkerConfig
) -> None:
    worker = Worker(redis_client, bank_client, worker_config.model_copy(update={"block_ms": 20}))
    worker.start()
    wait_until(lambda: _has_group(redis_client, b"training"), what="the training group")
    redis_client.xgroup_destroy(names.TRAINING_STREAM, names.TRAINING_GROUP)
    with pytest.raises(WorkerFailed, match="group training failed: NOGROUP"):
        worker.wait()
    assert all(consumer.stopping.is_set() for consumer in worker.consumers)


def _has_group(client: redis.Redis, group: bytes) -> bool:
    if not client.exists(names.TRAINING_STREAM):
        return False
    return group in {info["name"] for info in client.xinfo_groups(names.TRAINING_STREAM)}
