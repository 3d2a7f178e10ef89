"""Events for projection tests: one builder per type, with a chosen time and event id."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Literal

from events import (
    AliasRemovedPayload,
    AliasSetPayload,
    ArtifactPointer,
    ArtifactPointerRevoked,
    ArtifactPointerSet,
    ArtifactUploadDeferred,
    ArtifactUploaded,
    ArtifactUploadedPayload,
    ArtifactUploadFailed,
    ArtifactUploadRequested,
    CancelRequestedPayload,
    Event,
    FailurePayload,
    MetricPoint,
    ModelAliasRemoved,
    ModelAliasSet,
    NodePayload,
    PointerRevokedPayload,
    PointerSetPayload,
    ProgressPayload,
    RevivalPayload,
    SignedFields,
    SigningKeys,
    StartedPayload,
    Subject,
    TokenizerCompleted,
    TokenizerCompletedPayload,
    TokenizerFailed,
    TokenizerRequested,
    TokenizerRevived,
    TokenizerSpec,
    TrainingCancelled,
    TrainingCancelRequested,
    TrainingCompleted,
    TrainingCompletedPayload,
    TrainingFailed,
    TrainingMetrics,
    TrainingProgressed,
    TrainingRequested,
    TrainingRevived,
    TrainingSpec,
    TrainingStarted,
    UploadDeferredPayload,
    UploadFailedPayload,
    UploadRequestedPayload,
)

SIGNING_KEY = "tests-signing-key-" + "0" * 46
"""The deployment key of every test (`APP__SIGNING_KEY` of the commands tests start)."""
SIGNING_KEYS = SigningKeys(current=SIGNING_KEY)
"""Pointers built here are signed with it, and every projector, rebuild, worker and inference
service of the tests verifies with it."""
FILE_A = "a" * 64
FILE_B = "b" * 64
START = datetime(2030, 1, 1, tzinfo=UTC)
METRICS = TrainingMetrics(steps=3, tokens=300, seconds=1.5, tokens_per_second=200.0)


def at(seconds: float) -> datetime:
    """A moment `seconds` after a fixed start."""
    return START + timedelta(seconds=seconds)


_CLOCKS = itertools.count()
"""Numbers the clocks, so two of them never hand out the same event id (the log refuses one)."""


class Clock:
    """Hands out event ids and times: each event gets the next second unless told. Ids sort in
    the order they were handed out, and are unique across clocks."""

    def __init__(self) -> None:
        self.count = 0
        self.serial = next(_CLOCKS)

    def stamp(self, t: float | None) -> tuple[str, datetime]:
        self.count += 1
        return f"e{self.count:04d}.{self.serial}", at(self.count if t is None else t)


TAGS = {"dataset": "tiny", "lr": "5e-4"}
REVIVAL = RevivalPayload(failure_id="e-failed", message="revived by `trainledger dlq replay`")


def run_events(run: str, clock: Clock | None = None) -> dict[str, Callable[..., Event]]:
    """Builders of every run event for `run`, keyed by event type."""
    c = clock or Clock()

    def common(t: float | None) -> dict[str, object]:
        event_id, when = c.stamp(t)
        return {"event_id": event_id, "occurred_at": when, "correlation_id": run}

    return {
        "training.requested": lambda t=None: TrainingRequested(
            **common(t), payload=TrainingSpec(corpus_file_id=FILE_A, name=f"{run} name", tags=TAGS)
        ),
        "training.started": lambda t=None, node="n1": TrainingStarted(
            **common(t), payload=StartedPayload(node_id=node)
        ),
        "training.restarted": lambda t=None: TrainingStarted(
            **common(t), payload=StartedPayload(node_id="n2", attempt=2, resumed_at_step=20)
        ),
        "training.progress": lambda t=None, step=10: TrainingProgressed(
            **common(t),
            payload=ProgressPayload(
                node_id="n1",
                step=step,
                total_steps=20,
                train=[MetricPoint(step=s, loss=4.0 - s / 10) for s in range(1, step + 1)],
                validation=[MetricPoint(step=step, loss=3.5)],
            ),
        ),
        "training.completed": lambda t=None, node="n1": TrainingCompleted(
            **common(t), payload=TrainingCompletedPayload(node_id=node, metrics=METRICS)
        ),
        "training.failed": lambda t=None: TrainingFailed(
            **common(t), payload=FailurePayload(message="out of memory", error_code="oom")
        ),
        "training.revived": lambda t=None: TrainingRevived(**common(t), payload=REVIVAL),
        "training.cancel_requested": lambda t=None, reason="no longer needed": (
            TrainingCancelRequested(**common(t), payload=CancelRequestedPayload(reason=reason))
        ),
        "training.cancelled": lambda t=None: TrainingCancelled(
            **common(t), payload=NodePayload(node_id="n1")
        ),
        "run.deleted": lambda t=None: ArtifactPointerRevoked(
            **common(t),
            payload=PointerRevokedPayload(subject="run", reason="no longer needed", deleted=True),
        ),
        **artifact_events("run", common),
    }


def tokenizer_events(tokenizer: str, clock: Clock | None = None) -> dict[str, Callable[..., Event]]:
    """Builders of every tokenizer event for `tokenizer`, keyed by event type."""
    c = clock or Clock()

    def common(t: float | None) -> dict[str, object]:
        event_id, when = c.stamp(t)
        return {"event_id": event_id, "occurred_at": when, "correlation_id": tokenizer}

    return {
        "tokenizer.requested": lambda t=None: TokenizerRequested(
            **common(t), payload=TokenizerSpec(corpus_file_id=FILE_A)
        ),
        "tokenizer.completed": lambda t=None: TokenizerCompleted(
            **common(t), payload=TokenizerCompletedPayload(node_id="n2", vocab_size=512)
        ),
        "tokenizer.failed": lambda t=None: TokenizerFailed(
            **common(t), payload=FailurePayload(message="corpus too small")
        ),
        "tokenizer.revived": lambda t=None: TokenizerRevived(**common(t), payload=REVIVAL),
        **artifact_events("tokenizer", common),
    }


def artifact_events(
    subject: Subject, common: Callable[[float | None], dict[str, object]]
) -> dict[str, Callable[..., Event]]:
    """Builders of the upload and pointer events of a run or a tokenizer."""
    uploaded = ArtifactUploadedPayload(
        subject=subject, node_id="n1", file_id=FILE_A, size=10, sha256=FILE_A, seconds=0.5
    )
    return {
        "artifact.uploaded": lambda t=None: ArtifactUploaded(**common(t), payload=uploaded),
        "artifact.upload_failed": lambda t=None: ArtifactUploadFailed(
            **common(t),
            payload=UploadFailedPayload(subject=subject, node_id="n1", reason="disk full"),
        ),
        "artifact.upload_deferred": lambda t=None: ArtifactUploadDeferred(
            **common(t),
            payload=UploadDeferredPayload(
                subject=subject,
                node_id="n1",
                error="TransientError: 503",
                attempt=2,
                next_attempt_at=at(100),
                deadline=at(3600),
            ),
        ),
        "artifact.upload_requested": lambda t=None: ArtifactUploadRequested(
            **common(t), payload=UploadRequestedPayload(subject=subject)
        ),
        "artifact.pointer_set": lambda t=None, file_id=FILE_A, size=10: signed_pointer(
            subject, common(t), file_id, size
        ),
        "artifact.pointer_revoked": lambda t=None: ArtifactPointerRevoked(
            **common(t), payload=PointerRevokedPayload(subject=subject, reason="bad weights")
        ),
    }


def signed_pointer(
    subject: Subject,
    envelope: Mapping[str, object],
    file_id: str,
    size: int | None = 10,
    keys: SigningKeys = SIGNING_KEYS,
) -> ArtifactPointerSet:
    """A pointer set with `envelope`'s fields, signed with `keys` as a worker signs it."""
    subject_id = str(envelope["correlation_id"])
    fields = SignedFields(subject=subject, subject_id=subject_id, file_id=file_id, size=size)
    payload = PointerSetPayload(
        subject=subject,
        pointer=ArtifactPointer(file_id=file_id),
        size=size,
        signature=keys.sign(fields),
    )
    return ArtifactPointerSet(**envelope, payload=payload)


