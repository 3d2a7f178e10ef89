"""The training stage: `training.requested` -> a trained run directory -> `training.completed`.

Flow of one request (group `training` on `stream:training`):

1. The run already completed, failed or was cancelled (per the log): nothing (a redelivery).
2. A cancel was requested while it waited: `training.cancelled`, nothing trained.
3. The run directory already holds a complete `manifest.json` (a worker died after training,
   before `training.completed` was appended): `training.completed` from the manifest, no
   retraining.
4. Otherwise `training.started` (one per start: a restart after a crash is a second start),
   then the corpus (`CorpusFetcher`), the tokenizer (trained with the run, or fetched by its
   pointer), `train_model` (on `training.processes` processes: `consumers.ranks` starts and
   stops the others), and `manifest.json`, all written into a staging directory renamed
   to `models/{run_id}` once complete; then `training.completed` with this node's id.

Stopping between steps: a cancel request in the log (checked every `cancel_check_s`) ends in
`training.cancelled` with the partial files removed; a shutting-down consumer raises
`Interrupted`, so the entry stays pending and another worker starts the run again. A request
that cannot succeed (see `StageError`, `CorpusError`, `TrainingError`) ends in
`training.failed` and is acknowledged: a deterministic failure must not loop.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

import redis
import torch
from pydantic import ValidationError
from transformers import PreTrainedTokenizerFast

from consumers.cancel import CancelWatch
from consumers.checkpoints import CheckpointStore
from consumers.config import WorkerConfig
from consumers.history import History, record
from consumers.layout import staged
from consumers.manifest import (
    MANIFEST_FILE,
    Execution,
    LibraryVersions,
    Manifest,
    TokenizerRecord,
    weights_sha256,
)
from consumers.progress import ProgressReporter
from consumers.ranks import RankJob, data_parallel
from consumers.reproduction import reproduction
from consumers.runlog import RunLog
from consumers.sources import StageError, fetch_corpus, fetch_tokenizer
from consumers.tokenizer import CorpusError, train_tokenizer
from consumers.trainer import CancelRequested, Checkpointing, TrainingError, train_model
from databank import ArtifactFetcher, CorpusFetcher, FileDownloader
from events import (
    Delivery,
    EventLog,
    FailurePayload,
    Handlers,
    Interrupted,
    NodePayload,
    StartedPayload,
    TokenizerRef,
    TrainingCancelled,
    TrainingCompleted,
    TrainingCompletedPayload,
    TrainingFailed,
    TrainingRequested,
    TrainingStarted,
    utc_now,
)

log = logging.getLogger(__name__)


class TrainingStage:
    """Handles `training.requested` on one node."""

    def __init__(
        self, client: redis.Redis, downloader: FileDownloader, config: WorkerConfig
    ) -> None:
        self._client = client
        self._log = EventLog(client, config.durability)
        self._config = config
        self._layout = config.layout
        self._corpora = CorpusFetcher(downloader, self._layout.corpus_cache)
        self._artifacts = ArtifactFetcher(downloader, self._layout.artifact_cache)

    def register(self, handlers: Handlers) -> Handlers:
        """Add this stage's handler to `handlers` (shared with the tokenizer stage's group)."""
        return handlers.on(TrainingRequested, self.handle)

    def handle(self, event: TrainingRequested, delivery: Delivery) -> None:
        """Train the requested run, or do what is left of it (see the module's flow)."""
        run_id = event.correlation_id
        history = History.read(self._log, run_id)
        if history.run_finished:
            self._checkpoints(run_id).clear()  # ended elsewhere
            _info("request already handled", "training_skipped", run_id)
            return
        lines = RunLog(
            self._client,
            run_id,
            maxlen=self._config.log_lines,
            file=self._layout.run_log(run_id),
        )
        if history.cancel_requested:
            self._checkpoints(run_id).clear()  # an attempt's, if any
            when = "resumed" if history.starts() else "started"
            self._cancelled(event, lines, f"cancelled before training {when}")
            return
        manifest = self._finished(run_id)
        if manifest is not None:
            _info("run directory complete; not retraining", "training_recovered", run_id)
            self._completed(event, manifest, lines)
            return
        self._start(event, delivery, lines, history)

    def _start(
        self, event: TrainingRequested, delivery: Delivery, lines: RunLog, history: History
    ) -> None:
        run_id, node = event.correlation_id, self._config.node_id
        checkpoints = self._checkpoints(run_id)
        resume = checkpoints.latest()
        payload = StartedPayload(
            node_id=node,
            attempt=history.starts() + 1,
            resumed_at_step=resume.step if resume else None,
        )
        started = TrainingStarted(
            correlation_id=run_id, causation_id=event.event_id, payload=payload
        )
        # per entry too: a dead letter replayed is a new entry, delivered from attempt 1 again
        once = f"{delivery.consumer}:{delivery.entry_id}:{delivery.attempt}"
        record(self._log, event, started, once_per=once)
        lines.say("started", _started_line(payload, event.payload.training.processes))
        _info("training started", "training_started", run_id)
        plan = Checkpointing(
            checkpoints,
            every_steps=event.payload.training.checkpoint_every_steps,
            every_s=self._config.checkpoint_interval_s,
            resume=resume,
        )
        try:
            manifest = self._train(event, delivery, lines, plan)
        except CancelRequested:
            if delivery.should_stop():
                _info("worker stopping; run left for another", "training_interrupted", run_id)
                raise Interrupted(f"run {run_id} interrupted by shutdown") from None
            checkpoints.clear()
            self._cancelled(event, lines, "cancelled during training")
            return
        except StageError as failure:
            checkpoints.clear()
            self._failed(event, lines, failure)
            return
        checkpoints.clear()
        self._completed(event, manifest, lines)

    def _train(
        self, event: TrainingRequested, delivery: Delivery, lines: RunLog, plan: Checkpointing
    ) -> Manifest:
        spec, run_id = event.payload, event.correlation_id
        corpus = fetch_corpus(self._corpora, spec.corpus_file_id)
        cancel = CancelWatch(self._log, run_id, interval=self._config.cancel_check_s)

        def should_stop() -> bool:
            return delivery.should_stop() or cancel.requested()

        with staged(self._layout.run_dir(run_id)) as out:
            try:
                tokenizer, tokenizer_record, tokenizer_seconds = self._tokenizer(event, corpus, out)
                job = RankJob(run_id, corpus, spec, tokenizer_dir=out, resume=plan.resume)
                with data_parallel(job, tokenizer, should_stop) as group:
                    outcome = train_model(
                        corpus,
                        tokenizer,
                        spec,
                        out,
                        should_stop=should_stop,
                        on_progress=ProgressReporter(
                            self._log,
                            lines,
                            event,
                            self._config.node_id,
                            self._config.metrics_interval_s,
                        ),
                        progress_every=self._config.progress_interval_s,
                        checkpointing=plan,
                        group=group,
                    )
            except CorpusError as error:
                raise StageError(str(error), "corpus_invalid") from None
            except TrainingError as error:
                raise StageError(str(error), "training_error") from None
            manifest = Manifest(
                run_id=run_id,
                model=outcome.model,
                tokenizer=tokenizer_record,
                corpus_file_id=spec.corpus_file_id,
                training=spec.training,
                metrics=outcome.metrics,
                execution=Execution(
                    node_id=self._config.node_id,
                    finished_at=utc_now(),
                    timings=outcome.timings.model_copy(
                        update={"tokenizer_seconds": tokenizer_seconds}
                    ),
                ),
                device=outcome.device,
                threads=torch.get_num_threads(),
                versions=LibraryVersions.current(self._config.trainledger_version),
                model_sha256=weights_sha256(out),
            )
            manifest.write(out / MANIFEST_FILE)
            lines.keep_in(out)
        return manifest

    def _tokenizer(
        self, event: TrainingRequested, corpus: Path, out: Path
    ) -> tuple[PreTrainedTokenizerFast, TokenizerRecord, float | None]:
        """The run's tokenizer, the manifest's record of it, and the seconds training it took."""
        chosen = event.payload.tokenizer
        if isinstance(chosen, TokenizerRef):
            tokenizer = fetch_tokenizer(
                self._log, self._artifacts, chosen.tokenizer_id, self._config.signing_keys
            )
            reused = TokenizerRecord(tokenizer_id=chosen.tokenizer_id, vocab_size=len(tokenizer))
            return tokenizer, reused, None
        begun = time.perf_counter()
        tokenizer = train_tokenizer(corpus, chosen, out)
        trained = TokenizerRecord(params=chosen, vocab_size=len(tokenizer))
        return tokenizer, trained, time.perf_counter() - begun

    def _checkpoints(self, run_id: str) -> CheckpointStore:
        """This node's checkpoints of the run."""
        return CheckpointStore(self._layout.checkpoint_dir(run_id))

    def _finished(self, run_id: str) -> Manifest | None:
        """The manifest of a run directory that is complete (it appears only by rename)."""
        try:
            return Manifest.read(self._layout.run_dir(run_id) / MANIFEST_FILE)
        except (OSError, ValidationError):
            return None

    def _completed(self, cause: TrainingRequested, manifest: Manifest, lines: RunLog) -> None:
        """Append `training.completed`, with the weights' provenance and, for a reproduction,
        how they compare; its line goes first, so the upload this event starts never archives
        a `logs.jsonl` still growing."""
        run_id, metrics, provenance = cause.correlation_id, manifest.metrics, manifest.provenance()
        lines.say("completed", f"training completed: {metrics.steps} steps")
        payload = TrainingCompletedPayload(
            node_id=self._config.node_id,
            metrics=metrics,
            provenance=provenance,
            reproduction=reproduction(self._log, cause, provenance),
        )
        completed = TrainingCompleted(
            correlation_id=run_id, causation_id=cause.event_id, payload=payload
        )
        record(self._log, cause, completed)
        _info("training completed", "training_completed", run_id)

    def _cancelled(self, cause: TrainingRequested, lines: RunLog, message: str) -> None:
        run_id = cause.correlation_id
        cancelled = TrainingCancelled(
            correlation_id=run_id,
            causation_id=cause.event_id,
            payload=NodePayload(node_id=self._config.node_id),
        )
        record(self._log, cause, cancelled)
        lines.say("cancelled", message)
        _info(message, "training_cancelled", run_id)

    def _failed(self, cause: TrainingRequested, lines: RunLog, failure: StageError) -> None:
        run_id = cause.correlation_id
        payload = FailurePayload(message=failure.message, error_code=failure.error_code)
        failed = TrainingFailed(correlation_id=run_id, causation_id=cause.event_id, payload=payload)
        record(self._log, cause, failed)
        lines.say("failed", failure.message)
        log.warning(
            "training failed: %s",
            failure.message,
            extra={
                "category": "training",
                "event": "training_failed",
                "run_id": run_id,
                "error_code": failure.error_code,
            },
        )


def _started_line(started: StartedPayload, processes: int) -> str:
    """The log line that marks an attempt: where it runs, on how many processes, and where it
    starts from."""
    line = f"attempt {started.attempt}: training started on node {started.node_id}"
    if processes > 1:
        line = f"{line}, {processes} processes"
    if started.resumed_at_step is not None:
        return f"{line}, resumed from the checkpoint at step {started.resumed_at_step}"
    if started.attempt > 1:
        return f"{line}, from step 0 (no checkpoint on this node)"
    return line


def _info(message: str, event: str, run_id: str) -> None:
    log.info(message, extra={"category": "training", "event": event, "run_id": run_id})
