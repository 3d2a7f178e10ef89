"""The upload stage of one node: a completed run or tokenizer -> Data Bank -> its pointer.

Group `upload:<node_id>` on `stream:training`: every node sees every completion and handles
only those naming itself, because only that node holds the files (a node never touches
another node's run). For each of its completions it streams the deterministic tar of the
directory (`ArtifactUploader`), then appends `artifact.uploaded` and `artifact.pointer_set`
(signed with the node's key: readers refuse a pointer without the deployment's signature) and,
for a run, writes `artifact_pointer` into its `manifest.json`.

Failures come in two kinds. Transient ones (`TransientError`: connection errors, timeouts,
429 and 5xx past the client's retries; and 507, `InsufficientStorage`) mean Data Bank is
away, not that the artifact is wrong: the stage appends `artifact.upload_deferred` (the
error, the attempt, the next attempt, the deadline) and raises `UploadDeferred`, so the entry
stays pending and the consumer runtime redelivers it once it has been idle for the
visibility timeout. That is the schedule: the pending entry list holds it, a crash or a
restart keeps it, and the consumer handles other entries meanwhile (one attempt costs at most
the client's own retries). The first deferral fixes a deadline `upload_retry_window_s`
ahead; a transient failure past it ends in `artifact.upload_failed`. The upload group allows
enough deliveries for the window (`WorkerConfig.upload_runtime`), so the window, not the
delivery count, decides. Every other failure (auth, size, an answer that is not JSON or
lacks the id, a checksum mismatch, an unarchivable or missing directory) is permanent and
ends in `artifact.upload_failed` at once: there is no local-only fallback.

`artifact.upload_requested` (from the API) asks for a failed upload again: the node named in
the completion does it, once the last attempt failed for good; its deferrals and deadline are
its own.

Redelivery: a cause (completion or request) whose upload already ended (pointer set, or
failed) is not uploaded again; a crash between the upload and the pointer uploads again,
which Data Bank deduplicates (same bytes, same id), and the idempotency keys keep one event of
each kind per cause (one deferral per attempt).
"""

from __future__ import annotations

import logging
from datetime import timedelta
from pathlib import Path

import redis
from pydantic import ValidationError

from consumers.config import WorkerConfig
from consumers.history import History, VerifiedHistory, record
from consumers.manifest import MANIFEST_FILE, Manifest
from consumers.tarball import ArchiveError
from consumers.uploader import ArtifactUploader, Receipt
from databank import DataBankError, InsufficientStorage, TransientError
from events import (
    ArtifactPointer,
    ArtifactPointerSet,
    ArtifactUploadDeferred,
    ArtifactUploaded,
    ArtifactUploadedPayload,
    ArtifactUploadFailed,
    ArtifactUploadRequested,
    Delivery,
    Envelope,
    EventLog,
    Handlers,
    PointerSetPayload,
    SignedFields,
    Subject,
    TokenizerCompleted,
    TrainingCompleted,
    UploadDeferredPayload,
    UploadFailedPayload,
    utc_now,
)

log = logging.getLogger(__name__)

TRANSIENT = (TransientError, InsufficientStorage)
"""Data Bank failures worth waiting out: the artifact is fine, the service is not."""

Cause = TrainingCompleted | TokenizerCompleted | ArtifactUploadRequested
"""What asks for an upload: a completion, or a request to try a failed upload again."""


class UploadDeferred(Exception):  # noqa: N818 - names what happened, as `Interrupted` does
    """Raised so the entry stays pending: the upload is tried again on redelivery."""


