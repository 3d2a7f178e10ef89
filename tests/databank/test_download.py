"""The download sink: bytes in order into the file and the hash; failures reach the caller and
never keep a buffer from coming back."""

from __future__ import annotations

import hashlib
import io
import os
from collections.abc import Callable
from pathlib import Path

import pytest

from databank.client.download import BUFFER_BYTES, DownloadSink


def _reader(data: bytes, most: int) -> Callable[[memoryview], int]:
    """Reads `data` at most `most` bytes at a time, like a socket handing over what it has."""
    source = io.BytesIO(data)
    return lambda buffer: source.readinto(buffer[:most])


def test_bytes_land_in_order_in_the_file_and_the_hash(tmp_path: Path) -> None:
    data = os.urandom(5 * BUFFER_BYTES + 3)
    read = _reader(data, 70_001)

    with (tmp_path / "out").open("w+b") as out, DownloadSink(out) as sink:
        counts = []
        while count := sink.fill(read):
            counts.append(count)
        digest = sink.hexdigest()
        offset = sink.offset

    assert (tmp_path / "out").read_bytes() == data
    assert digest == hashlib.sha256(data).hexdigest()
    assert offset == len(data) == sum(counts)
    assert max(counts) == 70_001


def test_a_whole_buffer_is_filled_when_the_reader_has_it(tmp_path: Path) -> None:
    data = os.urandom(2 * BUFFER_BYTES)

    read = _reader(data, len(data))

    with (tmp_path / "out").open("w+b") as out, DownloadSink(out) as sink:
        counts = [sink.fill(read) for _ in range(3)]

    assert counts == [BUFFER_BYTES, BUFFER_BYTES, 0]


def test_restart_forgets_everything(tmp_path: Path) -> None:
    with (tmp_path / "out").open("w+b") as out, DownloadSink(out) as sink:
        read = _reader(os.urandom(3 * BUFFER_BYTES), BUFFER_BYTES)
        while sink.fill(read):
            pass
        sink.restart()
        sink.fill(_reader(b"fresh", BUFFER_BYTES))
        digest = sink.hexdigest()
        offset = sink.offset

    assert (tmp_path / "out").read_bytes() == b"fresh"
    assert digest == hashlib.sha256(b"fresh").hexdigest()
    assert offset == 5


def test_a_write_failure_reaches_the_caller_and_gives_the_buffer_back(tmp_path: Path) -> None:
    (tmp_path / "out").write_bytes(b"")

    with (tmp_path / "out").open("rb") as read_only, DownloadSink(read_only) as sink:
        for _ in range(10):  # more than the sink has buffers: each failure returned its own
            with pytest.raises(io.UnsupportedOperation):
                sink.fill(len)  # "reads" a whole buffer every time
        offset = sink.offset

    assert offset == 0


def test_a_read_failure_reaches_the_caller_and_gives_the_buffer_back(tmp_path: Path) -> None:
    def failing(buffer: memoryview) -> int:
        raise ConnectionResetError("gone")

    with (tmp_path / "out").open("w+b") as out, DownloadSink(out) as sink:
        for _ in range(10):
            with pytest.raises(ConnectionResetError):
                sink.fill(failing)
        count = sink.fill(_reader(b"after", BUFFER_BYTES))
        digest = sink.hexdigest()

    assert (count, digest) == (5, hashlib.sha256(b"after").hexdigest())


class _BrokenHash:
    def update(self, data: memoryview) -> None:
        raise MemoryError("no room to hash")

    def hexdigest(self) -> str:
        return "never"


def test_a_hash_failure_is_raised_by_hexdigest(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(hashlib, "sha256", _BrokenHash)
    read = _reader(os.urandom(8 * BUFFER_BYTES), BUFFER_BYTES)

    with (tmp_path / "out").open("w+b") as out, DownloadSink(out) as sink:
        while sink.fill(read):  # every buffer comes back even though hashing failed
            pass
        with pytest.raises(MemoryError, match="no room to hash"):
            sink.hexdigest()
