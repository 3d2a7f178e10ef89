"""Typed read-model queries: the only way the API and the inference service read projections.

`ReadModel` (sync, redis.Redis) and `AsyncReadModel` (redis.asyncio) ask the same questions;
both parse replies with the functions below, so they cannot disagree. An artifact lookup is
one GET: readers on the hot path pay one round trip. `applied` tells a writer when the
projector has caught up with its append (read-your-writes by position).

A run's hash also holds its loss curves (`curves`, up to a few KiB): status reads ask for the
named fields (`RUN_FIELDS`, HMGET) and leave them out, so a page of runs stays small; only
`run_metrics` reads them. Filtered run lists walk the index newest first, a chunk of members
and their (status, name, tags) per round trip, and match in Python: the count of matches is
exact, and the engine never runs a long script for a listing. Tokenizers are few and have no
index: their list scans their status keys.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from fnmatch import fnmatchcase
from typing import Literal

import redis
import redis.asyncio
from pydantic import BaseModel, ConfigDict, TypeAdapter, ValidationError

from events import (
    POINTER_SIGNATURE_INVALID,
    ArtifactPointer,
    PointerRefused,
    PointerSignature,
    Reproduction,
    SignedFields,
    SigningKeys,
    Tags,
    TrainingMetrics,
    names,
    text,
    text_map,
)
from projections.batching import ReadBatcher
from projections.projection import GROUPS
from projections.store import status_key

Status = Literal[
    "queued", "running", "trained", "uploading", "completed", "failed", "cancelled", "deleted"
]
"""Where a run or a tokenizer stands (derived from its facts, see `projections.projection`)."""

POSITION = re.compile(r"[0-9]{1,20}-[0-9]{1,20}")
"""A stream entry id, as writes return them and `min_position` accepts them."""
_LARGEST_PART = 2**64 - 1
"""Both parts of an entry id are unsigned 64-bit numbers; the engine refuses larger ones."""
_CHUNK = 500
"""Index members examined per round trip of a filtered listing."""

RUN_FIELDS: tuple[str, ...] = (
    "status",
    "message",
    "node",
    *(
        name
        for group, values in GROUPS["run"].items()
        for name in (f"{group}_at", *values)
        if name != "curves"
    ),
)
"""The fields of a run's hash a status read asks for: all but the curves."""
_FILTER_FIELDS = ("status", "name", "tags")


