"""`"stream": true`: a generation as Server-Sent Events.

`event: token` carries a `StreamPiece` (a sequence's index and its next settled text) as the
decoding thread produces it; `event: end` the whole answer (`GenerateResponse`: texts, counts,
timings), or `event: error` an `ErrorBody` when decoding failed after the stream began. The
decoding thread hands events to the response through the event loop
(`call_soon_threadsafe`), in order. A client that leaves cancels its sequences.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from concurrent.futures import Future

from fastapi.responses import StreamingResponse

from httpservice import ErrorBody
from inference.generation import Generation, Listener, Running
from inference.requests import GenerateResponse, StreamPiece

Item = StreamPiece | Future[Generation]


class EventQueue:
    """Events from the decoding thread, read by the response on the event loop."""

    def __init__(self) -> None:
        self.loop = asyncio.get_running_loop()
        self.items: asyncio.Queue[Item] = asyncio.Queue()

    def put(self, item: Item) -> None:
        """Queue `item` from any thread."""
        self.loop.call_soon_threadsafe(self.items.put_nowait, item)

    def listener(self) -> Listener:
        """A generator listener that queues each piece."""
        return lambda index, text: self.put(StreamPiece(index=index, text=text))

    def follow(self, running: Running) -> None:
        """Queue `running`'s outcome once it has one (after its last piece)."""
        running.done.add_done_callback(self.put)


def event(name: str, data: str) -> str:
    """One Server-Sent Event."""
    return f"event: {name}\ndata: {data}\n\n"


async def events(
    queue: EventQueue,
    running: Running,
    answer: Callable[[Generation], GenerateResponse],
    request_id: str | None,
) -> AsyncIterator[str]:
    """The stream's events until its end or error; the rows stop if the client leaves."""
    try:
        while True:
            item = await queue.items.get()
            if isinstance(item, StreamPiece):
                yield event("token", item.model_dump_json())
                continue
            error = item.exception()
            if error is None:
                yield event("end", answer(item.result()).model_dump_json())
            else:
                body = ErrorBody(
                    code="GENERATION_FAILED", message=str(error), request_id=request_id
                )
                yield event("error", body.model_dump_json())
            return
    finally:
        running.cancel()


def response(body: AsyncIterator[str]) -> StreamingResponse:
    """The streaming response (no caching, no proxy buffering)."""
    headers = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
    return StreamingResponse(body, media_type="text/event-stream", headers=headers)
