"""The read side: read-model queries over HTTP, with read-your-writes, and the run's history.

Read-your-writes: GETs on the read model accept `min_position`, an entry id a write returned
(of `stream:training`, where every command lands). The request first checks the id exists
in that stream (422 otherwise, instead of waiting for a position that will never come), then
waits until the projector has applied that entry: its checkpoint is at or past it and the
entry is no longer pending in group `projector` (a high checkpoint alone is not proof, since
an older entry can still be waiting for a reclaim). Past the bound it answers 504
`READ_MODEL_BEHIND`, never a stale read the caller asked not to get.

Responses are pre-serialized (`model_dump_json` into a `Response`): the hot artifact lookup
is one GET and no response-model validation.
"""

from __future__ import annotations

import asyncio
import re
import time
from typing import Annotated

from fastapi import APIRouter, Path, Query, Request, Response
from pydantic import BaseModel, ConfigDict, ValidationError

from events import ArtifactPointer, DecodeError, Event, LogEntry, names, text
from httpservice import ErrorBody, FieldError
from producers.commands import ID_PATTERN, RunPath
from producers.errors import (
    InvalidRequestError,
    NotFoundError,
    ParameterError,
    ReadModelBehindError,
)
from producers.services import Services
from projections import (
    RunFilter,
    RunMetrics,
    RunPage,
    RunStatus,
    Status,
    TokenizerPage,
    TokenizerStatus,
    position,
)

POSITION_PATTERN = r"^[0-9]{1,20}-[0-9]{1,20}$"
MinPosition = Annotated[
    str | None,
    Query(
        pattern=POSITION_PATTERN,
        description="An entry id a write returned: wait until the read model includes it.",
    ),
]
TokenizerPath = Annotated[str, Path(pattern=ID_PATTERN)]
Offset = Annotated[int, Query(ge=0, le=1_000_000)]
Limit = Annotated[int, Query(ge=1, le=200)]


def run_filter(status: Status | None, name: str | None, tags: list[str]) -> RunFilter:
    """The filter of a run listing; 422 for a tag that is not `key=value`."""
    pairs: dict[str, str] = {}
    for tag in tags:
        key, equals, value = tag.partition("=")
        if not equals:
            raise ParameterError([FieldError(field="query.tag", message="expected key=value")])
        pairs[key] = value
    try:
        return RunFilter(status=status, name=name, tags=pairs)
    except ValidationError as error:
        message = "; ".join(str(e["msg"]) for e in error.errors())
        raise ParameterError([FieldError(field="query.tag", message=message)]) from None


class HistoryEntry(BaseModel):
    """One entry of a run's history: the event, or why it could not be decoded."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    stream: str
    entry_id: str
    event: Event | None = None
    error: str | None = None


class History(BaseModel):
    """Every event about one run, across streams, in append order."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    run_id: str
    entries: list[HistoryEntry]


def _json(model: BaseModel) -> Response:
    return Response(model.model_dump_json(), media_type="application/json")


_NOT_FOUND: dict[int | str, dict[str, object]] = {
    404: {"model": ErrorBody, "description": "not found (yet)"}
}
_WAITING: dict[int | str, dict[str, object]] = {
    422: {"model": ErrorBody, "description": "invalid request or unknown position"},
    504: {"model": ErrorBody, "description": "the projector did not reach min_position"},
}


class Freshness:
    """Waits, within the configured bound, for the projector to pass a position."""

    def __init__(self, services: Services) -> None:
        self.services = services

    async def wait(self, min_position: str | None) -> None:
        """Return once the read model includes `min_position` (None: at once)."""
        if min_position is None:
            return
        last = await self.services.aio.xrevrange(names.TRAINING_STREAM, count=1)
        try:
            wanted = position(min_position)
        except ValueError as error:
            raise InvalidRequestError(str(error)) from error
        if not last or wanted > position(text(last[0][0])):
            raise InvalidRequestError(
                f"min_position {min_position} is not an entry of {names.TRAINING_STREAM}"
            )
        config = self.services.config
        deadline = time.monotonic() + config.read_your_writes_timeout_s
        while not await self.services.reads.applied(min_position):
            if time.monotonic() >= deadline:
                raise ReadModelBehindError(
                    f"the projector has not reached {min_position} within "
                    f"{config.read_your_writes_timeout_s} s; retry later"
                )
            await asyncio.sleep(config.read_your_writes_poll_s)


_ID = re.compile(ID_PATTERN)
_POSITION = re.compile(POSITION_PATTERN)


def _hot_parameters(name: str) -> dict[str, object]:
    """The OpenAPI parameters of an artifact lookup, declared by hand (see `_hot_arguments`)."""
    return {
        "parameters": [
            {
                "name": name,
                "in": "path",
                "required": True,
                "schema": {"type": "string", "pattern": ID_PATTERN},
            },
            {
                "name": "min_position",
                "in": "query",
                "required": False,
                "description": "An entry id a write returned: wait until the read model has it.",
                "schema": {"type": "string", "pattern": POSITION_PATTERN},
            },
        ]
    }


