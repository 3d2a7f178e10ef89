"""A run's log stream (`GET /runs/{run_id}/logs`, Server-Sent Events), resumed where it
dropped.

Each line event carries its entry id; a stream that ends without the final `end` event (the
server bounds one response) or breaks mid-way is opened again with `Last-Event-ID`, so no
line is lost or repeated. The `end` event says how the run ended.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import TypeVar

import httpx
from pydantic import BaseModel, ValidationError

from trainledger.client.errors import InvalidAnswerError, UnreachableError
from trainledger.client.http import HttpClient
from trainledger.client.models import End, LogLine

M = TypeVar("M", bound=BaseModel)
MAX_DROPS = 5
"""Broken connections in a row (with no event between them) before giving up."""


@dataclass(frozen=True)
class SseEvent:
    """One dispatched Server-Sent Event."""

    event: str
    data: str
    id: str | None


def sse_events(lines: Iterable[str]) -> Iterator[SseEvent]:
    """The events of an SSE body given line by line (comments and empty events skipped)."""
    event: str = "message"
    entry_id: str | None = None
    data: list[str] = []
    for line in lines:
        if not line:
            if data:
                yield SseEvent(event, "\n".join(data), entry_id)
            event, entry_id, data = "message", None, []
            continue
        field, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if field == "data":
            data.append(value)
        elif field == "event":
            event = value
        elif field == "id":
            entry_id = value


def _parsed(model: type[M], event: SseEvent) -> M:
    try:
        return model.model_validate_json(event.data)
    except ValidationError:
        raise InvalidAnswerError(
            f"the log stream sent an unreadable {event.event!r} event"
        ) from None


def run_log(
    api: HttpClient, run_id: str, on_line: Callable[[LogLine], None], *, follow: bool
) -> End | None:
    """Hand each log line of the run to `on_line`; the `End` once the server sends it.

    With `follow`, the stream is reopened until the `End` comes; without, it stops where the
    server ends it (None when it ended without an `End`: the run is still going).
    """
    last: str | None = None
    drops = 0
    while True:
        headers = {"Last-Event-ID": last} if last else None
        params = {"follow": "true" if follow else "false"}
        try:
            with api.stream(f"/runs/{run_id}/logs", params, headers) as response:
                for event in sse_events(response.iter_lines()):
                    drops = 0
                    if event.event == "end":
                        return _parsed(End, event)
                    last = event.id or last
                    on_line(_parsed(LogLine, event))
        except httpx.TransportError:
            drops += 1
            if drops >= MAX_DROPS:
                raise UnreachableError(
                    f"the log stream of run {run_id} broke {drops} times in a row"
                ) from None
            continue
        if not follow:
            return None