class _View(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class RunProgress(_View):
    """Where a running (or finished) training stands, from its latest progress report."""

    step: int
    total_steps: int
    train_loss: float | None = None
    val_loss: float | None = None


class RunStatus(_View):
    """A run's status record."""

    run_id: str
    status: Status
    message: str | None = None
    name: str | None = None
    tags: dict[str, str] = {}
    node: str | None = None
    progress: RunProgress | None = None
    attempt: int | None = None
    """The latest attempt after a restart (None: the first one)."""
    resumed_at_step: int | None = None
    """The checkpoint step the latest attempt resumed from (None: from step 0)."""
    requested_at: datetime | None = None
    started_at: datetime | None = None
    trained_at: datetime | None = None
    uploaded_at: datetime | None = None
    completed_at: datetime | None = None
    failed_at: datetime | None = None
    cancel_requested_at: datetime | None = None
    cancelled_at: datetime | None = None
    deleted_at: datetime | None = None
    metrics: TrainingMetrics | None = None
    artifact: ArtifactPointer | None = None
    artifact_size: int | None = None
    """Bytes of the uploaded archive (from `artifact.uploaded`)."""
    reproduction: Reproduction | None = None
    """For a reproduction: the run it reproduces, and once trained how its weights compare."""


class MetricSeries(_View):
    """One loss curve point."""

    step: int
    loss: float


class RunMetrics(_View):
    """A run's loss curves so far: train loss per step window, validation loss at intervals."""

    run_id: str
    step: int | None = None
    total_steps: int | None = None
    train: list[MetricSeries] = []
    validation: list[MetricSeries] = []


class RunFilter(_View):
    """Which runs a listing shows: a status, a name (shell-style pattern: `exp-*`), and
    tags that must all match."""

    status: Status | None = None
    name: str | None = None
    tags: Tags = {}

    def matches(self, status: str | None, name: str | None, tags: str | None) -> bool:
        """True when a run with these fields (as the hash holds them) passes the filter."""
        if self.status is not None and status != self.status:
            return False
        if self.name is not None and (name is None or not fnmatchcase(name, self.name)):
            return False
        held = _TAGS.validate_json(tags) if tags else {}
        return all(held.get(key) == value for key, value in self.tags.items())

    def __bool__(self) -> bool:
        return self.status is not None or self.name is not None or bool(self.tags)


class AliasView(_View):
    """One alias of a model: the run it serves now, since when."""

    alias: str
    run_id: str
    since: datetime


class ModelView(_View):
    """A model: a name whose aliases point at runs."""

    name: str
    aliases: list[AliasView]


def models(hashes: Sequence[object]) -> list[ModelView]:
    """Models from their alias records (HGETALL replies), by name; only live aliases."""
    by_name: dict[str, list[AliasView]] = {}
    for reply in hashes:
        fields = text_map(reply)
        if "model" not in fields:
            continue
        aliases = by_name.setdefault(fields["model"], [])
        if "run_id" in fields:
            since = datetime.fromisoformat(fields["target_at"])
            aliases.append(AliasView(alias=fields["alias"], run_id=fields["run_id"], since=since))
    return [
        ModelView(name=name, aliases=sorted(found, key=lambda a: a.alias))
        for name, found in sorted(by_name.items())
    ]


def alias_pattern(model: str | None) -> str:
    """SCAN pattern of the alias records of `model` (None: of every model)."""
    return names.alias_status_key(f"{model}@*" if model is not None else "*")


EVERY_RUN = RunFilter()
"""The empty filter: every run."""


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
    artifact_size: int | None = None


class RunPage(_View):
    """One page of runs, newest request first; `next_offset` is None on the last page."""

    items: list[RunStatus]
    total: int
    offset: int
    limit: int
    next_offset: int | None = None


class TokenizerPage(_View):
    """One page of tokenizers, newest request first; `next_offset` is None on the last page."""

    items: list[TokenizerStatus]
    total: int
    offset: int
    limit: int
    next_offset: int | None = None


_TAGS: TypeAdapter[dict[str, str]] = TypeAdapter(dict[str, str])
_CURVES: TypeAdapter[dict[str, list[tuple[int, float]]]] = TypeAdapter(
    dict[str, list[tuple[int, float]]]
)


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


def _int(fields: dict[str, str], name: str) -> int | None:
    value = fields.get(name)
    return int(value) if value is not None else None


def _failed_at(fields: dict[str, str]) -> datetime | None:
    """When it failed: the `failed` slot's time while it holds a failure (a revival withdrew
    it otherwise), else when the upload failed."""
    return _time(fields, "failed_at") if "failure" in fields else _upload_failed_at(fields)


def _upload_failed_at(fields: dict[str, str]) -> datetime | None:
    """When the upload failed: the time of the `upload` slot while it holds a failure."""
    return _time(fields, "upload_at") if "upload_failure" in fields else None


def _pointer(fields: dict[str, str]) -> ArtifactPointer | None:
    file_id = fields.get("file_id")
    return ArtifactPointer(file_id=file_id) if file_id is not None else None


def named(names_: Sequence[str], reply: object) -> dict[str, str]:
    """An HMGET reply as the map of the fields present."""
    values = reply if isinstance(reply, list) else [None] * len(names_)
    return {
        name: text(value) for name, value in zip(names_, values, strict=True) if value is not None
    }


def _progress(fields: dict[str, str]) -> RunProgress | None:
    if "step" not in fields:
        return None
    return RunProgress(
        step=int(fields["step"]),
        total_steps=int(fields["total_steps"]),
        train_loss=float(fields["train_loss"]) if "train_loss" in fields else None,
        val_loss=float(fields["val_loss"]) if "val_loss" in fields else None,
    )


def run_status(run_id: str, reply: object) -> RunStatus | None:
    """A run's status from its HMGET reply of `RUN_FIELDS`; None when there is no record."""
    fields = named(RUN_FIELDS, reply)
    if not fields:
        return None
    metrics = fields.get("metrics")
    tags = fields.get("tags")
    return RunStatus.model_validate(
        {
            "run_id": run_id,
            "status": fields["status"],
            "message": fields.get("message"),
            "name": fields.get("name"),
            "tags": _TAGS.validate_json(tags) if tags else {},
            "node": fields.get("node"),
            "progress": _progress(fields),
            "attempt": _int(fields, "attempt"),
            "resumed_at_step": _int(fields, "resumed_at_step"),
            "requested_at": _time(fields, "requested_at"),
            "started_at": _time(fields, "started_at"),
            "trained_at": _time(fields, "trained_at"),
            "uploaded_at": _time(fields, "uploaded_at"),
            "completed_at": _time(fields, "pointer_at"),
            "failed_at": _failed_at(fields),
            "cancel_requested_at": _time(fields, "cancel_requested_at"),
            "cancelled_at": _time(fields, "cancelled_at"),
            "deleted_at": _time(fields, "deleted_at"),
            "metrics": TrainingMetrics.model_validate_json(metrics) if metrics else None,
            "artifact": _pointer(fields),
            "artifact_size": _int(fields, "size"),
            "reproduction": _reproduction(fields),
        }
    )


def _reproduction(fields: dict[str, str]) -> Reproduction | None:
    """`of` from the request; `identical` and `differences` from the completion, once trained."""
    of = fields.get("reproduces")
    if of is None:
        return None
    compared = fields.get("reproduction")
    return Reproduction.model_validate_json(compared) if compared else Reproduction(of=of)


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
            "failed_at": _failed_at(fields),
            "vocab_size": int(vocab_size) if vocab_size is not None else None,
            "artifact": _pointer(fields),
            "artifact_size": _int(fields, "size"),
        }
    )


