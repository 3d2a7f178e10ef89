"""The upload stage of one node: a completed run or tokenizer -> Data Bank -> its pointer.

Group `upload:<node_id>` on `stream:training`: every node sees every completion and handles
only those naming itself, because only that node holds the files (a node never touches
another node's run). For each of its completions it streams the deterministic tar of the
directory (`ArtifactUploader`), then appends `artifact.uploaded` and `artifact.pointer_set`
and, for a run, writes `artifact_pointer` into its `manifest.json`. Every Data Bank failure
that survives the client's retries (auth, size, 5xx, timeouts, an answer that is not JSON or
lacks the id, a checksum mismatch), an unarchivable or missing directory, ends in
`artifact.upload_failed` with the reason: there is no local-only fallback.

Redelivery: a completion whose upload already ended (pointer set, or upload failed) is not
uploaded again; a crash between the upload and the pointer uploads again, which Data Bank
deduplicates (same bytes, same id), and the idempotency keys keep one event of each kind.
"""

from __future__ import annotations

import logging
from pathlib import Path

import redis
from pydantic import ValidationError

from consumers.config import WorkerConfig
from consumers.history import History, record
from consumers.manifest import MANIFEST_FILE, Manifest
from consumers.tarball import ArchiveError
from consumers.uploader import ArtifactUploader, Receipt
from databank import DataBankError
from events import (
    ArtifactPointer,
    ArtifactPointerSet,
    ArtifactUploaded,
    ArtifactUploadedPayload,
    ArtifactUploadFailed,
    Delivery,
    EventLog,
    Handlers,
    PointerSetPayload,
    Subject,
    TokenizerCompleted,
    TrainingCompleted,
    UploadFailedPayload,
)

log = logging.getLogger(__name__)


class UploadStage:
    """Uploads this node's finished runs and tokenizers."""

    def __init__(
        self, client: redis.Redis, uploader: ArtifactUploader, config: WorkerConfig
    ) -> None:
        self._log = EventLog(client, config.durability)
        self._uploader = uploader
        self._node_id = config.node_id
        self._layout = config.layout

    def handlers(self) -> Handlers:
        """The handlers of group `upload:<node_id>`."""
        return (
            Handlers()
            .on(TrainingCompleted, self.on_training_completed)
            .on(TokenizerCompleted, self.on_tokenizer_completed)
        )

    def on_training_completed(self, event: TrainingCompleted, delivery: Delivery) -> None:
        """Upload the run's directory, if this node trained it."""
        if event.payload.node_id == self._node_id:
            self._upload("run", event, self._layout.run_dir(event.correlation_id))

    def on_tokenizer_completed(self, event: TokenizerCompleted, delivery: Delivery) -> None:
        """Upload the tokenizer's directory, if this node trained it."""
        if event.payload.node_id == self._node_id:
            self._upload("tokenizer", event, self._layout.tokenizer_dir(event.correlation_id))

    def _upload(
        self, subject: Subject, cause: TrainingCompleted | TokenizerCompleted, directory: Path
    ) -> None:
        history = History.read(self._log, cause.correlation_id)
        if history.upload_settled:
            pointer = history.pointer()
            if subject == "run" and pointer is not None:
                _add_pointer(directory, pointer)  # a crash may have come before this
            return
        try:
            if not directory.is_dir():
                raise FileNotFoundError(f"{directory} is missing on node {self._node_id}")
            receipt = self._uploader.upload(directory, name=f"{subject}-{cause.correlation_id}.tar")
        except (DataBankError, ArchiveError, OSError) as error:
            self._failed(subject, cause, f"{type(error).__name__}: {error}")
            return
        self._uploaded(subject, cause, receipt)
        if subject == "run":
            _add_pointer(directory, ArtifactPointer(file_id=receipt.file_id))

    def _uploaded(
        self, subject: Subject, cause: TrainingCompleted | TokenizerCompleted, receipt: Receipt
    ) -> None:
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
        pointer_set = ArtifactPointerSet(
            correlation_id=subject_id,
            causation_id=cause.event_id,
            payload=PointerSetPayload(
                subject=subject, pointer=ArtifactPointer(file_id=receipt.file_id)
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
        self, subject: Subject, cause: TrainingCompleted | TokenizerCompleted, reason: str
    ) -> None:
        failed = ArtifactUploadFailed(
            correlation_id=cause.correlation_id,
            causation_id=cause.event_id,
            payload=UploadFailedPayload(subject=subject, node_id=self._node_id, reason=reason),
        )
        record(self._log, cause, failed)
        log.warning(
            "artifact upload failed: %s",
            reason,
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
