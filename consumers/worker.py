"""`Worker`: one node's stage consumers, each in a thread of this process.

Three consumers: group `training` (training and tokenizer requests, one at a time), group
`upload:<node_id>` (this node's completions), so an upload never waits for the next training
and a long training never delays an upload, and group `retention` (deletions: any node
deletes a deleted run's Data Bank file). They run in threads rather than processes so the
process's logging configuration stays in force and one signal stops both. If one consumer
returns (stopped, or failed beyond its own reconnects), the worker stops the other and `run`
returns, or raises `WorkerFailed` when a consumer failed: a supervisor sees the process end
instead of a half-working node. Groups `training` and `upload:<node_id>` fail the run or
tokenizer whose entry they dead-letter (`consumers.dead_letters`), so none is left in limbo.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
from typing import Protocol

import redis

from consumers.config import WorkerConfig
from consumers.dead_letters import REQUESTS, UPLOAD_CAUSES, DeadLetterFailures
from consumers.retention import Deletes, RetentionStage
from consumers.tokenizer_stage import TokenizerStage
from consumers.training_stage import TrainingStage
from consumers.upload_stage import UploadStage
from consumers.uploader import ArtifactUploader, Uploads
from databank import FileDownloader
from events import Consumer, Handlers, names

log = logging.getLogger(__name__)


class WorkerFailed(RuntimeError):  # noqa: N818 - names what happened, as httpx does
    """A stage consumer stopped on an error it does not retry (its cause is chained)."""


class DataBank(FileDownloader, Uploads, Deletes, Protocol):
    """What the stages need from Data Bank: verified downloads, uploads and deletes
    (`DataBankClient`)."""


class Worker:
    """The training and upload stages of one node."""

    def __init__(self, client: redis.Redis, databank: DataBank, config: WorkerConfig) -> None:
        self.config = config
        runtime = config.runtime()
        training = TrainingStage(client, databank, config)
        tokenizers = TokenizerStage(client, databank, config)
        uploads = UploadStage(client, ArtifactUploader(databank), config)
        self.consumers = (
            Consumer(
                client,
                streams=[names.TRAINING_STREAM],
                group=names.TRAINING_GROUP,
                handlers=tokenizers.register(training.register(Handlers())),
                # One entry at a time: a worker busy training must not hold (and keep claimed
                # by its heartbeat) requests that an idle worker could take.
                config=dataclasses.replace(runtime, batch_size=1),
                on_dead_letter=DeadLetterFailures(client, config, REQUESTS),
            ),
            Consumer(
                client,
                streams=[names.TRAINING_STREAM],
                group=names.upload_group(config.node_id),
                handlers=uploads.handlers(),
                config=config.upload_runtime(),
                on_dead_letter=DeadLetterFailures(client, config, UPLOAD_CAUSES),
            ),
            Consumer(
                client,
                streams=[names.TRAINING_STREAM],
                group=names.RETENTION_GROUP,
                handlers=RetentionStage(client, databank, config.signing_keys).register(Handlers()),
                config=runtime,
            ),
        )
        self._ended = threading.Event()
        self._threads: list[threading.Thread] = []
        self._failures: list[tuple[str, Exception]] = []

    def start(self) -> None:
        """Start one thread per consumer (each creates its group, waiting out an engine that is
        not there yet)."""
        self._threads = [
            threading.Thread(target=self._serve, args=(consumer,), name=consumer.group)
            for consumer in self.consumers
        ]
        for thread in self._threads:
            thread.start()

    def _serve(self, consumer: Consumer) -> None:
        try:
            consumer.run()
        except Exception as error:
            log.exception(
                "consumer of group %s failed",
                consumer.group,
                extra={"category": "worker", "event": "consumer_failed", "error_code": "crash"},
            )
            self._failures.append((consumer.group, error))
        finally:
            self._ended.set()

    def stop(self) -> None:
        """Ask every consumer to stop after the entry in hand (a training stops between steps)."""
        for consumer in self.consumers:
            consumer.stop()

    def wait(self) -> None:
        """Block until a consumer ends, then stop the others and wait for them; raise
        `WorkerFailed` if one ended on an error."""
        self._ended.wait()
        self.stop()
        for thread in self._threads:
            thread.join()
        if self._failures:
            group, error = self._failures[0]
            raise WorkerFailed(f"the consumer of group {group} failed: {error}") from error

    def run(self) -> None:
        """Start, and serve until `stop` (from a signal handler or another thread)."""
        self.start()
        self.wait()