class UploadStage:
    """Uploads this node's finished runs and tokenizers."""

    def __init__(
        self, client: redis.Redis, uploader: ArtifactUploader, config: WorkerConfig
    ) -> None:
        self._log = EventLog(client, config.durability)
        self._uploader = uploader
        self._node_id = config.node_id
        self._layout = config.layout
        self._keys = config.signing_keys
        self._window = timedelta(seconds=config.upload_retry_window_s)
        self._retry_after = timedelta(milliseconds=config.visibility_timeout_ms)

    def handlers(self) -> Handlers:
        """The handlers of group `upload:<node_id>`."""
        return (
            Handlers()
            .on(TrainingCompleted, self.on_training_completed)
            .on(TokenizerCompleted, self.on_tokenizer_completed)
            .on(ArtifactUploadRequested, self.on_upload_requested)
        )

    def on_training_completed(self, event: TrainingCompleted, delivery: Delivery) -> None:
        """Upload the run's directory, if this node trained it."""
        if event.payload.node_id == self._node_id:
            self._upload("run", event, self._history(event))

    def on_tokenizer_completed(self, event: TokenizerCompleted, delivery: Delivery) -> None:
        """Upload the tokenizer's directory, if this node trained it."""
        if event.payload.node_id == self._node_id:
            self._upload("tokenizer", event, self._history(event))

    def on_upload_requested(self, event: ArtifactUploadRequested, delivery: Delivery) -> None:
        """Upload again, if this node holds the files and the last upload failed for good."""
        subject = event.payload.subject
        history = self._history(event)
        completion = history.completion(subject)
        if completion is None or completion.payload.node_id != self._node_id:
            return
        if history.deferrals(event.event_id) or history.upload_failed_before(event.event_id):
            self._upload(subject, event, history)

    def _history(self, event: Envelope) -> VerifiedHistory:
        """What the log says about the event's run or tokenizer, counting only the pointers
        signed under this node's keys: a forged one must not pass for a finished upload."""
        return History.read(self._log, event.correlation_id).verified(self._keys)

    def _directory(self, subject: Subject, subject_id: str) -> Path:
        if subject == "run":
            return self._layout.run_dir(subject_id)
        return self._layout.tokenizer_dir(subject_id)

    def _upload(self, subject: Subject, cause: Cause, history: VerifiedHistory) -> None:
        directory = self._directory(subject, cause.correlation_id)
        pointer = history.pointer()
        if pointer is not None or history.upload_settled(cause.event_id):
            if subject == "run" and pointer is not None:
                _add_pointer(directory, pointer)  # a crash may have come before this
            return
        if not directory.is_dir():
            missing = f"the {subject}'s files are missing on node {self._node_id}"
            self._failed(subject, cause, f"FileNotFoundError: {missing}", f"{directory} is missing")
            return
        try:
            receipt = self._uploader.upload(directory, name=f"{subject}-{cause.correlation_id}.tar")
        except TRANSIENT as error:
            self._transient(subject, cause, history, f"{type(error).__name__}: {error}")
            return
        except OSError as error:
            # the event is served to every reader of the run: the node's paths stay in its log
            unreadable = f"the {subject}'s files on node {self._node_id} cannot be read"
            reason = f"{type(error).__name__}: {unreadable} ({error.strerror or 'unreadable'})"
            self._failed(subject, cause, reason, str(error))
            return
        except (DataBankError, ArchiveError) as error:
            self._failed(subject, cause, f"{type(error).__name__}: {error}")
            return
        self._uploaded(subject, cause, receipt)
        if subject == "run":
            _add_pointer(directory, ArtifactPointer(file_id=receipt.file_id))

    def _transient(
        self, subject: Subject, cause: Cause, history: VerifiedHistory, error: str
    ) -> None:
        """Defer the upload (and raise), or fail it once its retry window is over."""
        earlier = history.deferrals(cause.event_id)
        now = utc_now()
        deadline = earlier[0].payload.deadline if earlier else now + self._window
        attempt = len(earlier) + 1
        if now >= deadline:
            window = self._window.total_seconds()
            self._failed(
                subject, cause, f"{error} (gave up after {attempt} attempts, {window:g} s)"
            )
            return
        deferred = ArtifactUploadDeferred(
            correlation_id=cause.correlation_id,
            causation_id=cause.event_id,
            payload=UploadDeferredPayload(
                subject=subject,
                node_id=self._node_id,
                error=error,
                attempt=attempt,
                next_attempt_at=now + self._retry_after,
                deadline=deadline,
            ),
        )
        record(self._log, cause, deferred, once_per=str(attempt))
        log.warning(
            "artifact upload deferred (attempt %d): %s",
            attempt,
            error,
            extra={
                "category": "upload",
                "event": "artifact_upload_deferred",
                _id_field(subject): cause.correlation_id,
                "error_code": "upload_deferred",
                "node_id": self._node_id,
            },
        )
        raise UploadDeferred(f"attempt {attempt} of the upload of {cause.correlation_id}: {error}")

    def _uploaded(self, subject: Subject, cause: Envelope, receipt: Receipt) -> None:
        subject_id = cause.correlation_id
        uploaded = ArtifactUploaded(
            correlation_id=subject_id,
            causation_id=cause.event_id,
            payload=ArtifactUploadedPayload(
                subject=subject,
                node_id=self._node_id,
                file_id=receipt.file_id,
                size=receipt.size,
                sha256=receipt.sha256,
                seconds=receipt.seconds,
            ),
        )
        record(self._log, cause, uploaded)
        signed = SignedFields(
            subject=subject, subject_id=subject_id, file_id=receipt.file_id, size=receipt.size
        )
        pointer_set = ArtifactPointerSet(
            correlation_id=subject_id,
            causation_id=cause.event_id,
            payload=PointerSetPayload(
                subject=subject,
                pointer=ArtifactPointer(file_id=receipt.file_id),
                size=receipt.size,
                signature=self._keys.sign(signed),
            ),
        )
        record(self._log, cause, pointer_set)
        log.info(
            "artifact uploaded",
            extra={
                "category": "upload",
                "event": "artifact_uploaded",
                _id_field(subject): subject_id,
                "file_id": receipt.file_id,
                "node_id": self._node_id,
            },
        )

    def _failed(
        self, subject: Subject, cause: Envelope, reason: str, detail: str | None = None
    ) -> None:
        """Record the failure with `reason` (what a user can act on); log `detail` besides,
        which may name this node's paths."""
        failed = ArtifactUploadFailed(
            correlation_id=cause.correlation_id,
            causation_id=cause.event_id,
            payload=UploadFailedPayload(subject=subject, node_id=self._node_id, reason=reason),
        )
        record(self._log, cause, failed)
        log.warning(
            "artifact upload failed: %s%s",
            reason,
            f" ({detail})" if detail else "",
            extra={
                "category": "upload",
                "event": "artifact_upload_failed",
                _id_field(subject): cause.correlation_id,
                "error_code": "upload_failed",
                "node_id": self._node_id,
            },
        )


def _id_field(subject: Subject) -> str:
    return "run_id" if subject == "run" else "tokenizer_id"


def _add_pointer(run_dir: Path, pointer: ArtifactPointer) -> None:
    """Record the pointer in the run's `manifest.json`, unless it is there already."""
    path = run_dir / MANIFEST_FILE
    try:
        manifest = Manifest.read(path)
    except (OSError, ValidationError):
        return  # the directory was removed since, or never had a manifest: nothing to annotate
    if manifest.artifact_pointer != pointer:
        manifest.with_pointer(pointer).write(path)
