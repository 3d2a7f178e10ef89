"""Uploads meant to hurt the local server or its other users: each is refused or made harmless."""

from __future__ import annotations

import hashlib
import os
import socket

import httpx
import pytest

from databank.models import FileInfo
from databank.server.storage import FileStore
from tests.databank.conftest import Bank, MakeBank
from tests.databank.test_server import AUTH, MIB, _blob, _part, _post, _raw_upload_head, _store
from tests.waiting import wait_until

CONTROL_TYPES = ["text/plain\x01", "image/png\x00x", "a/b\x1b[31m", "a/b\x7f", "a/\x0bb"]


@pytest.mark.parametrize("content_type", CONTROL_TYPES, ids=repr)
def test_a_content_type_with_control_characters_is_refused(bank: Bank, content_type: str) -> None:
    data = os.urandom(32)
    body = _part("file", data).replace(
        b"\r\n\r\n", f"\r\nContent-Type: {content_type}\r\n\r\n".encode("latin-1"), 1
    )

    answer = _post(bank, body + b"--B--\r\n")
    stored = httpx.head(f"{bank.url}/files/{hashlib.sha256(data).hexdigest()}", headers=AUTH)

    assert answer.status_code == 400
    assert answer.json()["code"] == "INVALID_INPUT"
    assert "control characters" in answer.json()["message"]
    assert stored.status_code == 404
    wait_until(lambda: bank.partials() == [], what="the partial upload to be removed")


def test_stored_metadata_with_control_characters_is_served_as_octet_stream(bank: Bank) -> None:
    """Files stored before the check still answer every GET and HEAD, never an empty reply."""
    data = os.urandom(20)
    file_id = _store(bank, data, "text/plain")
    metadata = _blob(bank, file_id).with_suffix(".json")
    info = FileInfo.model_validate_json(metadata.read_bytes())
    metadata.write_text(
        info.model_copy(update={"content_type": "text/\x01plain"}).model_dump_json()
    )
    url = f"{bank.url}/files/{file_id}"

    whole = httpx.get(url, headers=AUTH)
    part = httpx.get(url, headers={"Range": "bytes=0-3", **AUTH})
    head = httpx.head(url, headers=AUTH)
    described = httpx.get(f"{url}/info", headers=AUTH)

    assert (whole.status_code, whole.content) == (200, data)
    assert (part.status_code, part.content) == (206, data[:4])
    assert head.status_code == 200
    for answer in (whole, part, head):
        assert answer.headers["content-type"] == "application/octet-stream"
    assert described.json()["content_type"] == "application/octet-stream"
    assert bank.client().head(file_id).content_type == "application/octet-stream"


def test_an_upload_that_would_cross_the_free_disk_floor_stops_with_507(
    make_bank: MakeBank, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A disk with room for 1.5 MiB above the floor: the floor holds at the start, not at the end."""
    bank = make_bank(min_free_gb=1.0)
    room = (1 << 30) + 3 * MIB // 2

    def free_bytes(store: FileStore) -> int:
        return room - sum(entry.stat().st_size for entry in (store.root / "tmp").iterdir())

    monkeypatch.setattr(FileStore, "free_bytes", free_bytes)
    data = os.urandom(3 * MIB)
    tail = b"\r\n--B--\r\n"
    address, head = _raw_upload_head(bank.url, len(_part("file", b"")) - 2 + len(data) + len(tail))

    with socket.create_connection(address, timeout=10) as connection:
        connection.sendall(head + data + tail)
        answer = b""
        while b"}" not in answer:
            answer += connection.recv(65536)

    assert answer.startswith(b"HTTP/1.1 507")
    assert b'"code":"INSUFFICIENT_STORAGE"' in answer
    assert b"MIN_FREE_GB" in answer
    wait_until(lambda: bank.partials() == [], what="the partial upload to be removed")
    stored = httpx.head(f"{bank.url}/files/{hashlib.sha256(data).hexdigest()}", headers=AUTH)
    assert stored.status_code == 404


def _read_until_closed(connection: socket.socket) -> bytes:
    answer = b""
    while chunk := connection.recv(65536):
        answer += chunk
    return answer


def test_a_body_that_stalls_is_answered_408_and_the_connection_closed(make_bank: MakeBank) -> None:
    bank = make_bank(body_idle_timeout_s=0.2)
    address, head = _raw_upload_head(bank.url, 10 * MIB)

    with socket.create_connection(address, timeout=10) as connection:
        connection.sendall(head + os.urandom(1000))
        answer = _read_until_closed(connection)

    assert answer.startswith(b"HTTP/1.1 408")
    assert b'"code":"REQUEST_TIMEOUT"' in answer
    wait_until(lambda: bank.partials() == [], what="the partial upload to be removed")
