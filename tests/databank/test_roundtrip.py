"""The client against a real server on loopback: round trips, HEAD, info and delete.

Every test runs twice: against the local server as it is, and against it emulating the
deployed service's quirks (the client must work against both).
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from databank import EMPTY_FILE_ID, NotFound
from tests.databank.conftest import Bank, MakeBank

SIZES = [0, 1, 3 * (1 << 20) + 17]


@pytest.mark.parametrize("size", SIZES, ids=["empty", "one-byte", "multi-megabyte"])
def test_a_file_uploaded_from_a_path_downloads_identical(
    any_bank: Bank, tmp_path: Path, size: int
) -> None:
    data = os.urandom(size)
    source = tmp_path / "source.bin"
    source.write_bytes(data)
    client = any_bank.client()

    info = client.upload(source, filename="source.bin", content_type="application/x-tar")
    target = client.download_to(info.file_id, tmp_path / "copy.bin")

    assert info.file_id == hashlib.sha256(data).hexdigest() == info.sha256
    assert info.size == size
    assert target.read_bytes() == data
    assert sorted(path.name for path in tmp_path.iterdir()) == ["copy.bin", "source.bin"]


@pytest.mark.parametrize("size", SIZES, ids=["empty", "one-byte", "multi-megabyte"])
def test_a_file_uploaded_from_an_iterator_downloads_identical(
    any_bank: Bank, tmp_path: Path, size: int
) -> None:
    data = os.urandom(size)

    def chunks() -> Iterator[bytes]:
        for start in range(0, size, 100_000):
            yield data[start : start + 100_000]
        yield b""

    client = any_bank.client()
    info = client.upload(chunks)
    client.download_to(info.file_id, tmp_path / "copy.bin")

    assert info.file_id == hashlib.sha256(data).hexdigest()
    assert (tmp_path / "copy.bin").read_bytes() == data


def test_the_zero_byte_file_is_never_fetched_with_get(any_bank: Bank, tmp_path: Path) -> None:
    client = any_bank.client()
    info = client.upload(lambda: [])

    client.download_to(info.file_id, tmp_path / "empty")

    assert info.file_id == EMPTY_FILE_ID
    assert (tmp_path / "empty").read_bytes() == b""
    assert any_bank.faults.requests("GET", f"/files/{EMPTY_FILE_ID}") == []
    assert len(any_bank.faults.requests("HEAD", f"/files/{EMPTY_FILE_ID}")) == 1


@pytest.mark.parametrize("deployed", [False, True], ids=["local", "deployed"])
def test_downloading_the_zero_byte_file_that_was_never_uploaded_is_not_found(
    make_bank: MakeBank, tmp_path: Path, deployed: bool
) -> None:
    with pytest.raises(NotFound):
        make_bank(deployed=deployed).client().download_to(EMPTY_FILE_ID, tmp_path / "empty")

    assert list(tmp_path.iterdir()) == []


def test_head_and_info_describe_the_file(any_bank: Bank) -> None:
    client = any_bank.client()
    uploaded = client.upload(
        lambda: [b"hello ", b"world"], filename="a.txt", content_type="text/plain"
    )

    head = client.head(uploaded.file_id)
    info = client.info(uploaded.file_id)

    assert head.file_id == uploaded.file_id
    assert head.size == 11
    assert head.content_type == "text/plain"
    assert head.etag == uploaded.file_id
    assert info == uploaded
    assert info.created_at is not None
    assert info.created_at.tzinfo is not None


def test_identical_bytes_are_stored_once(any_bank: Bank) -> None:
    client = any_bank.client()

    first = client.upload(lambda: [b"same bytes"], filename="one")
    second = client.upload(lambda: [b"same", b" bytes"], filename="two")

    assert first == second
    stored = [path.name for path in (any_bank.data_dir / "objects").rglob(f"{first.file_id}*")]
    assert sorted(stored) == [first.file_id, f"{first.file_id}.json"]


def test_delete_removes_the_file_and_is_idempotent(any_bank: Bank, tmp_path: Path) -> None:
    client = any_bank.client()
    info = client.upload(lambda: [b"to be deleted"])

    client.delete(info.file_id)
    client.delete(info.file_id)

    with pytest.raises(NotFound):
        client.info(info.file_id)
    with pytest.raises(NotFound):
        client.head(info.file_id)
    with pytest.raises(NotFound):
        client.download_to(info.file_id, tmp_path / "gone")
    assert list(tmp_path.iterdir()) == []


def test_a_download_replaces_an_existing_file_only_when_complete(
    any_bank: Bank, tmp_path: Path
) -> None:
    client = any_bank.client()
    info = client.upload(lambda: [b"new content"])
    target = tmp_path / "target"
    target.write_bytes(b"old content")

    client.download_to(info.file_id, target)

    assert target.read_bytes() == b"new content"


def test_odd_filenames_are_quoted_in_the_part_headers(any_bank: Bank) -> None:
    info = any_bank.client().upload(lambda: [b"x"], filename='we"ird\r\nname.bin')

    assert info.size == 1
