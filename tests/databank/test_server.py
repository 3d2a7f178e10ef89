"""The local server against raw HTTP: the protocol as `docs/databank-protocol.md` defines it."""

from __future__ import annotations

import os
import shutil
import socket
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest

from databank import TransientError
from databank.server import DataBankServerSettings, create_app
from tests.databank.conftest import KEY, Bank, MakeBank
from tests.waiting import wait_until

AUTH = {"X-API-Key": KEY}
MIB = 1 << 20


def _store(bank: Bank, data: bytes, content_type: str = "application/octet-stream") -> str:
    return bank.client().upload(lambda: [data], content_type=content_type).file_id


def _post(bank: Bank, body: bytes, boundary: str = "B") -> httpx.Response:
    headers = {"Content-Type": f"multipart/form-data; boundary={boundary}", **AUTH}
    return httpx.post(f"{bank.url}/files", content=body, headers=headers)


def _part(name: str, data: bytes, content_type: str | None = None) -> bytes:
    head = f'--B\r\nContent-Disposition: form-data; name="{name}"; filename="f"\r\n'
    if content_type is not None:
        head += f"Content-Type: {content_type}\r\n"
    return head.encode() + b"\r\n" + data + b"\r\n"


def _blob(bank: Bank, file_id: str) -> Path:
    return bank.data_dir / "objects" / file_id[:2] / file_id[2:4] / file_id


def test_health_and_readiness_need_no_key(bank: Bank) -> None:
    health = httpx.get(f"{bank.url}/healthz")
    ready = httpx.get(f"{bank.url}/readyz")

    assert (health.status_code, health.json()) == (200, {"status": "ok"})
    assert (ready.status_code, ready.json()) == (200, {"status": "ready"})


def test_readiness_is_degraded_when_free_disk_is_low(make_bank: MakeBank) -> None:
    bank = make_bank(min_free_gb=1e9)

    ready = httpx.get(f"{bank.url}/readyz")

    assert ready.status_code == 503
    assert ready.json()["status"] == "degraded"
    assert "MIN_FREE_GB" in ready.json()["reason"]


def test_readiness_is_degraded_and_uploads_fail_when_storage_is_not_writable(
    make_bank: MakeBank,
) -> None:
    bank = make_bank()
    shutil.rmtree(bank.data_dir / "tmp")
    (bank.data_dir / "tmp").write_text("not a directory")

    ready = httpx.get(f"{bank.url}/readyz")
    upload = _post(bank, _part("file", b"x") + b"--B--\r\n")

    assert ready.status_code == 503
    assert "not writable" in ready.json()["reason"]
    assert upload.status_code == 500
    assert upload.json()["code"] == "INTERNAL_ERROR"
    assert upload.json()["request_id"] == upload.headers["x-request-id"]


def test_request_ids_are_echoed_or_made(bank: Bank) -> None:
    echoed = httpx.get(f"{bank.url}/files/{'0' * 64}", headers={"X-Request-ID": "abc-123", **AUTH})
    made = httpx.get(f"{bank.url}/files/{'0' * 64}", headers=AUTH)
    refused = httpx.get(f"{bank.url}/healthz", headers={"X-Request-ID": "x" * 500})

    assert echoed.headers["x-request-id"] == echoed.json()["request_id"] == "abc-123"
    assert len(made.headers["x-request-id"]) == 32
    assert made.json()["request_id"] == made.headers["x-request-id"]
    assert len(refused.headers["x-request-id"]) == 32


@pytest.mark.parametrize(
    ("method", "path", "status", "code"),
    [
        ("GET", "/nowhere", 404, "NOT_FOUND"),
        ("PUT", "/files/" + "0" * 64, 405, "METHOD_NOT_ALLOWED"),
        ("GET", "/files/abc", 400, "INVALID_INPUT"),
        ("GET", "/files/" + "A" * 64 + "/info", 400, "INVALID_INPUT"),
        ("DELETE", "/files/" + "0" * 63, 400, "INVALID_INPUT"),
        ("GET", "/files/" + "0" * 64, 404, "NOT_FOUND"),
    ],
)
def test_every_error_is_the_protocol_json(
    bank: Bank, method: str, path: str, status: int, code: str
) -> None:
    answer = httpx.request(method, f"{bank.url}{path}", headers=AUTH)

    assert answer.status_code == status
    assert answer.headers["content-type"] == "application/json"
    assert set(answer.json()) == {"code", "message", "request_id", "errors"}
    assert answer.json()["code"] == code
    assert answer.json()["request_id"] == answer.headers["x-request-id"]


def test_a_malformed_file_id_is_listed_in_errors(bank: Bank) -> None:
    answer = httpx.get(f"{bank.url}/files/abc/info", headers=AUTH)

    assert answer.status_code == 400
    assert answer.json()["code"] == "INVALID_INPUT"
    [error] = answer.json()["errors"]
    assert error["field"] == "path.file_id"
    assert error["message"] in answer.json()["message"]


def test_errors_other_than_validation_list_none(bank: Bank) -> None:
    answer = httpx.get(f"{bank.url}/files/{'0' * 64}", headers=AUTH)

    assert (answer.status_code, answer.json()["errors"]) == (404, [])


