"""Typed read-model queries: the only way the API and the inference service read projections.

`ReadModel` (sync, redis.Redis) and `AsyncReadModel` (redis.asyncio) ask the same questions;
both parse replies with the functions below, so they cannot disagree. An artifact lookup is
one GET: readers on the hot path pay one round trip. `applied` tells a writer when the
projector has caught up with its append (read-your-writes by position).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import datetime
from typing import Literal

import redis
import redis.asyncio
from pydantic import BaseModel, ConfigDict

from events import ArtifactPointer, TrainingMetrics, names, text, text_map
from projections.batching import ReadBatcher
from projections.store import status_key

Status = Literal["queued", "running", "trained", "uploading", "completed", "failed", "cancelled"]
"""Where a run or a tokenizer stands (derived from its facts, see `projections.projection`)."""

POSITION = re.compile(r"[0-9]{1,20}-[0-9]{1,20}")
"""A stream entry id, as writes return them and `min_position` accepts them."""
_LARGEST_PART = 2**64 - 1
"""Both parts of an entry id are unsigned 64-bit numbers; the engine refuses larger ones."""


class _View(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class RunStatus(_View):
    """A run's status record."""

    run_id: str
    status: Status
    message: str | None = None
    node: str | None = None
    requested_at: datetime | None = None
    started_at: datetime | None = None
    trained_at: datetime | None = None
    uploaded_at: datetime | None = None
    completed_at: datetime | None = None
    failed_at: datetime | None = None
    cancel_requested_at: datetime | None = None
    cancelled_at: datetime | None = None
    metrics: TrainingMetrics | None = None
    artifact: ArtifactPointer | None = None


class TokenizerStatus(_View):
    """A tokenizer's status record."""

    tokenizer_id: str
    status: Status
    message: str | None = None
    node: str | None = None
    requested_at: datetime | None = None
    trained_at: datetime | None = None
    uploaded_at: datetime | None = None
    completed_at: datetime | None = None
    failed_at: datetime | None = None
    vocab_size: int | None = None
    artifact: ArtifactPointer | None = None


class RunPage(_View):
    """One page of runs, newest request first; `next_offset` is None on the last page."""

    items: list[RunStatus]
    total: int
    offset: int
    limit: int
    next_offset: int | None = None


def position(entry_id: str) -> tuple[int, int]:
    """An entry id as a comparable pair; `ValueError` for anything that is not one."""
    if not POSITION.fullmatch(entry_id):
        raise ValueError(f"not a stream position: {entry_id!r}")
    milliseconds, sequence = (int(part) for part in entry_id.split("-"))
    if max(milliseconds, sequence) > _LARGEST_PART:
        raise ValueError(f"not a stream position: {entry_id!r}")
    return milliseconds, sequence


def _time(fields: dict[str, str], name: str) -> datetime | None:
    value = fields.get(name)
    return datetime.fromisoformat(value) if value is not None else None


def _upload_failed_at(fields: dict[str, str]) -> datetime | None:
    """When the upload failed: the time of the `upload` slot while it holds a failure."""
    return _time(fields, "upload_at") if "upload_failure" in fields else None


def _pointer(fields: dict[str, str]) -> ArtifactPointer | None:
    file_id = fields.get("file_id")
    return ArtifactPointer(file_id=file_id) if file_id is not None else None


def run_status(run_id: str, reply: object) -> RunStatus | None:
    """A run's status from its hash reply; None when there is no record."""
    fields = text_map(reply)
    if not fields:
        return None
    metrics = fields.get("metrics")
    return RunStatus.model_validate(
        {
            "run_id": run_id,
            "status": fields["status"],
            "message": fields.get("message"),
            "node": fields.get("node"),
            "requested_at": _time(fields, "requested_at"),
            "started_at": _time(fields, "started_at"),
            "trained_at": _time(fields, "trained_at"),
            "uploaded_at": _time(fields, "uploaded_at"),
            "completed_at": _time(fields, "pointer_at"),
            "failed_at": _time(fields, "failed_at") or _upload_failed_at(fields),
            "cancel_requested_at": _time(fields, "cancel_requested_at"),
            "cancelled_at": _time(fields, "cancelled_at"),
            "metrics": TrainingMetrics.model_validate_json(metrics) if metrics else None,
            "artifact": _pointer(fields),
        }
    )


def tokenizer_status(tokenizer_id: str, reply: object) -> TokenizerStatus | None:
    """A tokenizer's status from its hash reply; None when there is no record."""
    fields = text_map(reply)
    if not fields:
        return None
    vocab_size = fields.get("vocab_size")
    return TokenizerStatus.model_validate(
        {
            "tokenizer_id": tokenizer_id,
            "status": fields["status"],
            "message": fields.get("message"),
            "node": fields.get("node"),
            "requested_at": _time(fields, "requested_at"),
            "trained_at": _time(fields, "trained_at"),
            "uploaded_at": _time(fields, "uploaded_at"),
            "completed_at": _time(fields, "pointer_at"),
            "failed_at": _time(fields, "failed_at") or _upload_failed_at(fields),
            "vocab_size": int(vocab_size) if vocab_size is not None else None,
            "artifact": _pointer(fields),
        }
    )