OTHER_KEYS = SigningKeys(current="someone-elses-key-" + "9" * 32)
"""A key the deployment does not hold."""
Forgery = Literal["unsigned", "other key", "signature of other fields"]
FORGERIES: dict[Forgery, str] = {
    "unsigned": "POINTER_UNSIGNED",
    "other key": "POINTER_KEY_UNKNOWN",
    "signature of other fields": "POINTER_SIGNATURE_INVALID",
}
"""How a writer without the key can forge a pointer, and the code each is refused with."""


def forged_pointer(
    kind: Forgery, subject: Subject, envelope: Mapping[str, object], file_id: str
) -> ArtifactPointerSet:
    """A pointer to `file_id` with `envelope`'s fields that the deployment's workers did not
    sign: none, another key's, or the signature of a genuine pointer to another file."""
    if kind == "unsigned":
        payload = PointerSetPayload(subject=subject, pointer=ArtifactPointer(file_id=file_id))
        return ArtifactPointerSet(**envelope, payload=payload)
    if kind == "other key":
        return signed_pointer(subject, envelope, file_id, keys=OTHER_KEYS)
    genuine = signed_pointer(subject, envelope, FILE_B if file_id == FILE_A else FILE_A)
    moved = genuine.payload.model_copy(update={"pointer": ArtifactPointer(file_id=file_id)})
    return genuine.model_copy(update={"payload": moved})


def alias_events(model: str, clock: Clock | None = None) -> dict[str, Callable[..., Event]]:
    """Builders of `model`'s alias events (`prod` pointed at r0 or r1, or removed)."""
    c = clock or Clock()

    def common(t: float | None) -> dict[str, object]:
        event_id, when = c.stamp(t)
        return {"event_id": event_id, "occurred_at": when, "correlation_id": model}

    return {
        "model.alias_set": lambda t=None, run="r0", alias="prod": ModelAliasSet(
            **common(t), payload=AliasSetPayload(model=model, alias=alias, run_id=run)
        ),
        "model.alias_set.r1": lambda t=None: ModelAliasSet(
            **common(t), payload=AliasSetPayload(model=model, alias="prod", run_id="r1")
        ),
        "model.alias_removed": lambda t=None, alias="prod": ModelAliasRemoved(
            **common(t), payload=AliasRemovedPayload(model=model, alias=alias)
        ),
    }


def completed_run(run: str, clock: Clock | None = None) -> list[Event]:
    """The five events of a successful run."""
    make = run_events(run, clock)
    return [
        make[kind]()
        for kind in (
            "training.requested",
            "training.started",
            "training.completed",
            "artifact.uploaded",
            "artifact.pointer_set",
        )
    ]
