"""`GET /runs/{run_id}/logs`: the run's progress lines as Server-Sent Events.

Lines live in the capped stream `runs:<run_id>:logs` (not domain events). Each SSE event
carries the entry id as its `id`, so a client that reconnects with `Last-Event-ID` resumes
after the last line it saw; its data is the line as JSON, numbers as numbers. Once the run is
over (its read-model status is terminal) and every line is sent, a final `event: end` carries
the status and message, and the response ends: a client watching a run learns how it ended
without polling. One response lasts at most `sse_max_s`; with `follow=false` it ends once the
lines written so far are sent (with the `end` event if the run is over). A run the log has
never heard of is 404, checked against the correlation index the append writes, so a watch
started right after `POST /runs/train` does not race the projector.
"""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import APIRouter, Header, Query
from fastapi.responses import StreamingResponse

from events import names
from httpservice import ErrorBody
from producers.commands import RunPath
from producers.errors import InvalidRequestError, NotFoundError
from producers.reads import POSITION_PATTERN
from producers.services import Services
from projections import position

_BATCH = 100
_INTEGERS = frozenset({"step", "total_steps"})
_NUMBERS = frozenset({"loss", "tokens_per_second", "eta_seconds"})
TERMINAL = frozenset({"completed", "failed", "cancelled", "deleted"})
"""Statuses after which a run writes no more lines."""


def _decode(value: object) -> str:
    return value.decode(errors="replace") if isinstance(value, bytes) else str(value)


def _typed(name: str, value: str) -> str | int | float:
    """A line's field with its number typed (a field that does not parse stays text)."""
    try:
        if name in _INTEGERS:
            return int(value)
        if name in _NUMBERS:
            return float(value)
    except ValueError:
        return value
    return value


def _sse(entry_id: str, fields: dict[str, str]) -> str:
    data = {name: _typed(name, value) for name, value in fields.items()}
    return f"id: {entry_id}\ndata: {json.dumps(data)}\n\n"


async def _ended(services: Services, run_id: str) -> str | None:
    """The final `end` event once the run is over; None while it may write more lines."""
    status = await services.reads.run_status(run_id)
    if status is None or status.status not in TERMINAL:
        return None
    data = {"status": status.status, "message": status.message}
    return f"event: end\ndata: {json.dumps(data)}\n\n"


def _rows(reply: object) -> list[tuple[str, dict[str, str]]]:
    """XREAD's reply for one stream as (entry id, fields) pairs."""
    found: list[tuple[str, dict[str, str]]] = []
    for _stream, entries in reply if isinstance(reply, list) else []:
        for entry_id, fields in entries:
            text = {_decode(key): _decode(value) for key, value in fields.items()}
            found.append((_decode(entry_id), text))
    return found


async def _events(services: Services, run_id: str, after: str, follow: bool) -> AsyncIterator[str]:
    stream = names.run_logs_stream(run_id)
    config = services.config
    deadline = time.monotonic() + config.sse_max_s
    while True:
        remaining_ms = int((deadline - time.monotonic()) * 1000)
        if remaining_ms <= 0:
            return
        block = min(config.sse_block_ms, remaining_ms) if follow else None
        reply = await services.aio.xread({stream: after}, count=_BATCH, block=block)
        rows = _rows(reply)
        for after, fields in rows:
            yield _sse(after, fields)
        if rows:
            continue
        end = await _ended(services, run_id)
        if end is not None:
            yield end
            return
        if not follow:
            return
        yield ": waiting\n\n"


def router(services: Services) -> APIRouter:
    """The log-lines endpoint."""
    api = APIRouter(tags=["reads"])

    @api.get(
        "/runs/{run_id}/logs",
        response_class=StreamingResponse,
        responses={
            200: {"content": {"text/event-stream": {}}, "description": "log lines, then `end`"},
            404: {"model": ErrorBody, "description": "no such run"},
        },
    )
    async def logs(
        run_id: RunPath,
        follow: Annotated[bool, Query(description="Keep streaming new lines.")] = True,
        last_event_id: Annotated[
            str | None, Header(alias="Last-Event-ID", pattern=POSITION_PATTERN)
        ] = None,
    ) -> StreamingResponse:
        """Stream the run's log lines; resume after `Last-Event-ID`; end with the outcome."""
        if not await services.aio.exists(names.correlation_key(run_id)):
            raise NotFoundError(f"no run {run_id}")
        if last_event_id is not None:
            try:
                position(last_event_id)
            except ValueError as error:
                raise InvalidRequestError(f"Last-Event-ID: {error}") from None
        return StreamingResponse(
            _events(services, run_id, last_event_id or "0-0", follow),
            media_type="text/event-stream",
            headers={"Cache-Control": "no-cache"},
        )

    return api