def test_keys_are_checked_before_the_file_id(bank: Bank) -> None:
    assert httpx.get(f"{bank.url}/files/abc").status_code == 401
    assert httpx.get(f"{bank.url}/files/abc", headers={"X-API-Key": "nope"}).status_code == 403


@pytest.mark.parametrize(
    ("method", "suffix"), [("HEAD", ""), ("GET", ""), ("GET", "/info"), ("DELETE", "")]
)
def test_each_route_needs_its_scope(make_bank: MakeBank, method: str, suffix: str) -> None:
    bank = make_bank(read_keys=("reader",), delete_keys=("deleter",))
    file_id = _store(bank, os.urandom(10))
    url = f"{bank.url}/files/{file_id}{suffix}"
    allowed = "deleter" if method == "DELETE" else "reader"

    missing = httpx.request(method, url)
    upload_key = httpx.request(method, url, headers=AUTH)
    right_key = httpx.request(method, url, headers={"X-API-Key": allowed})

    assert missing.status_code == 401
    assert upload_key.status_code == 403
    assert right_key.status_code in (200, 204)


def test_read_and_delete_fall_back_to_the_upload_keys(make_bank: MakeBank) -> None:
    bank = make_bank(read_keys=None, delete_keys=None)
    file_id = _store(bank, os.urandom(10))

    assert httpx.get(f"{bank.url}/files/{file_id}", headers=AUTH).status_code == 200
    assert httpx.delete(f"{bank.url}/files/{file_id}", headers=AUTH).status_code == 204
    assert httpx.post(f"{bank.url}/files", headers={"X-API-Key": "nope"}).status_code == 403


def test_head_describes_the_file_without_a_body(bank: Bank) -> None:
    data = os.urandom(10)
    file_id = _store(bank, data, "text/csv")

    head = httpx.head(f"{bank.url}/files/{file_id}", headers=AUTH)

    assert head.status_code == 200
    assert head.content == b""
    assert head.headers["content-length"] == "10"
    assert head.headers["content-type"] == "text/csv"
    assert head.headers["etag"] == file_id  # bare, as the deployed service answers
    assert head.headers["accept-ranges"] == "bytes"


@pytest.mark.parametrize(
    ("range_header", "start", "end"),
    [
        ("bytes=2-5", 2, 5),
        ("bytes=7-", 7, 9),
        ("bytes=-3", 7, 9),
        ("bytes=-30", 0, 9),
        ("bytes=5-100", 5, 9),
        ("bytes=0-0", 0, 0),
    ],
)
def test_ranges_are_served_as_206(bank: Bank, range_header: str, start: int, end: int) -> None:
    data = b"0123456789" + os.urandom(0)
    file_id = _store(bank, data)

    answer = httpx.get(f"{bank.url}/files/{file_id}", headers={"Range": range_header, **AUTH})

    assert answer.status_code == 206
    assert answer.content == data[start : end + 1]
    assert answer.headers["content-range"] == f"bytes {start}-{end}/10"
    assert answer.headers["content-length"] == str(end - start + 1)


@pytest.mark.parametrize("range_header", ["bytes=10-", "bytes=-0", "bytes=99-100"])
def test_ranges_outside_the_file_are_416(bank: Bank, range_header: str) -> None:
    file_id = _store(bank, b"0123456789")

    answer = httpx.get(f"{bank.url}/files/{file_id}", headers={"Range": range_header, **AUTH})

    assert answer.status_code == 416
    assert answer.headers["content-range"] == "bytes */10"
    assert answer.json()["code"] == "RANGE_NOT_SATISFIABLE"


@pytest.mark.parametrize("range_header", ["bytes=abc", "bytes=0-1,4-5", "items=0-1", "bytes=5-2"])
def test_ranges_the_server_cannot_use_get_the_whole_file(bank: Bank, range_header: str) -> None:
    file_id = _store(bank, b"0123456789")

    answer = httpx.get(f"{bank.url}/files/{file_id}", headers={"Range": range_header, **AUTH})

    assert answer.status_code == 200
    assert answer.content == b"0123456789"


def test_delete_is_idempotent_unless_strict(bank: Bank, make_bank: MakeBank) -> None:
    strict = make_bank(strict_delete=True)
    missing = f"/files/{'5' * 64}"

    assert httpx.delete(f"{bank.url}{missing}", headers=AUTH).status_code == 204
    assert httpx.delete(f"{strict.url}{missing}", headers=AUTH).status_code == 404


def test_an_upload_keeps_the_file_part_and_its_content_type(bank: Bank) -> None:
    data = os.urandom(100)
    body = _part("note", b"ignored") + _part("file", data, "image/png") + b"--B--\r\n"

    answer = _post(bank, body)
    stored = httpx.get(f"{bank.url}/files/{answer.json()['file_id']}", headers=AUTH)

    assert answer.status_code == 201
    assert answer.json()["content_type"] == "image/png"
    assert answer.json()["size"] == 100
    assert stored.content == data


