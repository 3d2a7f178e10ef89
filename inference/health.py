"""Liveness, readiness and metrics.

`/healthz` says the process serves; `/readyz` that the event log's engine answers (without it
no request can be resolved), else 503 `NOT_READY`; `/metrics` is the Prometheus text.
"""

from __future__ import annotations

import logging

import redis
from fastapi import APIRouter, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pydantic import BaseModel, ConfigDict
from starlette.concurrency import run_in_threadpool

from httpservice import ErrorBody
from inference.errors import ENGINE_DOWN, NotReadyError
from inference.metrics import InferenceMetrics
from projections import ReadModel

log = logging.getLogger(__name__)


class Health(BaseModel):
    """A probe's answer."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    status: str


def router(read_model: ReadModel, metrics: InferenceMetrics) -> APIRouter:
    """The probe and metrics endpoints."""
    api = APIRouter(tags=["operations"])

    @api.get("/healthz")
    async def healthz() -> Health:
        """The process is up."""
        return Health(status="ok")

    @api.get("/readyz", responses={503: {"model": ErrorBody, "description": "not ready"}})
    async def readyz() -> Health:
        """The event log's engine answers."""
        try:
            await run_in_threadpool(read_model.client.ping)
        except (redis.ConnectionError, redis.TimeoutError) as error:
            log.warning("not ready: %s", error)
            raise NotReadyError(ENGINE_DOWN) from error
        return Health(status="ready")

    @api.get("/metrics", response_class=Response)
    def metrics_text() -> Response:
        """Prometheus metrics: requests, loads, the artifact cache, tokens, batch sizes."""
        return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)

    return api
