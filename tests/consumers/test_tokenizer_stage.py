"""The tokenizer stage against a real engine and a real local Data Bank."""

from __future__ import annotations

from pathlib import Path

import pytest
import redis

from consumers import TokenizerStage, WorkerConfig
from consumers.tokenizer import load_tokenizer
from databank import EMPTY_FILE_ID, DataBankClient
from events import (
    EventLog,
    TokenizerCompleted,
    TokenizerFailed,
    TokenizerParams,
    TokenizerRequested,
    TokenizerSpec,
)
from tests.harness import LocalBank, delivery, events_of, types_of

TOKENIZER = "tok-1"


@pytest.fixture
def stage(
    redis_client: redis.Redis, bank_client: DataBankClient, worker_config: WorkerConfig
) -> TokenizerStage:
    return TokenizerStage(redis_client, bank_client, worker_config)


def _request(redis_client: redis.Redis, corpus_file_id: str) -> TokenizerRequested:
    spec = TokenizerSpec(corpus_file_id=corpus_file_id, params=TokenizerParams(vocab_size=300))
    event = TokenizerRequested(correlation_id=TOKENIZER, payload=spec)
    EventLog(redis_client).append(event)
    return event


def test_a_request_trains_the_tokenizer_once(
    stage: TokenizerStage,
    redis_client: redis.Redis,
    local_bank: LocalBank,
    worker_config: WorkerConfig,
    tmp_path: Path,
) -> None:
    request = _request(redis_client, local_bank.put_corpus(tmp_path))
    stage.handle(request, delivery())
    stage.handle(request, delivery(attempt=2))

    log = EventLog(redis_client)
    assert types_of(log, TOKENIZER) == ["tokenizer.requested", "tokenizer.completed"]
    completed = events_of(log, TOKENIZER, TokenizerCompleted)[0].payload
    saved = load_tokenizer(worker_config.layout.tokenizer_dir(TOKENIZER))
    assert (completed.node_id, completed.vocab_size) == ("node-a", len(saved))


def test_a_tokenizer_directory_already_there_is_reported_without_training(
    stage: TokenizerStage,
    redis_client: redis.Redis,
    local_bank: LocalBank,
    worker_config: WorkerConfig,
    tmp_path: Path,
) -> None:
    stage.handle(_request(redis_client, local_bank.put_corpus(tmp_path)), delivery())
    redis_client.flushdb()  # a log in which `tokenizer.completed` was never appended
    # The corpus is not even needed: the directory appears only once complete.
    stage.handle(_request(redis_client, "ab" * 32), delivery())
    assert types_of(EventLog(redis_client), TOKENIZER)[-1] == "tokenizer.completed"


@pytest.mark.parametrize(
    ("content", "code", "message"),
    [
        (None, "corpus_not_found", "not found in Data Bank"),
        (b"", "corpus_invalid", "corpus is empty"),
    ],
    ids=["unknown-corpus", "empty-corpus"],
)
def test_a_request_that_cannot_succeed_fails(
    stage: TokenizerStage,
    redis_client: redis.Redis,
    local_bank: LocalBank,
    worker_config: WorkerConfig,
    content: bytes | None,
    code: str,
    message: str,
) -> None:
    corpus_id = "ab" * 32 if content is None else local_bank.put(content)
    assert content is None or corpus_id == EMPTY_FILE_ID
    stage.handle(_request(redis_client, corpus_id), delivery())
    failed = events_of(EventLog(redis_client), TOKENIZER, TokenizerFailed)
    assert [event.payload.error_code for event in failed] == [code]
    assert message in failed[0].payload.message
    assert not worker_config.layout.tokenizer_dir(TOKENIZER).exists()
