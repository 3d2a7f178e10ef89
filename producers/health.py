"""Liveness, readiness and metrics.

`/healthz` says the process serves; `/readyz` that the engine answers, every consumer group
the pipeline needs exists (`training` on `stream:training`, `projector` on every stream) and
each of those groups has a live consumer (one that announced itself, see `events.liveness`),
else 503 `NOT_READY` naming what is missing: without a live projector writes would be accepted
and never become readable, without a live training consumer runs would wait forever.
`/metrics` is the Prometheus text exposition.
"""

from __future__ import annotations

from fastapi import APIRouter, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pydantic import BaseModel, ConfigDict

from events import live_consumers, names
from httpservice import ErrorBody
from producers.errors import NotReadyError
from producers.services import Services

REQUIRED_GROUPS = (
    (names.TRAINING_STREAM, names.TRAINING_GROUP),
    *((stream, names.PROJECTOR_GROUP) for stream in names.ALL_STREAMS),
)
LIVE_GROUPS = (names.TRAINING_GROUP, names.PROJECTOR_GROUP)
"""Groups that must have a live consumer (the upload groups are per node, and a node's upload
consumer runs beside its training consumer)."""


class Health(BaseModel):
    """A probe's answer."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    status: str


def _text(value: object) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def router(services: Services) -> APIRouter:
    """The probe and metrics endpoints."""
    api = APIRouter(tags=["operations"])

    @api.get("/healthz")
    async def healthz() -> Health:
        """The process is up."""
        return Health(status="ok")

    @api.get("/readyz", responses={503: {"model": ErrorBody, "description": "not ready"}})
    async def readyz() -> Health:
        """The engine answers, every consumer group exists and has a live consumer."""
        client = services.aio
        await client.ping()
        missing: list[str] = []
        for stream, group in REQUIRED_GROUPS:
            present = set()
            if await client.exists(stream):
                present = {_text(row["name"]) for row in await client.xinfo_groups(stream)}
            if group not in present:
                missing.append(f"{group} on {stream}")
        live = await live_consumers(client, LIVE_GROUPS)
        dead = [group for group in LIVE_GROUPS if not live[group]]
        reasons = [f"missing consumer groups: {', '.join(missing)}"] if missing else []
        reasons += [f"no live consumer in groups: {', '.join(dead)}"] if dead else []
        if reasons:
            raise NotReadyError("; ".join(reasons))
        return Health(status="ready")

    @api.get("/metrics", response_class=Response)
    def metrics() -> Response:
        """Prometheus metrics: requests, and per group lag, pending, age, dead letters."""
        return Response(generate_latest(services.metrics.registry), media_type=CONTENT_TYPE_LATEST)

    return api