def test_a_file_part_without_a_content_type_is_octet_stream(bank: Bank) -> None:
    answer = _post(bank, _part("file", os.urandom(10)) + b"--B--\r\n")

    assert answer.status_code == 201
    assert answer.json()["content_type"] == "application/octet-stream"


@pytest.mark.parametrize(
    ("content_type", "body"),
    [
        ("application/octet-stream", b"raw bytes"),
        ("multipart/form-data", b"no boundary"),
        ("multipart/form-data; boundary=B", b"garbage"),
        ("multipart/form-data; boundary=B", _part("file", b"x")),
        ("multipart/form-data; boundary=B", _part("other", b"x") + b"--B--\r\n"),
        (
            "multipart/form-data; boundary=B",
            _part("file", b"x") + _part("file", b"y") + b"--B--\r\n",
        ),
        ("multipart/form-data; boundary=B", _part("other", b"x" * 70_000) + b"--B--\r\n"),
        ("multipart/form-data; boundary=B", b"--B\r\nbroken header\r\n\r\nx\r\n--B--\r\n"),
    ],
    ids=[
        "not-multipart",
        "no-boundary",
        "garbage",
        "truncated",
        "no-file-part",
        "two-file-parts",
        "huge-other-part",
        "bad-part-header",
    ],
)
def test_malformed_uploads_are_invalid_input(bank: Bank, content_type: str, body: bytes) -> None:
    headers = {"Content-Type": content_type, **AUTH}

    answer = httpx.post(f"{bank.url}/files", content=body, headers=headers)

    assert answer.status_code == 400
    assert answer.json()["code"] == "INVALID_INPUT"
    wait_until(lambda: bank.partials() == [], what="the partial upload to be removed")


def _raw_upload_head(url: str, content_length: int) -> tuple[tuple[str, int], bytes]:
    parts = urlsplit(url)
    assert parts.hostname is not None
    assert parts.port is not None
    head = (
        f"POST /files HTTP/1.1\r\nHost: {parts.hostname}\r\nX-API-Key: {KEY}\r\n"
        f"Content-Type: multipart/form-data; boundary=B\r\nContent-Length: {content_length}\r\n\r\n"
    )
    return (parts.hostname, parts.port), head.encode() + _part("file", b"")[:-2]


def test_an_oversized_upload_is_refused_before_the_body_is_read(make_bank: MakeBank) -> None:
    bank = make_bank(max_file_bytes=1000)
    address, head = _raw_upload_head(bank.url, 100 * MIB)

    with socket.create_connection(address, timeout=10) as connection:
        connection.sendall(head + b"x" * 70_000)
        answer = b""
        while b"}" not in answer:
            answer += connection.recv(65536)

    assert answer.startswith(b"HTTP/1.1 413")
    assert b'"code":"PAYLOAD_TOO_LARGE"' in answer
    wait_until(lambda: bank.partials() == [], what="the partial upload to be removed")


def test_a_client_that_goes_away_mid_upload_leaves_nothing(bank: Bank) -> None:
    address, head = _raw_upload_head(bank.url, 10 * MIB)

    with socket.create_connection(address, timeout=10) as connection:
        connection.sendall(head + os.urandom(MIB))
        wait_until(lambda: bank.partials() != [], what="the upload to start")

    wait_until(lambda: bank.partials() == [], what="the partial upload to be removed")


def test_uploads_left_unfinished_by_a_previous_run_are_cleared(tmp_path: Path) -> None:
    (tmp_path / "tmp").mkdir()
    (tmp_path / "tmp" / "stale.part").write_bytes(b"half an upload")

    create_app(DataBankServerSettings(data_dir=tmp_path, upload_keys=(KEY,)))

    assert list((tmp_path / "tmp").iterdir()) == []


def test_unreadable_metadata_is_an_internal_error_in_the_protocol_json(bank: Bank) -> None:
    file_id = _store(bank, os.urandom(20))
    _blob(bank, file_id).with_suffix(".json").write_text("{not json")
    url = f"{bank.url}/files/{file_id}"

    answers = [httpx.get(f"{url}/info", headers=AUTH), httpx.get(url, headers=AUTH)]
    head = httpx.head(url, headers=AUTH)

    for answer in answers:
        assert answer.status_code == 500
        assert answer.json()["code"] == "INTERNAL_ERROR"
        assert answer.json()["request_id"] == answer.headers["x-request-id"]
    assert head.status_code == 500
    with pytest.raises(TransientError):
        bank.client().info(file_id)


def test_a_stored_file_cut_short_breaks_the_connection_rather_than_end_short(
    bank: Bank, tmp_path: Path
) -> None:
    file_id = _store(bank, os.urandom(2 * MIB))
    with _blob(bank, file_id).open("r+b") as blob:
        blob.truncate(MIB)

    with pytest.raises(httpx.RemoteProtocolError):
        httpx.get(f"{bank.url}/files/{file_id}", headers=AUTH)
    with pytest.raises(TransientError):
        bank.client().download_to(file_id, tmp_path / "copy")

    assert list(tmp_path.iterdir()) == []
