"""`/ui`: the runs table, a run's page, the compare page and the consumer groups, as HTML.

Pages are rendered on the server by Jinja2 with autoescaping on (names, tags and messages
are user input) and carry no script and nothing from elsewhere: they work offline, and a
page that shows an active run refreshes itself (`<meta http-equiv="refresh">`) until the
run ends. Bad input gets an HTML page with the HTTP status the JSON API would answer.
"""

from __future__ import annotations

import asyncio
from typing import Annotated, get_args

from fastapi import APIRouter, Query
from fastapi.responses import HTMLResponse
from jinja2 import Environment, PackageLoader, StrictUndefined
from starlette.concurrency import run_in_threadpool

from producers.commands import RunPath
from producers.metrics import group_table
from producers.services import Services
from producers.ui import views
from projections import RunFilter, Status

REFRESH_S = 2
MAX_COMPARED = 12
_ENVIRONMENT = Environment(
    loader=PackageLoader("producers.ui"),
    autoescape=True,
    undefined=StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)


def render(template: str, *, here: str, status_code: int = 200, **context: object) -> HTMLResponse:
    """A page from `template`; `refresh` (default off) makes it reload every `REFRESH_S`."""
    values = {"here": here, "refresh": False, "refresh_s": REFRESH_S} | context
    html = _ENVIRONMENT.get_template(template).render(values)
    return HTMLResponse(html, status_code=status_code, headers={"Cache-Control": "no-store"})


def _missing(message: str, status_code: int = 404) -> HTMLResponse:
    return render("missing.html", here="", status_code=status_code, message=message)


def _filter(status: str | None, name: str | None, tags: list[str]) -> RunFilter:
    """The listing's filter from the form (empty fields ignored); `ValueError` (pydantic's
    `ValidationError` is one) when a field is invalid."""
    pairs = [tag.partition("=") for tag in tags if tag]
    if any(not sep for _key, sep, _value in pairs):
        raise ValueError("a tag filter is key=value")
    return RunFilter.model_validate(
        {"status": status or None, "name": name or None, "tags": {k: v for k, _, v in pairs}}
    )


def router(services: Services) -> APIRouter:
    """The pages under `/ui` (not in the OpenAPI schema: they are for people)."""
    api = APIRouter(prefix="/ui", include_in_schema=False, default_response_class=HTMLResponse)

    @api.get("")
    async def runs(
        offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
        limit: Annotated[int, Query(ge=1, le=200)] = 50,
        status: Annotated[str | None, Query(max_length=20)] = None,
        name: Annotated[str | None, Query(max_length=100)] = None,
        tag: Annotated[list[str] | None, Query(max_length=20)] = None,
    ) -> HTMLResponse:
        """The runs table, newest first, with filters and a compare form."""
        try:
            wanted = _filter(status, name, tag or [])
        except ValueError as error:  # pydantic's ValidationError is one
            return _missing(f"bad filter: {error}", 422)
        page = await services.reads.runs(offset=offset, limit=limit, wanted=wanted)
        rows = [views.run_row(item) for item in page.items]
        return render(
            "runs.html",
            here="runs",
            page=page,
            rows=rows,
            wanted=wanted,
            statuses=get_args(Status),
            previous=max(0, offset - limit) if offset else None,
            refresh=any(row.active for row in rows),
        )

    @api.get("/runs/{run_id}")
    async def run(run_id: RunPath) -> HTMLResponse:
        """One run: facts, loss curves, parameters and the timeline of its events."""
        status, metrics = await asyncio.gather(
            services.reads.run_status(run_id), services.reads.run_metrics(run_id)
        )
        if status is None:
            return _missing(f"no run {run_id}")
        entries = await run_in_threadpool(services.log.read_correlation, run_id)
        row = views.run_row(status)
        curves = views.Curves(run_id, "", *views.series(metrics))
        return render(
            "run.html",
            here="runs",
            row=row,
            record=status,
            times=views.times(status),
            parameters=views.parameters(entries),
            chart=views.curves_chart([curves]),
            timeline=views.timeline(entries),
            refresh=row.active,
        )

    @api.get("/compare")
    async def compare(
        run: Annotated[list[str] | None, Query(max_length=MAX_COMPARED)] = None,
    ) -> HTMLResponse:
        """The loss curves of the chosen runs in one chart, and their figures side by side."""
        chosen = list(dict.fromkeys(run or []))
        found = await asyncio.gather(*(services.reads.run_status(one) for one in chosen))
        unknown = [one for one, status in zip(chosen, found, strict=True) if status is None]
        if unknown:
            return _missing(f"no run {', '.join(unknown)}")
        metrics = await asyncio.gather(*(services.reads.run_metrics(one) for one in chosen))
        rows = [views.run_row(status) for status in found if status is not None]
        curves = [
            views.Curves(row.run_id, row.title, *views.series(series))
            for row, series in zip(rows, metrics, strict=True)
        ]
        return render(
            "compare.html",
            here="compare",
            rows=rows,
            chart=views.curves_chart(curves),
            refresh=any(row.active for row in rows),
        )

    @api.get("/groups")
    def groups() -> HTMLResponse:
        """Every consumer group's lag, pending entries and dead letters."""
        table = [views.group_row(stats) for stats in group_table(services.client)]
        return render("groups.html", here="groups", groups=table)

    return api
