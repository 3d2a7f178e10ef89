"""The streaming multipart encoder (client) and streaming ingest (server) agree, whatever the
chunking on either side."""

from __future__ import annotations

import hashlib
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path

import anyio
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from databank.client.upload import MultipartFile
from databank.server.ingest import UploadTooLargeError, receive_file
from databank.server.storage import FileStore

chunk_lists = st.lists(st.binary(max_size=300), max_size=8)
filenames = st.text(st.characters(codec="utf-8"), max_size=20)


async def _pieces(body: bytes, cuts: list[int]) -> AsyncIterator[bytes]:
    previous = 0
    for cut in sorted(cuts):
        yield body[previous:cut]
        previous = cut
    yield body[previous:]


def _ingest(body: bytes, cuts: list[int], boundary: str, limit: int = 0) -> tuple[str, bytes]:
    with tempfile.TemporaryDirectory() as directory:
        store = FileStore(Path(directory))
        pending = store.begin()

        async def run() -> str:
            return await receive_file(_pieces(body, cuts), boundary.encode(), pending, limit=limit)

        try:
            content_type = anyio.run(run)
            pending.finish()
            return content_type, pending.path.read_bytes()
        finally:
            pending.discard()


@settings(max_examples=60, deadline=None)
@given(chunk_lists, filenames, st.lists(st.integers(min_value=0, max_value=3000), max_size=6))
def test_what_the_client_encodes_the_server_receives(
    chunks: list[bytes], filename: str, cuts: list[int]
) -> None:
    envelope = MultipartFile(filename=filename, content_type="application/x-test")
    body = b"".join(envelope.encode(chunks))

    content_type, received = _ingest(
        body, [cut for cut in cuts if cut < len(body)], envelope.boundary
    )

    assert received == b"".join(chunks)
    assert content_type == "application/x-test"
    assert envelope.length(len(received)) == len(body)


def test_boundary_like_bytes_inside_the_file_survive() -> None:
    envelope = MultipartFile(filename="f", content_type="a/b", boundary="XYZ")
    tricky = [b"\r\n--XY", b"Z-not-the-end\r\n--XYZ", b"Q\r\n"]

    _, received = _ingest(b"".join(envelope.encode(tricky)), [3, 50, 61], "XYZ")

    assert received == b"".join(tricky)
    assert hashlib.sha256(received).hexdigest() == hashlib.sha256(b"".join(tricky)).hexdigest()


def test_ingest_stops_at_the_limit() -> None:
    envelope = MultipartFile(filename="f", content_type="a/b")
    body = b"".join(envelope.encode([b"x" * 101]))

    with pytest.raises(UploadTooLargeError):
        _ingest(body, [], envelope.boundary, limit=100)
    assert _ingest(b"".join(envelope.encode([b"x" * 100])), [], envelope.boundary, limit=100)[1]


def test_a_content_type_with_a_line_break_is_refused() -> None:
    with pytest.raises(ValueError, match="line breaks"):
        MultipartFile(filename="f", content_type="text/plain\r\nX-Evil: 1")


def test_quotes_and_line_breaks_in_filenames_are_escaped() -> None:
    envelope = MultipartFile(filename='a"b\r\nc', content_type="a/b", boundary="B")

    assert b'filename="a%22b%0D%0Ac"' in envelope.head
    assert envelope.content_type == "multipart/form-data; boundary=B"