def artifact(reply: object) -> ArtifactPointer | None:
    """The pointer from a GET of a pointer key."""
    return None if reply is None else ArtifactPointer(file_id=text(reply))


def page(
    members: Sequence[object], hashes: Sequence[object], total: int, offset: int, limit: int
) -> RunPage:
    """A page from the index members and their hashes (a member without a record is skipped)."""
    items = [
        status
        for member, reply in zip(members, hashes, strict=True)
        if (status := run_status(text(member), reply)) is not None
    ]
    following = offset + len(members)
    return RunPage(
        items=items,
        total=total,
        offset=offset,
        limit=limit,
        next_offset=following if following < total else None,
    )


def passed(checkpoint: object, entry_id: str) -> bool:
    """True when a checkpoint reply is at or after `entry_id`."""
    return checkpoint is not None and position(text(checkpoint)) >= position(entry_id)


_CHECKPOINT = names.checkpoint_key(names.PROJECTOR_GROUP, names.TRAINING_STREAM)


class ReadModel:
    """Read-model queries over a synchronous client (workers, the inference service)."""

    def __init__(self, client: redis.Redis) -> None:
        self.client = client

    def run_artifact(self, run_id: str) -> ArtifactPointer | None:
        """The pointer to a run's artifact, or None while it has none."""
        return artifact(self.client.get(names.run_artifact_key(run_id)))

    def tokenizer_artifact(self, tokenizer_id: str) -> ArtifactPointer | None:
        """The pointer to a tokenizer's artifact, or None while it has none."""
        return artifact(self.client.get(names.tokenizer_artifact_key(tokenizer_id)))

    def run_status(self, run_id: str) -> RunStatus | None:
        """A run's status record."""
        return run_status(run_id, self.client.hgetall(status_key("run", run_id)))

    def tokenizer_status(self, tokenizer_id: str) -> TokenizerStatus | None:
        """A tokenizer's status record."""
        reply = self.client.hgetall(status_key("tokenizer", tokenizer_id))
        return tokenizer_status(tokenizer_id, reply)

    def runs(self, *, offset: int = 0, limit: int = 50) -> RunPage:
        """Runs, newest request first."""
        members = list(self.client.zrevrange(names.RUN_INDEX, offset, offset + limit - 1))
        total = int(self.client.zcard(names.RUN_INDEX))
        pipe = self.client.pipeline(transaction=False)
        for member in members:
            pipe.hgetall(status_key("run", text(member)))
        return page(members, pipe.execute(), total, offset, limit)

    def applied(self, entry_id: str) -> bool:
        """True once the projector applied the `stream:training` entry `entry_id`."""
        if not passed(self.client.get(_CHECKPOINT), entry_id):
            return False
        held = self.client.xpending_range(
            names.TRAINING_STREAM, names.PROJECTOR_GROUP, entry_id, entry_id, 1
        )
        return not held


class AsyncReadModel:
    """The same queries for asyncio (the API: no threadpool hop per request).

    Single-key reads (pointers, status records, the checkpoint) go through a `ReadBatcher`,
    so the reads of concurrent requests share round trips.
    """

    def __init__(self, client: redis.asyncio.Redis) -> None:
        self.client = client
        self.batch = ReadBatcher(client)

    async def run_artifact(self, run_id: str) -> ArtifactPointer | None:
        """The pointer to a run's artifact, or None while it has none (one GET)."""
        return artifact(await self.batch.get(names.run_artifact_key(run_id)))

    async def tokenizer_artifact(self, tokenizer_id: str) -> ArtifactPointer | None:
        """The pointer to a tokenizer's artifact, or None while it has none (one GET)."""
        return artifact(await self.batch.get(names.tokenizer_artifact_key(tokenizer_id)))

    async def run_status(self, run_id: str) -> RunStatus | None:
        """A run's status record."""
        return run_status(run_id, await self.batch.hgetall(status_key("run", run_id)))

    async def tokenizer_status(self, tokenizer_id: str) -> TokenizerStatus | None:
        """A tokenizer's status record."""
        reply = await self.batch.hgetall(status_key("tokenizer", tokenizer_id))
        return tokenizer_status(tokenizer_id, reply)

    async def runs(self, *, offset: int = 0, limit: int = 50) -> RunPage:
        """Runs, newest request first."""
        members = list(await self.client.zrevrange(names.RUN_INDEX, offset, offset + limit - 1))
        total = int(await self.client.zcard(names.RUN_INDEX))
        pipe = self.client.pipeline(transaction=False)
        for member in members:
            pipe.hgetall(status_key("run", text(member)))
        return page(members, await pipe.execute(), total, offset, limit)

    async def applied(self, entry_id: str) -> bool:
        """True once the projector applied the `stream:training` entry `entry_id`."""
        if not passed(await self.batch.get(_CHECKPOINT), entry_id):
            return False
        held = await self.client.xpending_range(
            names.TRAINING_STREAM, names.PROJECTOR_GROUP, entry_id, entry_id, 1
        )
        return not held