_METRIC_FIELDS = ("status", "step", "total_steps", "curves")


def run_metrics(run_id: str, reply: object) -> RunMetrics | None:
    """A run's curves from its HMGET reply of `_METRIC_FIELDS`; None when there is no record."""
    fields = named(_METRIC_FIELDS, reply)
    if not fields:
        return None
    curves = _CURVES.validate_json(fields.get("curves", "{}"))
    step, total = fields.get("step"), fields.get("total_steps")
    return RunMetrics(
        run_id=run_id,
        step=int(step) if step is not None else None,
        total_steps=int(total) if total is not None else None,
        train=[MetricSeries(step=s, loss=v) for s, v in curves.get("train", [])],
        validation=[MetricSeries(step=s, loss=v) for s, v in curves.get("validation", [])],
    )


def tokenizer_page(
    ids: Sequence[str], hashes: Sequence[object], offset: int, limit: int
) -> TokenizerPage:
    """A page of tokenizers, newest request first, from every tokenizer's id and hash."""
    found = [
        status
        for tokenizer_id, reply in zip(ids, hashes, strict=True)
        if (status := tokenizer_status(tokenizer_id, reply)) is not None
    ]
    epoch = datetime.min.replace(tzinfo=UTC)
    found.sort(key=lambda t: (t.requested_at or epoch, t.tokenizer_id), reverse=True)
    items = found[offset : offset + limit]
    following = offset + len(items)
    return TokenizerPage(
        items=items,
        total=len(found),
        offset=offset,
        limit=limit,
        next_offset=following if following < len(found) else None,
    )


def artifact(reply: object) -> ArtifactPointer | None:
    """The pointer from a GET of a pointer key."""
    return None if reply is None else ArtifactPointer(file_id=text(reply))


SIGNED_FIELDS = ("pointer_size", "key_id", "signature")
"""The fields of a record's pointer slot its signature check needs besides the file id."""


@dataclass(frozen=True)
class SignedArtifact:
    """A pointer as the read model holds it, with the signature the projector verified."""

    fields: SignedFields
    signature: PointerSignature | None

    def verified(self, keys: SigningKeys) -> ArtifactPointer:
        """The pointer, once its signature verifies under `keys` (else `PointerRefused`):
        anyone who can write the engine can write the read model too."""
        keys.verify(self.fields, self.signature)
        return ArtifactPointer(file_id=self.fields.file_id)


