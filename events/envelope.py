"""The envelope and the typed events: one pydantic class per event type.

Every event is an envelope whose `type` selects its payload model (a discriminated union).
`schema_version` is per type; entries written under an older version are upcast on read
(see `events.codec`).
"""

from __future__ import annotations

import logging
import uuid
from datetime import UTC, datetime
from typing import Annotated, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter

from events.signing import (
    PointerRefused,
    PointerSignature,
    SignedFields,
    SigningKeys,
    warn_refused,
)
from events.specs import (
    ArtifactPointer,
    FileId,
    ModelName,
    RunId,
    Strict,
    TokenizerSpec,
    TrainingSpec,
)


def new_event_id() -> str:
    """A fresh, globally unique event id."""
    return uuid.uuid4().hex


def utc_now() -> datetime:
    """Timezone-aware now, the only clock events use."""
    return datetime.now(UTC)


class Envelope(BaseModel):
    """Fields every event has; subclasses fix `type` and the payload model."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    SCHEMA_VERSION: ClassVar[int] = 1

    event_id: str = Field(default_factory=new_event_id)
    schema_version: int = 1
    occurred_at: datetime = Field(default_factory=utc_now)
    correlation_id: RunId
    causation_id: str | None = None


# -- payloads ---------------------------------------------------------------------------------

Subject = Literal["run", "tokenizer"]


class TrainingMetrics(Strict):
    """What a finished run measured."""

    steps: int = Field(ge=0)
    tokens: int = Field(ge=0)
    seconds: float = Field(ge=0)
    tokens_per_second: float = Field(ge=0)
    train_loss: float | None = None
    val_loss: float | None = None
    perplexity: float | None = None


class NodePayload(Strict):
    """Names the worker node that did the work (and holds the files)."""

    node_id: str


class StartedPayload(NodePayload):
    """A training (re)started on `node_id`: its attempt (1 for the first start), and the
    checkpoint step it resumed from (None: from step 0)."""

    attempt: int = Field(default=1, ge=1)
    resumed_at_step: int | None = Field(default=None, ge=0)


class Provenance(Strict):
    """The weights' sha256 and what made them besides the spec: what a reproduction repeats."""

    model_sha256: FileId
    """Of `model.safetensors` (of its shards in name order, for a sharded model)."""
    device: str
    threads: int = Field(ge=1)
    """torch's intra-op threads: on CPU another count sums floats in another order."""
    versions: dict[str, str]
    """trainledger, Python, torch, transformers, tokenizers (as the manifest has them)."""


class Difference(Strict):
    """An input that differed between a run and its reproduction (None: not recorded)."""

    name: str
    """`device`, `threads`, or a library's name."""
    original: str | None
    reproduction: str | None


class Reproduction(Strict):
    """How a reproduction's weights compare with those of the run it reproduces (`of`).

    `identical` (the sha256 of the weights) is known when both ran on CPU: GPU kernels are
    not bitwise deterministic, so there a mismatch says nothing; it is also None when the
    original recorded no provenance. `differences` are the inputs that differed."""

    of: RunId
    identical: bool | None = None
    differences: list[Difference] = Field(default=[])


class TrainingCompletedPayload(Strict):
    """A run trained; its files are on `node_id` until uploaded. `provenance` is None in
    completions recorded before it was; `reproduction` is set for a reproduction only."""

    node_id: str
    metrics: TrainingMetrics
    provenance: Provenance | None = None
    reproduction: Reproduction | None = None


class FailurePayload(Strict):
    """Why something failed, for people (`message`) and programs (`error_code`)."""

    message: str
    error_code: str = "failed"


class RevivalPayload(Strict):
    """A failure withdrawn because the dead letter that caused it was replayed: `failure_id`
    names the `dead_lettered` failure, `message` tells a reader what happens next."""

    failure_id: str
    message: str


class CancelRequestedPayload(Strict):
    """A request to stop a run between steps."""

    reason: str | None = None


class TokenizerCompletedPayload(Strict):
    """A tokenizer trained on `node_id`."""

    node_id: str
    vocab_size: int = Field(ge=1)


class ArtifactUploadedPayload(Strict):
    """An artifact reached Data Bank, verified."""

    subject: Subject
    node_id: str
    file_id: FileId
    size: int = Field(ge=0)
    sha256: FileId
    seconds: float = Field(ge=0)


class UploadFailedPayload(Strict):
    """An upload failed for good (after retries)."""

    subject: Subject
    node_id: str
    reason: str


