"""The write side: each command becomes one event appended to `stream:training`.

Idempotency: an `Idempotency-Key` is scoped to its command (and, for a cancel, its run), then
handed to `EventLog.append`, which records the first entry under it atomically with the
append. A retry is answered from that first entry, before any state check, so it gets the
first answer even if the run has moved on since. The key also keeps the fingerprint of the
request body (`events.fingerprint`): the same key with a different body is 422
`IDEMPOTENCY_KEY_REUSED`, not the first answer, which would silently drop the new request.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Annotated

from fastapi import APIRouter, Depends, Header, Path
from pydantic import BaseModel, ConfigDict

from events import (
    ArtifactPointerRevoked,
    ArtifactUploadRequested,
    CancelRequestedPayload,
    DecodeError,
    Event,
    EventLog,
    IdempotencyKeyReused,
    PointerRevokedPayload,
    Subject,
    TokenizerRequested,
    TokenizerSpec,
    TrainingCancelRequested,
    TrainingRequested,
    TrainingSpec,
    UploadRequestedPayload,
    fingerprint,
    names,
)
from httpservice import AUTH_ERRORS, ApiKey, ErrorBody, api_key_required
from producers.config import SpecLimits
from producers.errors import (
    ConflictError,
    IdempotencyKeyReusedError,
    NotFoundError,
)
from producers.limits import check
from producers.services import Services
from projections import Kind, MemoryModel, project

ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$"
"""Run and tokenizer ids in paths: the `RunId` rule, so an id can never reach another key."""

FINISHED = frozenset({"trained", "uploading", "completed", "failed", "cancelled", "deleted"})
"""Statuses after which there is no training left to cancel."""
DELETABLE = frozenset({"completed", "failed", "cancelled", "deleted"})
"""Statuses after which nothing changes a run but its deletion."""

IdempotencyKey = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        min_length=1,
        max_length=200,
        pattern=r"^[\x21-\x7e]+$",
        description=(
            "Retries with the same key and body get the first answer and append nothing; "
            "the same key with a different body is 422 IDEMPOTENCY_KEY_REUSED."
        ),
    ),
]
RunPath = Annotated[str, Path(pattern=ID_PATTERN)]


class _Accepted(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    entry_id: str
    """The `stream:training` entry: pass it as `min_position` to read your write."""


class RunAccepted(_Accepted):
    """A training run was requested."""

    run_id: str


class ReproductionAccepted(RunAccepted):
    """A run was requested that trains again what `reproduces` was trained from."""

    reproduces: str


class TokenizerAccepted(_Accepted):
    """A tokenizer was requested."""

    tokenizer_id: str


class CancelAccepted(_Accepted):
    """A cancellation was requested."""

    run_id: str


class DeleteAccepted(_Accepted):
    """A run's deletion was recorded (its Data Bank file goes once nothing else points to it)."""

    run_id: str


class RunUploadAccepted(_Accepted):
    """The upload of a run's artifact was requested again."""

    run_id: str


class TokenizerUploadAccepted(_Accepted):
    """The upload of a tokenizer's artifact was requested again."""

    tokenizer_id: str