def signed_artifact(run_id: str, pointer: object, record: object) -> SignedArtifact | None:
    """A run's signed pointer from a GET of its pointer key and an HMGET of `SIGNED_FIELDS`
    of its record; `PointerRefused` when what the engine holds is not even well formed."""
    if pointer is None:
        return None
    values = named(SIGNED_FIELDS, record)
    key, mac = values.get("key_id"), values.get("signature")
    try:
        fields = SignedFields(
            subject="run", subject_id=run_id, file_id=text(pointer), size=values.get("pointer_size")
        )
        signature = None if key is None or mac is None else PointerSignature(key_id=key, hmac=mac)
    except ValidationError:
        malformed = f"the artifact pointer of run {run_id!r} in the read model is malformed"
        raise PointerRefused(POINTER_SIGNATURE_INVALID, malformed) from None
    return SignedArtifact(fields, signature)


def matching(members: Sequence[object], replies: Sequence[object], wanted: RunFilter) -> list[str]:
    """The members whose (status, name, tags) reply passes `wanted`."""
    found: list[str] = []
    for member, reply in zip(members, replies, strict=True):
        values = named(_FILTER_FIELDS, reply)
        if wanted.matches(values.get("status"), values.get("name"), values.get("tags")):
            found.append(text(member))
    return found


_TOKENIZER_PREFIX, _TOKENIZER_SUFFIX = names.tokenizer_status_key("\0").split("\0")
TOKENIZER_PATTERN = f"{_TOKENIZER_PREFIX}*{_TOKENIZER_SUFFIX}"