def _hot_arguments(request: Request, name: str) -> tuple[str, str | None]:
    """The id and `min_position` of an artifact lookup, validated by hand.

    The artifact lookups are the hot path (the inference service resolves pointers there),
    and FastAPI's parameter machinery is a noticeable share of a request that does so little
    (`bench/read_api.py` measures the endpoint against a bare one), so these two endpoints
    parse their two parameters with the same patterns.
    """
    subject = str(request.path_params[name])
    position = request.query_params.get("min_position") if request.scope["query_string"] else None
    errors: list[FieldError] = []
    if not _ID.fullmatch(subject):
        errors.append(_mismatch(f"path.{name}", ID_PATTERN))
    if position is not None and not _POSITION.fullmatch(position):
        errors.append(_mismatch("query.min_position", POSITION_PATTERN))
    if errors:
        raise ParameterError(errors)
    return subject, position


def _mismatch(field: str, pattern: str) -> FieldError:
    """FastAPI's words for a pattern mismatch, so hand-checked parameters read the same."""
    return FieldError(field=field, message=f"String should match pattern '{pattern}'")


def _history_entry(entry: LogEntry) -> HistoryEntry:
    try:
        event = entry.event()
    except DecodeError as error:
        return HistoryEntry(stream=entry.stream, entry_id=entry.entry_id, error=str(error))
    return HistoryEntry(stream=entry.stream, entry_id=entry.entry_id, event=event)


def router(services: Services) -> APIRouter:
    """The read endpoints."""
    api = APIRouter(tags=["reads"], responses=_WAITING)
    fresh = Freshness(services)

    @api.get(
        "/runs/{run_id}/artifact",
        response_model=ArtifactPointer,
        responses=_NOT_FOUND,
        openapi_extra=_hot_parameters("run_id"),
    )
    async def run_artifact(request: Request) -> Response:
        """The pointer to a run's artifact in Data Bank; 404 while there is none."""
        run_id, min_position = _hot_arguments(request, "run_id")
        await fresh.wait(min_position)
        pointer = await services.reads.run_artifact(run_id)
        if pointer is None:
            raise NotFoundError(f"run {run_id} has no artifact")
        return _json(pointer)

    @api.get(
        "/tokenizers/{tokenizer_id}/artifact",
        response_model=ArtifactPointer,
        responses=_NOT_FOUND,
        openapi_extra=_hot_parameters("tokenizer_id"),
    )
    async def tokenizer_artifact(request: Request) -> Response:
        """The pointer to a tokenizer's artifact in Data Bank; 404 while there is none."""
        tokenizer_id, min_position = _hot_arguments(request, "tokenizer_id")
        await fresh.wait(min_position)
        pointer = await services.reads.tokenizer_artifact(tokenizer_id)
        if pointer is None:
            raise NotFoundError(f"tokenizer {tokenizer_id} has no artifact")
        return _json(pointer)

    @api.get("/runs/{run_id}", response_model=RunStatus, responses=_NOT_FOUND)
    async def run(run_id: RunPath, min_position: MinPosition = None) -> Response:
        """A run's status record."""
        await fresh.wait(min_position)
        status = await services.reads.run_status(run_id)
        if status is None:
            raise NotFoundError(f"no run {run_id}")
        return _json(status)

    @api.get("/tokenizers/{tokenizer_id}", response_model=TokenizerStatus, responses=_NOT_FOUND)
    async def tokenizer(tokenizer_id: TokenizerPath, min_position: MinPosition = None) -> Response:
        """A tokenizer's status record."""
        await fresh.wait(min_position)
        status = await services.reads.tokenizer_status(tokenizer_id)
        if status is None:
            raise NotFoundError(f"no tokenizer {tokenizer_id}")
        return _json(status)

    @api.get("/runs", response_model=RunPage)
    async def runs(
        offset: Offset = 0,
        limit: Limit = 50,
        status: Annotated[Status | None, Query(description="Only runs in this status.")] = None,
        name: Annotated[
            str | None,
            Query(max_length=100, description="Only runs whose name matches (`exp-*`)."),
        ] = None,
        tag: Annotated[
            list[str] | None,
            Query(max_length=20, description="`key=value`; repeat: every one must match."),
        ] = None,
        min_position: MinPosition = None,
    ) -> Response:
        """Runs, newest request first, a page at a time; deleted runs are not listed."""
        wanted = run_filter(status, name, tag or [])
        await fresh.wait(min_position)
        return _json(await services.reads.runs(offset=offset, limit=limit, wanted=wanted))

    @api.get("/runs/{run_id}/metrics", response_model=RunMetrics, responses=_NOT_FOUND)
    async def metrics(run_id: RunPath, min_position: MinPosition = None) -> Response:
        """A run's loss curves: train loss per step window, validation loss at intervals."""
        await fresh.wait(min_position)
        found = await services.reads.run_metrics(run_id)
        if found is None:
            raise NotFoundError(f"no run {run_id}")
        return _json(found)

    @api.get("/tokenizers", response_model=TokenizerPage)
    async def tokenizers(
        offset: Offset = 0, limit: Limit = 50, min_position: MinPosition = None
    ) -> Response:
        """Tokenizers, newest request first, a page at a time."""
        await fresh.wait(min_position)
        return _json(await services.reads.tokenizers(offset=offset, limit=limit))

    @api.get("/runs/{run_id}/events", response_model=History, responses=_NOT_FOUND)
    def history(run_id: RunPath) -> Response:
        """The run's history read from the log itself (always current; no `min_position`)."""
        entries = [_history_entry(entry) for entry in services.log.read_correlation(run_id)]
        if not entries:
            raise NotFoundError(f"no events about {run_id}")
        return _json(History(run_id=run_id, entries=entries))

    return api
