"""The tokenizer stage: `tokenizer.requested` -> `tokenizers/{tokenizer_id}` -> `tokenizer.completed`.

It shares group `training` with the training stage (one consumer dispatches both types: a
second consumer in the same group would acknowledge, unhandled, the type it lacks). The flow
mirrors training: a finished tokenizer (per the log) is not redone; a tokenizer directory that
exists is complete (it appears by rename) and is reported without retraining; a corpus that
cannot be used ends in `tokenizer.failed`. The upload stage uploads it afterwards.
"""

from __future__ import annotations

import logging

import redis

from consumers.config import WorkerConfig
from consumers.history import History, record
from consumers.layout import staged
from consumers.sources import StageError, fetch_corpus
from consumers.tokenizer import TOKENIZER_FILE, CorpusError, load_tokenizer, train_tokenizer
from databank import CorpusFetcher, FileDownloader
from events import (
    Delivery,
    EventLog,
    FailurePayload,
    Handlers,
    TokenizerCompleted,
    TokenizerCompletedPayload,
    TokenizerFailed,
    TokenizerRequested,
)

log = logging.getLogger(__name__)


class TokenizerStage:
    """Handles `tokenizer.requested` on one node."""

    def __init__(
        self, client: redis.Redis, downloader: FileDownloader, config: WorkerConfig
    ) -> None:
        self._log = EventLog(client, config.durability)
        self._config = config
        self._layout = config.layout
        self._corpora = CorpusFetcher(downloader, self._layout.corpus_cache)

    def register(self, handlers: Handlers) -> Handlers:
        """Add this stage's handler to `handlers` (the group `training` consumer's)."""
        return handlers.on(TokenizerRequested, self.handle)

    def handle(self, event: TokenizerRequested, delivery: Delivery) -> None:
        """Train the requested tokenizer, or report the one already trained."""
        tokenizer_id = event.correlation_id
        if History.read(self._log, tokenizer_id).tokenizer_finished:
            _log("request already handled", "tokenizer_skipped", tokenizer_id)
            return
        try:
            vocab_size = self._vocab_size(event)
        except StageError as failure:
            payload = FailurePayload(message=failure.message, error_code=failure.error_code)
            failed = TokenizerFailed(
                correlation_id=tokenizer_id, causation_id=event.event_id, payload=payload
            )
            record(self._log, event, failed)
            _log(f"tokenizer failed: {failure.message}", "tokenizer_failed", tokenizer_id)
            return
        payload_done = TokenizerCompletedPayload(
            node_id=self._config.node_id, vocab_size=vocab_size
        )
        completed = TokenizerCompleted(
            correlation_id=tokenizer_id, causation_id=event.event_id, payload=payload_done
        )
        record(self._log, event, completed)
        _log("tokenizer completed", "tokenizer_completed", tokenizer_id)

    def _vocab_size(self, event: TokenizerRequested) -> int:
        """Train into the tokenizer directory unless it is there already; its vocabulary size."""
        directory = self._layout.tokenizer_dir(event.correlation_id)
        if (directory / TOKENIZER_FILE).is_file():
            return len(load_tokenizer(directory))
        corpus = fetch_corpus(self._corpora, event.payload.corpus_file_id)
        with staged(directory) as out:
            try:
                tokenizer = train_tokenizer(corpus, event.payload.params, out)
            except CorpusError as error:
                raise StageError(str(error), "corpus_invalid") from None
        return len(tokenizer)


def _log(message: str, event: str, tokenizer_id: str) -> None:
    log.info(message, extra={"category": "tokenizer", "event": event, "tokenizer_id": tokenizer_id})