class Commands:
    """Turn commands into events (synchronous: FastAPI runs these in its threadpool)."""

    def __init__(self, log: EventLog, limits: SpecLimits | None = None) -> None:
        self.log = log
        self.limits = limits or SpecLimits()

    def append(
        self, event: Event, key: str | None, body: BaseModel | None = None
    ) -> tuple[str, str]:
        """Append; returns (correlation id, entry id) of the first entry under `key`, which
        must have come with the same `body` (422 otherwise; without a body, not compared)."""
        try:
            appended = self.log.append(event, idempotency_key=key, fingerprint=_fingerprint(body))
        except IdempotencyKeyReused as error:
            raise _reused() from error
        if not appended.duplicate:
            return event.correlation_id, appended.entry_id
        return self._first(appended.stream, appended.entry_id)

    def _first(self, stream: str, entry_id: str) -> tuple[str, str]:
        first = self.log.read_range(stream, entry_id, entry_id)[0].event()
        return first.correlation_id, entry_id

    def _seen(self, key: str | None, body: BaseModel | None = None) -> tuple[str, str] | None:
        """The first answer under `key`, if a command with it was appended before (with the
        same `body`: 422 otherwise)."""
        if key is None:
            return None
        try:
            entry_id = self.log.first_entry(key, _fingerprint(body))
        except IdempotencyKeyReused as error:
            raise _reused() from error
        return None if entry_id is None else self._first(names.TRAINING_STREAM, entry_id)

    def train(self, spec: TrainingSpec, key: str | None) -> RunAccepted:
        """Request a training run under a fresh run id (422 beyond the API's bounds)."""
        check(spec, self.limits)
        event = TrainingRequested(correlation_id=uuid.uuid4().hex, payload=spec)
        run_id, entry_id = self.append(event, scoped("runs.train", key), spec)
        return RunAccepted(run_id=run_id, entry_id=entry_id)

    def reproduce(self, run_id: str, key: str | None) -> ReproductionAccepted:
        """Request a new run from the spec `run_id` was requested with: 404 for an unknown
        run, 409 unless it completed.

        The spec is the original's `training.requested` as the log has it, so the corpus file
        id, the model, the training parameters (seed and device included) are the same, and
        so is the tokenizer: the one reused by id, or one trained anew with the same
        parameters (training a tokenizer is deterministic). The new request carries
        `reproduces`; its worker compares the weights with the original's (see
        `consumers.reproduction`)."""
        under = scoped(f"runs.reproduce:{run_id}", key)
        seen = self._seen(under)
        if seen is None:
            events = self.history(run_id)
            fields = _fold(events, "run", run_id)
            if fields is None:
                raise NotFoundError(f"no run {run_id}")
            if fields["status"] != "completed":
                raise ConflictError(
                    f"run {run_id} is {fields['status']}: only a completed run can be reproduced"
                )
            original = next(e for e in events if isinstance(e, TrainingRequested))
            event = TrainingRequested(
                correlation_id=uuid.uuid4().hex, payload=original.payload, reproduces=run_id
            )
            seen = self.append(event, under)
        return ReproductionAccepted(run_id=seen[0], entry_id=seen[1], reproduces=run_id)

    def train_tokenizer(self, spec: TokenizerSpec, key: str | None) -> TokenizerAccepted:
        """Request a tokenizer under a fresh tokenizer id."""
        event = TokenizerRequested(correlation_id=uuid.uuid4().hex, payload=spec)
        tokenizer_id, entry_id = self.append(event, scoped("tokenizers.train", key), spec)
        return TokenizerAccepted(tokenizer_id=tokenizer_id, entry_id=entry_id)

    def cancel(
        self, run_id: str, request: CancelRequestedPayload, key: str | None
    ) -> CancelAccepted:
        """Request that a run stop: 404 for an unknown run, 409 once training is over."""
        under = scoped(f"runs.cancel:{run_id}", key)
        seen = self._seen(under, request)
        if seen is None:
            status = self.status(run_id)
            if status is None:
                raise NotFoundError(f"no run {run_id}")
            if status in FINISHED:
                raise ConflictError(f"run {run_id} is already {status}")
            event = TrainingCancelRequested(correlation_id=run_id, payload=request)
            seen = self.append(event, under, request)
        return CancelAccepted(run_id=seen[0], entry_id=seen[1])

    def delete(self, run_id: str) -> DeleteAccepted:
        """Delete a finished run: 404 for an unknown run, 409 while it may still change.

        One deletion per run whatever the client sends (the idempotency key is the run's), so
        a repeated DELETE answers the first one's entry."""
        key = f"runs.delete:{run_id}"
        seen = self._seen(key)
        if seen is None:
            status = self.status(run_id)
            if status is None:
                raise NotFoundError(f"no run {run_id}")
            if status not in DELETABLE:
                raise ConflictError(
                    f"run {run_id} is {status}: cancel it, or wait until it ends, to delete it"
                )
            payload = PointerRevokedPayload(
                subject="run", reason="deleted on request", deleted=True
            )
            seen = self.append(ArtifactPointerRevoked(correlation_id=run_id, payload=payload), key)
        return DeleteAccepted(run_id=seen[0], entry_id=seen[1])

    def upload(self, subject: Subject, subject_id: str, key: str | None) -> tuple[str, str]:
        """Request a failed upload again: 404 for an unknown id, 409 when a pointer exists or
        the upload did not fail. Returns (id, entry id)."""
        under = scoped(f"{subject}s.upload:{subject_id}", key)
        seen = self._seen(under)
        if seen is None:
            fields = self.record(subject, subject_id)
            if fields is None:
                raise NotFoundError(f"no {subject} {subject_id}")
            if "file_id" in fields:
                raise ConflictError(f"{subject} {subject_id} already has its artifact")
            if "upload_failure" not in fields or "failure" in fields:
                raise ConflictError(
                    f"{subject} {subject_id} is {fields['status']}: "
                    "only a failed upload can be requested again"
                )
            payload = UploadRequestedPayload(subject=subject)
            seen = self.append(
                ArtifactUploadRequested(correlation_id=subject_id, payload=payload), under
            )
        return seen

    def status(self, run_id: str) -> str | None:
        """A run's status folded from its history in the log: no projector lag, same rules."""
        fields = self.record("run", run_id)
        return None if fields is None else fields["status"]

    def record(self, kind: Kind, subject_id: str) -> dict[str, str] | None:
        """A run's or tokenizer's record folded from its history in the log (None until it
        was requested)."""
        return _fold(self.history(subject_id), kind, subject_id)

    def history(self, subject_id: str) -> list[Event]:
        """The decodable events about `subject_id`, in append order."""
        found: list[Event] = []
        for entry in self.log.read_correlation(subject_id):
            try:
                found.append(entry.event())
            except DecodeError:
                continue
        return found


