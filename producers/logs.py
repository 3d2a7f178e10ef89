"""`GET /runs/{run_id}/logs`: the run's progress lines as Server-Sent Events.

Lines live in the capped stream `runs:<run_id>:logs` (not domain events). Each SSE event
carries the entry id as its `id`, so a client that reconnects with `Last-Event-ID` resumes
after the last line it saw. One response lasts at most `sse_max_s`; with `follow=false` it
ends once the lines written so far are sent.
"""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import APIRouter, Header, Query
from fastapi.responses import StreamingResponse

from events import names
from producers.commands import RunPath
from producers.errors import InvalidRequestError
from producers.reads import POSITION_PATTERN
from producers.services import Services
from projections import position

_BATCH = 100


def _decode(value: object) -> str:
    return value.decode(errors="replace") if isinstance(value, bytes) else str(value)


def _sse(entry_id: str, fields: dict[str, str]) -> str:
    return f"id: {entry_id}\ndata: {json.dumps(fields)}\n\n"


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
        if not rows:
            if not follow:
                return
            yield ": waiting\n\n"


def router(services: Services) -> APIRouter:
    """The log-lines endpoint."""
    api = APIRouter(tags=["reads"])

    @api.get(
        "/runs/{run_id}/logs",
        response_class=StreamingResponse,
        responses={200: {"content": {"text/event-stream": {}}, "description": "log lines"}},
    )
    async def logs(
        run_id: RunPath,
        follow: Annotated[bool, Query(description="Keep streaming new lines.")] = True,
        last_event_id: Annotated[
            str | None, Header(alias="Last-Event-ID", pattern=POSITION_PATTERN)
        ] = None,
    ) -> StreamingResponse:
        """Stream the run's log lines; resume after `Last-Event-ID`."""
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
