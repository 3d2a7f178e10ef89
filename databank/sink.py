"""Where a download's bytes go: a file and a running sha256, fed through two threads.

Reading the socket, writing the file and hashing each cost about the same CPU; handing 1 MiB
batches to a writer thread and a hasher thread lets the three overlap on a multi-core machine
(both release the GIL). The queues are bounded, so memory stays flat whatever the file size.
"""

from __future__ import annotations

import hashlib
import queue
import threading
from collections.abc import Callable
from typing import BinaryIO

_BATCH_BYTES = 1 << 20
_QUEUE_DEPTH = 4

_Batch = list[bytes] | None


class DownloadSink:
    """Accepts chunks in order; `flush` waits until all are written and hashed. Use with `with`."""

    def __init__(self, out: BinaryIO) -> None:
        self._out = out
        self._hash = hashlib.sha256()
        self._batch: list[bytes] = []
        self._batched = 0
        self._error: BaseException | None = None
        self._queues: tuple[queue.Queue[_Batch], ...] = (
            queue.Queue(_QUEUE_DEPTH),
            queue.Queue(_QUEUE_DEPTH),
        )
        consumers: tuple[Callable[[bytes], object], ...] = (out.write, self._update)
        self._threads = [
            threading.Thread(target=self._consume, args=(q, consume), daemon=True)
            for q, consume in zip(self._queues, consumers, strict=True)
        ]
        for thread in self._threads:
            thread.start()
        self.offset = 0
        self.size: int | None = None

    def __enter__(self) -> DownloadSink:
        return self

    def __exit__(self, *exc_info: object) -> None:
        for q in self._queues:
            q.put(None)
        for thread in self._threads:
            thread.join()

    def write(self, chunk: bytes) -> None:
        """Accept the next chunk; raises a write or hash failure from an earlier batch."""
        self._batch.append(chunk)
        self._batched += len(chunk)
        self.offset += len(chunk)
        if self._batched >= _BATCH_BYTES:
            self._hand_off()

    def flush(self) -> None:
        """Wait until every accepted chunk is in the file and in the hash."""
        if self._batch:
            self._hand_off()
        for q in self._queues:
            q.join()
        self._raise_failure()

    def restart(self) -> None:
        """Empty the file and the hash, to download again from the first byte."""
        self.flush()
        self._out.seek(0)
        self._out.truncate()
        self._hash = hashlib.sha256()
        self.offset = 0

    def hexdigest(self) -> str:
        """The sha256 of every accepted chunk."""
        self.flush()
        return self._hash.hexdigest()

    def _hand_off(self) -> None:
        self._raise_failure()
        batch, self._batch, self._batched = self._batch, [], 0
        for q in self._queues:
            q.put(batch)

    def _raise_failure(self) -> None:
        if self._error is not None:
            raise self._error

    def _update(self, chunk: bytes) -> None:
        self._hash.update(chunk)

    def _consume(self, source: queue.Queue[_Batch], consume: Callable[[bytes], object]) -> None:
        while (batch := source.get()) is not None:
            try:
                if self._error is None:
                    for chunk in batch:
                        consume(chunk)
            except BaseException as exc:  # handed to the producer at its next write or flush
                self._error = exc
            finally:
                source.task_done()
