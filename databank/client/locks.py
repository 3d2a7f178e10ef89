"""Locks shared by threads and processes: `flock` on lock files.

`file_lock` serializes one job. `shared_lease` and `exclusive_if_free` guard something that
many may use at once and one may remove: users hold it shared; the remover takes it exclusively
without waiting, skips it when it is in use, and may delete the lock file while it holds it. A
lock won on a file that was deleted meanwhile guards nothing, so both check, once they hold it,
that the path still names the file they locked (`flock` locks the open file, not the name).
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TextIO


@contextmanager
def file_lock(path: Path) -> Iterator[None]:
    """Hold an exclusive `flock` on `path` (created if missing) for the block."""
    with path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _is_current(handle: TextIO, path: Path) -> bool:
    """Whether `path` still names the file `handle` has open."""
    try:
        named = path.stat()
    except FileNotFoundError:
        return False
    held = os.fstat(handle.fileno())
    return (named.st_dev, named.st_ino) == (held.st_dev, held.st_ino)


@contextmanager
def shared_lease(path: Path) -> Iterator[None]:
    """Hold a shared `flock` on `path` (created if missing) for the block: any number of
    holders at once, and no `exclusive_if_free` meanwhile. Waits while a remover holds it."""
    while True:
        handle = path.open("a")
        fcntl.flock(handle, fcntl.LOCK_SH)
        if _is_current(handle, path):
            break
        handle.close()  # removed while we waited: lock the file that replaced it
    with handle:
        yield


@contextmanager
def exclusive_if_free(path: Path) -> Iterator[bool]:
    """Try an exclusive `flock` on `path` without waiting; yields whether it was won. While it
    is held no lease exists, and the block may delete `path`."""
    with path.open("a") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
            return
        yield _is_current(handle, path)
