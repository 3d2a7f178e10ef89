"""Concurrent requests for one model decode as one batch, on one thread.

A request takes a `Ticket` when it arrives (before it resolves its model) and hands it in with
its job. The decoding thread takes the oldest job and, while other tickets are still out, waits
up to `wait_s` for more jobs of the same model, up to `max_rows` sequences; then it decodes
them together. A lone request never waits: with no ticket out there is nothing to wait for.
Jobs of other models wait for the next batch. Decoding (and scoring, through `compute`) runs
one batch at a time: torch is faster with its threads on one batch than fought over by many.
"""

from __future__ import annotations

import threading
import time
from collections import Counter, deque
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field
from types import TracebackType

from inference.decoding import Row
from inference.loading import Loaded


class ClosedError(RuntimeError):
    """The batcher was closed before the job ran."""


@dataclass
class Job:
    """Rows of one request for one model; `done` resolves when they all finished."""

    loaded: Loaded
    rows: list[Row]
    done: Future[None] = field(default_factory=Future)


class Ticket:
    """A request on its way: a forming batch waits (briefly) for it."""

    def __init__(self, batcher: Batcher) -> None:
        self.batcher = batcher
        self.out = True

    def __enter__(self) -> Ticket:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self.batcher.handed_in(self)


class Batcher:
    """The one decoding thread and its queue."""

    def __init__(
        self, run: Callable[[Loaded, list[Row]], None], *, max_rows: int = 8, wait_s: float = 0.005
    ) -> None:
        self.run = run
        self.max_rows = max_rows
        self.wait_s = wait_s
        self.compute = threading.Lock()
        """Held while a batch decodes; other model work (scoring) takes it too."""
        self.batch_rows: Counter[int] = Counter()
        """Batches run, by their number of rows."""
        self._queue: deque[Job] = deque()
        self._expected = 0
        self._closed = False
        self._changed = threading.Condition()
        self._thread: threading.Thread | None = None

    def batch_sizes(self) -> dict[int, int]:
        """Batches run so far, by their number of rows."""
        with self._changed:
            return dict(self.batch_rows)

    def ticket(self) -> Ticket:
        """A ticket for a request that will submit a job soon (or hand the ticket in)."""
        with self._changed:
            self._expected += 1
        return Ticket(self)

    def handed_in(self, ticket: Ticket) -> None:
        """`ticket` will bring no job (or brought one): batches stop waiting for it."""
        with self._changed:
            if ticket.out:
                ticket.out = False
                self._expected -= 1
                self._changed.notify_all()

    def submit(self, job: Job, ticket: Ticket | None = None) -> None:
        """Queue `job` for the next batch of its model."""
        with self._changed:
            if self._closed:
                raise ClosedError("the generator is closed")
            self._queue.append(job)
            if self._thread is None:
                self._thread = threading.Thread(target=self._serve, name="decoding", daemon=True)
                self._thread.start()
            self._changed.notify_all()
        if ticket is not None:
            self.handed_in(ticket)

    def close(self) -> None:
        """Stop the thread after its current batch; queued jobs fail with `ClosedError`."""
        with self._changed:
            self._closed = True
            self._changed.notify_all()
            thread, left = self._thread, list(self._queue)
            self._queue.clear()
        for job in left:
            job.done.set_exception(ClosedError("the generator closed before the job ran"))
        if thread is not None:
            thread.join()

    def _serve(self) -> None:
        while (jobs := self._next()) is not None:
            rows = [row for job in jobs for row in job.rows]
            try:
                with self.compute:
                    self.run(jobs[0].loaded, rows)
            except Exception as error:
                for job in jobs:
                    job.done.set_exception(error)
                continue
            with self._changed:
                self.batch_rows[len(rows)] += 1
            for job in jobs:
                job.done.set_result(None)

    def _next(self) -> list[Job] | None:
        """The next batch: the oldest job and those of its model that fit (None: closed)."""
        with self._changed:
            while not self._queue and not self._closed:
                self._changed.wait()
            deadline = time.monotonic() + self.wait_s
            while not self._closed and self._expected and self._rows() < self.max_rows:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self._changed.wait(left)
            return None if self._closed else self._take()

    def _same_model(self) -> list[Job]:
        model = self._queue[0].loaded
        return [job for job in self._queue if job.loaded is model]

    def _rows(self) -> int:
        return sum(len(job.rows) for job in self._same_model())

    def _take(self) -> list[Job]:
        taken: list[Job] = []
        rows = 0
        for job in self._same_model():
            if taken and rows + len(job.rows) > self.max_rows:
                break
            taken.append(job)
            rows += len(job.rows)
        for job in taken:
            self._queue.remove(job)
        return taken