def tokenizer_id(key: object) -> str:
    """The tokenizer id in a status key."""
    name = text(key)
    return name[len(_TOKENIZER_PREFIX) : len(name) - len(_TOKENIZER_SUFFIX)]


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

    def signed_run_artifact(self, run_id: str) -> SignedArtifact | None:
        """A run's pointer with its signature (one atomic round trip), or None while it has
        none; check it with `SignedArtifact.verified`."""
        pipe = self.client.pipeline(transaction=True)
        pipe.get(names.run_artifact_key(run_id))
        pipe.hmget(status_key("run", run_id), SIGNED_FIELDS)
        pointer, record = pipe.execute()
        return signed_artifact(run_id, pointer, record)

    def run_status(self, run_id: str) -> RunStatus | None:
        """A run's status record."""
        return run_status(run_id, self.client.hmget(status_key("run", run_id), RUN_FIELDS))

    def run_metrics(self, run_id: str) -> RunMetrics | None:
        """A run's loss curves."""
        return run_metrics(run_id, self.client.hmget(status_key("run", run_id), _METRIC_FIELDS))

    def tokenizer_status(self, tokenizer_id: str) -> TokenizerStatus | None:
        """A tokenizer's status record."""
        reply = self.client.hgetall(status_key("tokenizer", tokenizer_id))
        return tokenizer_status(tokenizer_id, reply)

    def runs(self, *, offset: int = 0, limit: int = 50, wanted: RunFilter = EVERY_RUN) -> RunPage:
        """Runs, newest request first; only those `wanted` passes."""
        if not wanted:
            members = list(self.client.zrevrange(names.RUN_INDEX, offset, offset + limit - 1))
            return self._page(members, int(self.client.zcard(names.RUN_INDEX)), offset, limit)
        found: list[str] = []
        start = 0
        while chunk := list(self.client.zrevrange(names.RUN_INDEX, start, start + _CHUNK - 1)):
            found += matching(chunk, self._hmget(chunk, _FILTER_FIELDS), wanted)
            start += _CHUNK
        return self._page(found[offset : offset + limit], len(found), offset, limit)

    def _hmget(self, members: Sequence[object], fields: tuple[str, ...]) -> list[object]:
        pipe = self.client.pipeline(transaction=False)
        for member in members:
            pipe.hmget(status_key("run", text(member)), fields)
        return list(pipe.execute())

    def _page(self, members: Sequence[object], total: int, offset: int, limit: int) -> RunPage:
        return page(members, self._hmget(members, RUN_FIELDS), total, offset, limit)

    def alias_run(self, model: str, alias: str) -> str | None:
        """The run `model@alias` serves now; None when there is no such alias."""
        reply = self.client.get(names.alias_run_key(f"{model}@{alias}"))
        return None if reply is None else text(reply)

    def models(self, name: str | None = None) -> list[ModelView]:
        """Every model (or the one named) with its live aliases."""
        keys = list(self.client.scan_iter(match=alias_pattern(name), count=1000))
        pipe = self.client.pipeline(transaction=False)
        for key in keys:
            pipe.hgetall(key)
        return models(pipe.execute())

    def tokenizers(self, *, offset: int = 0, limit: int = 50) -> TokenizerPage:
        """Tokenizers, newest request first."""
        keys = list(self.client.scan_iter(match=TOKENIZER_PATTERN, count=1000))
        pipe = self.client.pipeline(transaction=False)
        for key in keys:
            pipe.hgetall(key)
        return tokenizer_page([tokenizer_id(k) for k in keys], pipe.execute(), offset, limit)

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
        return run_status(run_id, await self.batch.hmget(status_key("run", run_id), RUN_FIELDS))

    async def run_metrics(self, run_id: str) -> RunMetrics | None:
        """A run's loss curves."""
        reply = await self.batch.hmget(status_key("run", run_id), _METRIC_FIELDS)
        return run_metrics(run_id, reply)

    async def tokenizer_status(self, tokenizer_id: str) -> TokenizerStatus | None:
        """A tokenizer's status record."""
        reply = await self.batch.hgetall(status_key("tokenizer", tokenizer_id))
        return tokenizer_status(tokenizer_id, reply)

    async def runs(
        self, *, offset: int = 0, limit: int = 50, wanted: RunFilter = EVERY_RUN
    ) -> RunPage:
        """Runs, newest request first; only those `wanted` passes."""
        index = names.RUN_INDEX
        if not wanted:
            members = list(await self.client.zrevrange(index, offset, offset + limit - 1))
            return await self._page(members, int(await self.client.zcard(index)), offset, limit)
        found: list[str] = []
        start = 0
        while chunk := list(await self.client.zrevrange(index, start, start + _CHUNK - 1)):
            found += matching(chunk, await self._hmget(chunk, _FILTER_FIELDS), wanted)
            start += _CHUNK
        return await self._page(found[offset : offset + limit], len(found), offset, limit)

    async def _hmget(self, members: Sequence[object], fields: tuple[str, ...]) -> list[object]:
        pipe = self.client.pipeline(transaction=False)
        for member in members:
            pipe.hmget(status_key("run", text(member)), fields)
        return list(await pipe.execute())

    async def _page(
        self, members: Sequence[object], total: int, offset: int, limit: int
    ) -> RunPage:
        return page(members, await self._hmget(members, RUN_FIELDS), total, offset, limit)

    async def models(self, name: str | None = None) -> list[ModelView]:
        """Every model (or the one named) with its live aliases."""
        pattern = alias_pattern(name)
        keys = [key async for key in self.client.scan_iter(match=pattern, count=1000)]
        pipe = self.client.pipeline(transaction=False)
        for key in keys:
            pipe.hgetall(key)
        return models(await pipe.execute())

    async def tokenizers(self, *, offset: int = 0, limit: int = 50) -> TokenizerPage:
        """Tokenizers, newest request first."""
        keys = [key async for key in self.client.scan_iter(match=TOKENIZER_PATTERN, count=1000)]
        pipe = self.client.pipeline(transaction=False)
        for key in keys:
            pipe.hgetall(key)
        replies = await pipe.execute()
        return tokenizer_page([tokenizer_id(k) for k in keys], replies, offset, limit)

    async def applied(self, entry_id: str) -> bool:
        """True once the projector applied the `stream:training` entry `entry_id`."""
        if not passed(await self.batch.get(_CHECKPOINT), entry_id):
            return False
        held = await self.client.xpending_range(
            names.TRAINING_STREAM, names.PROJECTOR_GROUP, entry_id, entry_id, 1
        )
        return not held
