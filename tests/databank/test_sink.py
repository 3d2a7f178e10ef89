"""The download sink: bytes in order into the file and the hash; failures reach the producer."""

from __future__ import annotations

import hashlib
import io
import os
from pathlib import Path

import pytest

from databank.sink import DownloadSink


def test_chunks_land_in_order_in_the_file_and_the_hash(tmp_path: Path) -> None:
    chunks = [os.urandom(size) for size in (0, 1, 70_000, 1 << 20, 3)]

    with (tmp_path / "out").open("w+b") as out, DownloadSink(out) as sink:
        for chunk in chunks:
            sink.write(chunk)
        digest = sink.hexdigest()
        offset = sink.offset

    data = b"".join(chunks)
    assert (tmp_path / "out").read_bytes() == data
    assert digest == hashlib.sha256(data).hexdigest()
    assert offset == len(data)


def test_restart_forgets_everything(tmp_path: Path) -> None:
    with (tmp_path / "out").open("w+b") as out, DownloadSink(out) as sink:
        sink.write(os.urandom(3 << 20))
        sink.restart()
        sink.write(b"fresh")
        digest = sink.hexdigest()

    assert (tmp_path / "out").read_bytes() == b"fresh"
    assert digest == hashlib.sha256(b"fresh").hexdigest()


def test_a_write_failure_reaches_the_producer(tmp_path: Path) -> None:
    (tmp_path / "out").write_bytes(b"")

    def write_20_mib(sink: DownloadSink) -> None:
        for _ in range(20):
            sink.write(b"x" * (1 << 20))

    with (tmp_path / "out").open("rb") as read_only, DownloadSink(read_only) as sink:
        with pytest.raises(io.UnsupportedOperation):
            write_20_mib(sink)
        with pytest.raises(io.UnsupportedOperation):
            sink.flush()