def _fold(events: list[Event], kind: Kind, subject_id: str) -> dict[str, str] | None:
    """The record `events` make of `subject_id` (None until it was requested)."""
    model = MemoryModel()
    for event in events:
        model.apply(project(event))
    record = model.get(kind, subject_id)
    if record is None or "requested" not in record.slots:
        return None
    return record.fields(kind)


def scoped(command: str, key: str | None) -> str | None:
    """The idempotency key of `command` under a client's key (None: no key given)."""
    return None if key is None else f"{command}:{key}"


def _fingerprint(body: BaseModel | None) -> str | None:
    return None if body is None else fingerprint(body)


def _reused() -> IdempotencyKeyReusedError:
    return IdempotencyKeyReusedError(
        "this Idempotency-Key was first used with a different request body; "
        "send a new key for a new request"
    )


WRITE_ERRORS: dict[int | str, dict[str, object]] = {
    **AUTH_ERRORS,
    422: {
        "model": ErrorBody,
        "description": "invalid request, or an Idempotency-Key reused with another body",
    },
}


def authorizer(services: Services) -> Callable[[ApiKey], None]:
    """The dependency of every write: `X-API-Key` must match when the API has one."""
    return api_key_required(services.config.api_key, "this API")


def router(services: Services) -> APIRouter:
    """The write endpoints; they require `X-API-Key` when the API has one configured."""
    api = APIRouter(dependencies=[Depends(authorizer(services))], responses=WRITE_ERRORS)

    def commands() -> Commands:
        return Commands(services.log, services.config.limits)

    @api.post("/runs/train", status_code=202, tags=["commands"])
    def train(spec: TrainingSpec, idempotency_key: IdempotencyKey = None) -> RunAccepted:
        """Request a training run; the corpus must already be in Data Bank."""
        return commands().train(spec, idempotency_key)

    @api.post("/tokenizers/train", status_code=202, tags=["commands"])
    def train_tokenizer(
        spec: TokenizerSpec, idempotency_key: IdempotencyKey = None
    ) -> TokenizerAccepted:
        """Request a tokenizer trained on its own."""
        return commands().train_tokenizer(spec, idempotency_key)

    @api.post(
        "/runs/{run_id}/cancel",
        status_code=202,
        tags=["commands"],
        responses={
            404: {"model": ErrorBody, "description": "no such run"},
            409: {"model": ErrorBody, "description": "training is already over"},
        },
    )
    def cancel(
        run_id: RunPath,
        request: CancelRequestedPayload | None = None,
        idempotency_key: IdempotencyKey = None,
    ) -> CancelAccepted:
        """Ask a run to stop between steps."""
        return commands().cancel(run_id, request or CancelRequestedPayload(), idempotency_key)

    @api.post(
        "/runs/{run_id}/reproduce",
        status_code=202,
        tags=["commands"],
        responses={
            404: {"model": ErrorBody, "description": "no such run"},
            409: {"model": ErrorBody, "description": "the run has not completed"},
        },
    )
    def reproduce(run_id: RunPath, idempotency_key: IdempotencyKey = None) -> ReproductionAccepted:
        """Train a new run from this run's recorded spec, corpus and tokenizer; once trained,
        its record (`GET /runs/{new_run_id}`, `reproduction`) says whether the weights are
        byte-identical (both on CPU) and which inputs differed."""
        return commands().reproduce(run_id, idempotency_key)

    @api.post(
        "/runs/{run_id}/upload",
        status_code=202,
        tags=["commands"],
        responses={
            404: {"model": ErrorBody, "description": "no such run"},
            409: {"model": ErrorBody, "description": "a pointer exists, or no upload failed"},
        },
    )
    def upload_run(run_id: RunPath, idempotency_key: IdempotencyKey = None) -> RunUploadAccepted:
        """Try a failed upload again, on the node that holds the run's files."""
        run, entry_id = commands().upload("run", run_id, idempotency_key)
        return RunUploadAccepted(run_id=run, entry_id=entry_id)

    @api.post(
        "/tokenizers/{tokenizer_id}/upload",
        status_code=202,
        tags=["commands"],
        responses={
            404: {"model": ErrorBody, "description": "no such tokenizer"},
            409: {"model": ErrorBody, "description": "a pointer exists, or no upload failed"},
        },
    )
    def upload_tokenizer(
        tokenizer_id: RunPath, idempotency_key: IdempotencyKey = None
    ) -> TokenizerUploadAccepted:
        """Try a failed upload again, on the node that holds the tokenizer's files."""
        tokenizer, entry_id = commands().upload("tokenizer", tokenizer_id, idempotency_key)
        return TokenizerUploadAccepted(tokenizer_id=tokenizer, entry_id=entry_id)

    @api.delete(
        "/runs/{run_id}",
        status_code=202,
        tags=["commands"],
        responses={
            404: {"model": ErrorBody, "description": "no such run"},
            409: {"model": ErrorBody, "description": "the run has not ended"},
        },
    )
    def delete_run(run_id: RunPath) -> DeleteAccepted:
        """Delete a finished run: it leaves the lists, its pointer goes, and its Data Bank file
        goes once no other run or tokenizer points to it; its history stays in the log."""
        return commands().delete(run_id)

    return api
