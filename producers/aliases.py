"""Model aliases over HTTP: `name@alias` points at a completed run, event-sourced.

`PUT /models/{name}/aliases/{alias}` appends `model.alias_set` (202); `DELETE` appends
`model.alias_removed`; the projector keeps `models:<name>@<alias>:run_id`, which inference reads
on every request, so a move is served by the next one. Rolling back is pointing the alias at
the previous run. Checks fold the model's history from the log (no projector lag): only a
completed run can be served, and only a live alias removed. `GET /models/{name}` shows the
aliases and their whole history (who pointed where, when) from the same log.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Path, Response
from pydantic import BaseModel, ConfigDict

from events import (
    AliasRemovedPayload,
    AliasSetPayload,
    Event,
    ModelAliasRemoved,
    ModelAliasSet,
    RunId,
)
from httpservice import ErrorBody
from producers.commands import WRITE_ERRORS, Commands, IdempotencyKey, authorizer, scoped
from producers.errors import ConflictError, NotFoundError
from producers.services import Services
from projections import AliasView, MemoryModel, ModelView, project

NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$"
NamePath = Annotated[str, Path(pattern=NAME_PATTERN)]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class AliasTarget(_Model):
    """The run an alias is to serve."""

    run_id: RunId


class AliasAccepted(_Model):
    """An alias change was recorded; `entry_id` works as `min_position`."""

    model: str
    alias: str
    run_id: str | None
    entry_id: str


class AliasChange(_Model):
    """One entry of a model's alias history."""

    alias: str
    run_id: str | None
    """None: the alias was removed."""
    at: datetime
    event_id: str


class ModelDetail(_Model):
    """A model's live aliases and the history of every alias change."""

    name: str
    aliases: list[AliasView]
    history: list[AliasChange]


class ModelList(_Model):
    """Every model with its live aliases."""

    items: list[ModelView]


def changes(events: list[Event]) -> list[AliasChange]:
    """Every alias change among a model's events, in append order."""
    found: list[AliasChange] = []
    for event in events:
        if isinstance(event, ModelAliasSet | ModelAliasRemoved):
            run_id = event.payload.run_id if isinstance(event, ModelAliasSet) else None
            found.append(
                AliasChange(
                    alias=event.payload.alias,
                    run_id=run_id,
                    at=event.occurred_at,
                    event_id=event.event_id,
                )
            )
    return found


def fold(events: list[Event]) -> MemoryModel:
    """A model's aliases folded from its events (no projector lag)."""
    folded = MemoryModel()
    for event in events:
        folded.apply(project(event))
    return folded


def live(folded: MemoryModel) -> list[AliasView]:
    """The aliases of a folded model that serve a run now, by name."""
    found: list[AliasView] = []
    for subject, record in sorted(folded.records["alias"].items()):
        run_id, (at, _, _) = record.pointer("alias"), record.slots["target"]
        if run_id is not None:
            since = datetime.fromisoformat(at)
            found.append(AliasView(alias=subject.split("@")[1], run_id=run_id, since=since))
    return found


def _accepted(model: str, alias: str, run_id: str | None, entry_id: str) -> AliasAccepted:
    return AliasAccepted(model=model, alias=alias, run_id=run_id, entry_id=entry_id)


def router(services: Services) -> APIRouter:
    """The alias endpoints: writes need `X-API-Key` when the API has one."""
    api = APIRouter(tags=["models"])
    write = [Depends(authorizer(services))]

    @api.put(
        "/models/{name}/aliases/{alias}",
        status_code=202,
        dependencies=write,
        responses={
            **WRITE_ERRORS,
            404: {"model": ErrorBody, "description": "no such run"},
            409: {"model": ErrorBody, "description": "the run is not completed"},
        },
    )
    def set_alias(
        name: NamePath, alias: NamePath, target: AliasTarget, idempotency_key: IdempotencyKey = None
    ) -> AliasAccepted:
        """Point `name@alias` at a completed run (a move or a rollback alike)."""
        commands = Commands(services.log)
        status = commands.status(target.run_id)
        if status is None:
            raise NotFoundError(f"no run {target.run_id}")
        if status != "completed":
            raise ConflictError(
                f"run {target.run_id} is {status}: only a completed run can be served"
            )
        payload = AliasSetPayload(model=name, alias=alias, run_id=target.run_id)
        key = scoped(f"models.alias:{name}@{alias}", idempotency_key)
        _, entry_id = commands.append(
            ModelAliasSet(correlation_id=name, payload=payload), key, target
        )
        return _accepted(name, alias, target.run_id, entry_id)

    @api.delete(
        "/models/{name}/aliases/{alias}",
        status_code=202,
        dependencies=write,
        responses={**WRITE_ERRORS, 404: {"model": ErrorBody, "description": "no such alias"}},
    )
    def remove_alias(name: NamePath, alias: NamePath) -> AliasAccepted:
        """Remove `name@alias`: it serves nothing until set again."""
        commands = Commands(services.log)
        record = fold(commands.history(name)).get("alias", f"{name}@{alias}")
        if record is None or record.pointer("alias") is None:
            raise NotFoundError(f"no alias {name}@{alias}")
        payload = AliasRemovedPayload(model=name, alias=alias)
        event = ModelAliasRemoved(correlation_id=name, payload=payload)
        _, entry_id = commands.append(event, None)
        return _accepted(name, alias, None, entry_id)

    @api.get("/models", response_model=ModelList)
    async def models() -> Response:
        """Every model with its live aliases."""
        found = ModelList(items=await services.reads.models())
        return Response(found.model_dump_json(), media_type="application/json")

    @api.get(
        "/models/{name}",
        response_model=ModelDetail,
        responses={404: {"model": ErrorBody, "description": "no such model"}},
    )
    def model(name: NamePath) -> ModelDetail:
        """A model's live aliases and every alias change, from the log."""
        events = Commands(services.log).history(name)
        found = changes(events)
        if not found:
            raise NotFoundError(f"no model {name}")
        return ModelDetail(name=name, aliases=live(fold(events)), history=found)

    return api