class UploadDeferredPayload(Strict):
    """An upload met a transient Data Bank failure; it stays pending and is tried again.

    `deadline` is fixed by the first deferral of an upload (its retry window): past it, the
    next transient failure fails the upload for good."""

    subject: Subject
    node_id: str
    error: str
    attempt: int = Field(ge=1)
    next_attempt_at: datetime
    deadline: datetime


class UploadRequestedPayload(Strict):
    """Someone asked for a failed upload to be tried again (by the node holding the files)."""

    subject: Subject


class PointerSetPayload(Strict):
    """The artifact of the run or tokenizer `correlation_id` is `pointer`, of `size` bytes,
    `signature` by the worker that uploaded it (see `events.signing`); a pointer without one
    is refused by every reader."""

    subject: Subject
    pointer: ArtifactPointer
    size: int | None = Field(default=None, ge=0)
    signature: PointerSignature | None = None


class PointerRevokedPayload(Strict):
    """The artifact pointer is withdrawn; with `deleted`, the run itself is deleted: it
    leaves the lists for good and its Data Bank file goes once nothing else points to it."""

    subject: Subject
    reason: str
    deleted: bool = False


class MetricPoint(Strict):
    """One point of a loss curve: the mean loss of the steps up to `step` since the last."""

    step: int = Field(ge=0)
    loss: float


MAX_METRIC_POINTS = 256
"""Points kept per curve: past it, every other point goes and the window doubles."""


class ProgressPayload(Strict):
    """Where a run stands and its loss curves so far (cumulative, bounded): the latest
    report holds the whole history, so the read model keeps just the latest."""

    node_id: str
    step: int = Field(ge=0)
    total_steps: int = Field(ge=0)
    train: list[MetricPoint] = Field(default=[], max_length=MAX_METRIC_POINTS)
    validation: list[MetricPoint] = Field(default=[], max_length=MAX_METRIC_POINTS)


class AliasSetPayload(Strict):
    """`model@alias` now serves run `run_id` (a completed run)."""

    model: ModelName
    alias: ModelName
    run_id: RunId


class AliasRemovedPayload(Strict):
    """`model@alias` serves nothing any more."""

    model: ModelName
    alias: ModelName


# -- events -----------------------------------------------------------------------------------


class TrainingRequested(Envelope):
    """A client asked for a run."""

    type: Literal["training.requested"] = "training.requested"
    payload: TrainingSpec
    reproduces: RunId | None = None
    """Set by `POST /runs/{run_id}/reproduce`: the run whose spec this one trains again. On the
    event, not in the spec: a client's `POST /runs/train` cannot claim it."""


class TrainingStarted(Envelope):
    """A worker started training."""

    type: Literal["training.started"] = "training.started"
    payload: StartedPayload


class TrainingProgressed(Envelope):
    """A running training reports its step and loss curves (at a bounded rate, and at the end)."""

    type: Literal["training.progress"] = "training.progress"
    payload: ProgressPayload


class TrainingCompleted(Envelope):
    """Training finished; the files wait on the node for the upload stage."""

    type: Literal["training.completed"] = "training.completed"
    payload: TrainingCompletedPayload


class TrainingFailed(Envelope):
    """The run failed."""

    type: Literal["training.failed"] = "training.failed"
    payload: FailurePayload


class TrainingCancelRequested(Envelope):
    """A client asked to cancel the run."""

    type: Literal["training.cancel_requested"] = "training.cancel_requested"
    payload: CancelRequestedPayload = CancelRequestedPayload()


class TrainingCancelled(Envelope):
    """The run stopped because it was cancelled."""

    type: Literal["training.cancelled"] = "training.cancelled"
    payload: NodePayload


class TokenizerRequested(Envelope):
    """A client asked for a tokenizer."""

    type: Literal["tokenizer.requested"] = "tokenizer.requested"
    payload: TokenizerSpec


class TokenizerCompleted(Envelope):
    """A tokenizer trained; its files wait on the node for the upload stage."""

    type: Literal["tokenizer.completed"] = "tokenizer.completed"
    payload: TokenizerCompletedPayload


class TokenizerFailed(Envelope):
    """The tokenizer failed."""

    type: Literal["tokenizer.failed"] = "tokenizer.failed"
    payload: FailurePayload


class TrainingRevived(Envelope):
    """`trainledger dlq replay` withdrew the run's `dead_lettered` failure: the run is queued
    again (only such a failure can be withdrawn; see `consumers.dead_letters`)."""

    type: Literal["training.revived"] = "training.revived"
    payload: RevivalPayload


