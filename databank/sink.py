"""Where a download's bytes go: a file and a running sha256, through a few reused buffers.

The receiving thread reads the socket straight into a buffer and writes it to the file; a
hasher thread then hashes that buffer and hands it back. Hashing costs as much CPU as
receiving and writing together, so running it beside them is what lets a download keep up
with curl (which does not hash); hashlib releases the GIL while it works. Reusing a fixed set
of 1 MiB buffers keeps memory flat whatever the file size and allocates nothing per chunk.
"""

from __future__ import annotations

import hashlib
import queue
import threading
from collections.abc import Callable
from typing import BinaryIO

BUFFER_BYTES = 1 << 20
_BUFFERS = 8

_Filled = tuple[memoryview, int] | None


class DownloadSink:
    """Takes a download's bytes in order; `hexdigest` waits until all are hashed. Use `with`."""

    def __init__(self, out: BinaryIO) -> None:
        self._out = out
        self._hash = hashlib.sha256()
        self._error: BaseException | None = None
        self._free: queue.Queue[memoryview] = queue.Queue()
        for _ in range(_BUFFERS):
            self._free.put(memoryview(bytearray(BUFFER_BYTES)))
        self._filled: queue.Queue[_Filled] = queue.Queue()
        self._hasher = threading.Thread(target=self._hash_filled, daemon=True)
        self._hasher.start()
        self.offset = 0
        self.size: int | None = None

    def __enter__(self) -> DownloadSink:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._filled.put(None)
        self._hasher.join()

    def fill(self, read_into: Callable[[memoryview], int]) -> int:
        """Let `read_into` fill a free buffer, write what it read, and queue it for hashing.

        Returns the number of bytes read: 0 means `read_into` found the end.
        """
        buffer = self._free.get()
        try:
            count = read_into(buffer)
            if count:
                self._out.write(buffer[:count])
        except BaseException:
            self._free.put(buffer)
            raise
        if not count:
            self._free.put(buffer)
            return 0
        self.offset += count
        self._filled.put((buffer, count))
        return count

    def restart(self) -> None:
        """Empty the file and the hash, to download again from the first byte."""
        self._drain()
        self._out.seek(0)
        self._out.truncate()
        self._hash = hashlib.sha256()
        self.offset = 0

    def hexdigest(self) -> str:
        """The sha256 of every byte taken so far."""
        self._drain()
        return self._hash.hexdigest()

    def _drain(self) -> None:
        self._filled.join()
        if self._error is not None:
            raise self._error

    def _hash_filled(self) -> None:
        while (filled := self._filled.get()) is not None:
            buffer, count = filled
            try:
                if self._error is None:
                    self._hash.update(buffer[:count])
            except BaseException as exc:  # reported by the next `restart` or `hexdigest`
                self._error = exc
            finally:
                self._free.put(buffer)
                self._filled.task_done()