class TokenizerRevived(Envelope):
    """`trainledger dlq replay` withdrew the tokenizer's `dead_lettered` failure."""

    type: Literal["tokenizer.revived"] = "tokenizer.revived"
    payload: RevivalPayload


class ArtifactUploaded(Envelope):
    """An artifact was uploaded and verified."""

    type: Literal["artifact.uploaded"] = "artifact.uploaded"
    payload: ArtifactUploadedPayload


class ArtifactUploadFailed(Envelope):
    """An artifact could not be uploaded."""

    type: Literal["artifact.upload_failed"] = "artifact.upload_failed"
    payload: UploadFailedPayload


class ArtifactUploadDeferred(Envelope):
    """An upload failed transiently and will be tried again (until its deadline)."""

    type: Literal["artifact.upload_deferred"] = "artifact.upload_deferred"
    payload: UploadDeferredPayload


class ArtifactUploadRequested(Envelope):
    """A client asked for a failed upload to be tried again."""

    type: Literal["artifact.upload_requested"] = "artifact.upload_requested"
    payload: UploadRequestedPayload


class ArtifactPointerSet(Envelope):
    """The typed pointer to an artifact: version 2 nests the `ArtifactPointer`."""

    SCHEMA_VERSION: ClassVar[int] = 2
    schema_version: int = 2
    type: Literal["artifact.pointer_set"] = "artifact.pointer_set"
    payload: PointerSetPayload

    def signed_fields(self) -> SignedFields:
        """What this pointer's signature covers."""
        payload = self.payload
        return SignedFields(
            subject=payload.subject,
            subject_id=self.correlation_id,
            file_id=payload.pointer.file_id,
            size=payload.size,
        )

    def verify(self, keys: SigningKeys) -> None:
        """Return when `keys` made this pointer's signature; else `PointerRefused` with a code.
        Every reader that acts on a pointer asks this (projector, rebuild, the stages)."""
        keys.verify(self.signed_fields(), self.payload.signature)

    def refusal(
        self, keys: SigningKeys, reader: logging.Logger, category: str, what: str
    ) -> PointerRefused | None:
        """None when `keys` made this pointer's signature; else the refusal, logged by
        `reader` as a warning `artifact pointer <what>` (event `pointer_<what>`, its code, the
        subject's id: never a key or a path)."""
        try:
            self.verify(keys)
        except PointerRefused as refused:
            warn_refused(reader, refused, what, category, self.payload.subject, self.correlation_id)
            return refused
        return None


class ArtifactPointerRevoked(Envelope):
    """A pointer was withdrawn."""

    type: Literal["artifact.pointer_revoked"] = "artifact.pointer_revoked"
    payload: PointerRevokedPayload


class ModelAliasSet(Envelope):
    """An alias of a model was pointed at a run (the correlation id is the model's name)."""

    type: Literal["model.alias_set"] = "model.alias_set"
    payload: AliasSetPayload


class ModelAliasRemoved(Envelope):
    """An alias of a model was removed (the correlation id is the model's name)."""

    type: Literal["model.alias_removed"] = "model.alias_removed"
    payload: AliasRemovedPayload


Event = Annotated[
    TrainingRequested
    | TrainingStarted
    | TrainingProgressed
    | TrainingCompleted
    | TrainingFailed
    | TrainingCancelRequested
    | TrainingCancelled
    | TokenizerRequested
    | TokenizerCompleted
    | TokenizerFailed
    | TrainingRevived
    | TokenizerRevived
    | ArtifactUploaded
    | ArtifactUploadFailed
    | ArtifactUploadDeferred
    | ArtifactUploadRequested
    | ArtifactPointerSet
    | ArtifactPointerRevoked
    | ModelAliasSet
    | ModelAliasRemoved,
    Field(discriminator="type"),
]
"""One event of the log, of whichever type."""

EVENT_ADAPTER: TypeAdapter[Event] = TypeAdapter(Event)

EVENT_CLASSES: tuple[type[Envelope], ...] = (
    TrainingRequested, TrainingStarted, TrainingProgressed, TrainingCompleted, TrainingFailed,
    TrainingCancelRequested, TrainingCancelled, TokenizerRequested, TokenizerCompleted,
    TokenizerFailed, ArtifactUploaded, ArtifactUploadFailed, ArtifactUploadDeferred,
    ArtifactUploadRequested, ArtifactPointerSet, ArtifactPointerRevoked, ModelAliasSet,
    ModelAliasRemoved, TrainingRevived, TokenizerRevived,
)  # fmt: skip
