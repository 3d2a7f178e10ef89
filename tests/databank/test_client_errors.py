"""Every error the protocol defines reaches the caller as its typed error, never as a parsing
exception: from the real local server where it can produce it, from injected answers otherwise."""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from databank import (
    AuthError,
    BadRequest,
    DataBankClient,
    DataBankError,
    Forbidden,
    InsufficientStorage,
    InvalidFileId,
    NotFound,
    PayloadTooLarge,
    ProtocolError,
    RangeNotSatisfiable,
    TransientError,
    Unauthorized,
    UnexpectedStatus,
)
from tests.databank.conftest import FAST, KEY, Bank, MakeBank
from tests.databank.faults import Fault

MISSING = "0" * 64


def _error(code: str, message: str = "refused", request_id: str | None = "srv-1") -> bytes:
    return json.dumps({"code": code, "message": message, "request_id": request_id}).encode()


def test_no_key_is_unauthorized(bank: Bank) -> None:
    with pytest.raises(Unauthorized) as caught:
        bank.client("").upload(lambda: [b"x"])

    assert caught.value.status == 401
    assert caught.value.code == "UNAUTHORIZED"
    assert isinstance(caught.value, AuthError)


def test_a_key_without_the_scope_is_forbidden(make_bank: MakeBank) -> None:
    bank = make_bank(read_keys=("reader",), delete_keys=("deleter",))
    info = bank.client().upload(lambda: [os.urandom(8)])

    with pytest.raises(Forbidden) as caught:
        bank.client("reader").upload(lambda: [b"x"])
    with pytest.raises(Forbidden):
        bank.client("reader").delete(info.file_id)
    with pytest.raises(Forbidden):
        bank.client("deleter").info(info.file_id)

    assert caught.value.status == 403
    assert caught.value.code == "FORBIDDEN"
    assert bank.client("reader").info(info.file_id) == info
    bank.client("deleter").delete(info.file_id)


def test_a_missing_file_is_not_found_with_the_request_id(any_bank: Bank) -> None:
    with pytest.raises(NotFound) as caught:
        any_bank.client().info(MISSING)

    assert caught.value.status == 404
    assert caught.value.code == "NOT_FOUND"
    sent = any_bank.faults.requests("GET", f"/files/{MISSING}/info")
    assert len(sent) == 1
    assert caught.value.request_id is not None
    assert len(caught.value.request_id) == 32


def test_head_of_a_missing_file_is_not_found(any_bank: Bank) -> None:
    with pytest.raises(NotFound) as caught:
        any_bank.client().head(MISSING)

    assert caught.value.status == 404


class _NoReasonServer(ThreadingHTTPServer):
    """A real HTTP server on loopback whose answers carry no reason phrase."""

    status = 404


class _NoReason(BaseHTTPRequestHandler):
    """Answers every HEAD with a status line whose reason phrase is empty (`HTTP/1.1 404 `),
    as HTTP/1.1 allows and some servers in front of the deployed service do."""

    protocol_version = "HTTP/1.1"
    server: _NoReasonServer

    def do_HEAD(self) -> None:
        self.send_response(self.server.status, "")
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        """Quiet: the test reads the client's error, not the server's log."""


@pytest.fixture
def no_reason() -> Iterator[_NoReasonServer]:
    """The server, serving in a thread until the test ends."""
    server = _NoReasonServer(("127.0.0.1", 0), _NoReason)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join(10)


@pytest.mark.parametrize(
    ("status", "kind", "reason"),
    [
        (404, NotFound, "Not Found"),
        (401, Unauthorized, "Unauthorized"),
        (499, UnexpectedStatus, "status 499"),
    ],
)
def test_a_head_error_without_a_reason_phrase_still_says_what_it_is(
    no_reason: _NoReasonServer, status: int, kind: type[DataBankError], reason: str
) -> None:
    no_reason.status = status
    url = f"http://127.0.0.1:{no_reason.server_address[1]}"

    with DataBankClient(url, KEY, retry=FAST) as client, pytest.raises(kind) as caught:
        client.head(MISSING)

    assert caught.value.message == f"HEAD /files/{MISSING}: {reason}"
    assert caught.value.status == status


def test_a_file_over_the_limit_is_too_large(make_bank: MakeBank, tmp_path: Path) -> None:
    bank = make_bank(max_file_bytes=1000)
    source = tmp_path / "big"
    source.write_bytes(os.urandom(5000))
    client = bank.client()

    with pytest.raises(PayloadTooLarge) as caught:
        client.upload(source)

    assert caught.value.code == "PAYLOAD_TOO_LARGE"
    assert client.upload(lambda: [b"x" * 1000]).size == 1000
    assert bank.partials() == []


def test_low_free_disk_is_insufficient_storage_and_not_retried(make_bank: MakeBank) -> None:
    bank = make_bank(min_free_gb=1e9)

    with pytest.raises(InsufficientStorage) as caught:
        bank.client().upload(lambda: [b"x"])

    assert caught.value.status == 507
    assert len(bank.faults.requests("POST", "/files")) == 1


@pytest.mark.parametrize("bad", ["abc", "A" * 64, MISSING + "0", "../" + MISSING[3:], ""])
def test_a_malformed_file_id_fails_before_any_request(bank: Bank, tmp_path: Path, bad: str) -> None:
    client = bank.client()

    for call in (client.info, client.head, client.delete):
        with pytest.raises(InvalidFileId):
            call(bad)
    with pytest.raises(InvalidFileId):
        client.download_to(bad, tmp_path / "x")

    assert bank.faults.seen == []
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    ("status", "body", "kind", "code"),
    [
        (400, _error("INVALID_INPUT"), BadRequest, "INVALID_INPUT"),
        (400, _error("BAD_REQUEST"), BadRequest, "BAD_REQUEST"),
        (
            400,
            b'{"code": "INVALID_INPUT", "message": "path.file_id: bad", "request_id": "r",'
            b' "errors": [{"field": "path.file_id", "message": "bad"}]}',
            BadRequest,
            "INVALID_INPUT",
        ),
        (400, b'{"code": "INVALID_INPUT", "errors": "not a list"}', BadRequest, "INVALID_INPUT"),
        (401, _error("UNAUTHORIZED"), Unauthorized, "UNAUTHORIZED"),
        (403, _error("FORBIDDEN"), Forbidden, "FORBIDDEN"),
        (404, _error("NOT_FOUND"), NotFound, "NOT_FOUND"),
        (413, _error("PAYLOAD_TOO_LARGE"), PayloadTooLarge, "PAYLOAD_TOO_LARGE"),
        (416, _error("RANGE_NOT_SATISFIABLE"), RangeNotSatisfiable, "RANGE_NOT_SATISFIABLE"),
        (416, _error("INVALID_RANGE"), RangeNotSatisfiable, "INVALID_RANGE"),
        (
            422,
            b'{"detail": [{"loc": ["body", "file"], "msg": "Field required"}]}',
            BadRequest,
            None,
        ),
        (507, _error("INSUFFICIENT_STORAGE"), InsufficientStorage, "INSUFFICIENT_STORAGE"),
        (409, _error("CONFLICT"), UnexpectedStatus, "CONFLICT"),
        (404, _error("GONE_FOR_GOOD", request_id=None), NotFound, "GONE_FOR_GOOD"),
        (418, b"I'm a teapot", UnexpectedStatus, None),
        (302, b"", UnexpectedStatus, None),
        (202, b"{}", UnexpectedStatus, None),
    ],
)
def test_each_error_status_maps_to_its_typed_error(
    bank: Bank, status: int, body: bytes, kind: type[DataBankError], code: str | None
) -> None:
    bank.faults.add(Fault(kind="answer", status=status, body=body, path="/files/"))

    with pytest.raises(kind) as caught:
        bank.client().info(MISSING)

    assert type(caught.value) is kind
    assert caught.value.status == status
    assert caught.value.code == code
    assert len(bank.faults.requests("GET", f"/files/{MISSING}/info")) == 1


def test_a_fastapi_422_is_reported_with_its_detail(bank: Bank) -> None:
    detail = b'{"detail": [{"loc": ["body", "file"], "msg": "Field required"}]}'
    bank.faults.add(Fault(kind="answer", status=422, body=detail, method="POST"))

    with pytest.raises(BadRequest) as caught:
        bank.client().upload(lambda: [b"x"])

    assert "Field required" in str(caught.value)
    assert caught.value.code is None


@pytest.mark.parametrize(
    ("status", "body", "content_type"),
    [
        (500, _error("INTERNAL_ERROR"), "application/json"),
        (500, b"Internal Server Error", "text/plain; charset=utf-8"),
        (502, b"<html>bad gateway</html>", "text/html"),
        (503, b"", "text/plain"),
        (429, _error("RATE_LIMITED", request_id=None), "application/json"),
        (408, _error("REQUEST_TIMEOUT"), "application/json"),
    ],
)
def test_429_and_5xx_are_retried_then_transient(
    bank: Bank, status: int, body: bytes, content_type: str
) -> None:
    headers = (("content-type", content_type),)
    bank.faults.add(Fault(kind="answer", status=status, body=body, headers=headers, times=3))

    with pytest.raises(TransientError) as caught:
        bank.client().info(MISSING)

    assert caught.value.attempts == 3
    assert caught.value.status == status
    assert len(bank.faults.requests("GET", f"/files/{MISSING}/info")) == 3
    assert caught.value.request_id is not None


def test_a_plain_text_error_body_is_quoted_not_parsed(bank: Bank) -> None:
    headers = (("content-type", "text/plain"),)
    bank.faults.add(Fault(kind="answer", status=404, body=b"no such thing", headers=headers))

    with pytest.raises(NotFound) as caught:
        bank.client().info(MISSING)

    assert "no such thing" in str(caught.value)
    assert caught.value.code is None


def test_an_unreachable_server_is_transient_after_every_attempt() -> None:
    with (
        DataBankClient("http://127.0.0.1:9", KEY, retry=FAST) as client,
        pytest.raises(TransientError) as caught,
    ):
        client.info(MISSING)

    assert caught.value.attempts == 3
    assert "ConnectError" in str(caught.value)


def test_an_unreachable_server_fails_a_download_as_transient(tmp_path: Path) -> None:
    with (
        DataBankClient("http://127.0.0.1:9", KEY, retry=FAST) as client,
        pytest.raises(TransientError) as caught,
    ):
        client.download_to(MISSING, tmp_path / "copy")

    assert caught.value.attempts == 3
    assert "ConnectionRefusedError" in str(caught.value)
    assert list(tmp_path.iterdir()) == []


def _on_both_paths(
    client: DataBankClient, kind: type[DataBankError], target: Path
) -> tuple[str, str]:
    """What `info` (on httpx) and `download_to` (on http.client) each raise, as text."""
    with pytest.raises(kind) as calling:
        client.info(MISSING)
    with pytest.raises(kind) as downloading:
        client.download_to(MISSING, target)
    return str(calling.value), str(downloading.value)


def test_a_url_the_client_cannot_speak_is_a_protocol_error(tmp_path: Path) -> None:
    with DataBankClient("ftp://127.0.0.1:9", KEY) as client:
        calling, downloading = _on_both_paths(client, ProtocolError, tmp_path / "copy")

    assert "UnsupportedProtocol" in calling
    assert "unsupported URL scheme 'ftp'" in downloading
    assert list(tmp_path.iterdir()) == []


def test_tls_to_a_server_without_it_is_transient_on_every_path(bank: Bank, tmp_path: Path) -> None:
    tls_url = bank.url.replace("http://", "https://")

    with DataBankClient(tls_url, KEY, retry=FAST) as client:
        calling, downloading = _on_both_paths(client, TransientError, tmp_path / "copy")

    assert "ConnectError" in calling
    assert "SSLError" in downloading
    assert bank.faults.requests("GET", f"/files/{MISSING}") == []


def test_deleting_a_missing_file_on_a_strict_server_is_not_found(make_bank: MakeBank) -> None:
    bank = make_bank(strict_delete=True)

    with pytest.raises(NotFound):
        bank.client().delete(MISSING)

    assert len(bank.faults.requests("DELETE", f"/files/{MISSING}")) == 1


def test_a_huge_error_body_is_read_only_in_part(bank: Bank, tmp_path: Path) -> None:
    body = b"x" * (1 << 20)
    headers = (("content-type", "text/plain"),)
    bank.faults.add(Fault(kind="answer", status=404, body=body, headers=headers, times=2))

    calling, downloading = _on_both_paths(bank.client(), NotFound, tmp_path / "copy")

    assert len(calling) < 1000
    assert len(downloading) < 1000
    assert list(tmp_path.iterdir()) == []


def test_a_head_answer_without_etag_has_none(bank: Bank) -> None:
    headers = (("content-length", "12"), ("content-type", "text/plain"))
    bank.faults.add(Fault(kind="answer", status=200, method="HEAD", headers=headers))

    head = bank.client().head(MISSING)

    assert (head.size, head.content_type, head.etag) == (12, "text/plain", None)


def test_proxies_named_in_the_environment_are_not_used(
    bank: Bank, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("HTTP_PROXY", "http_proxy", "ALL_PROXY"):
        monkeypatch.setenv(name, "http://127.0.0.1:9")
    data = os.urandom(1000)

    with DataBankClient(bank.url, KEY, retry=FAST) as client:
        info = client.upload(lambda: [data])
        client.download_to(info.file_id, tmp_path / "copy")

    assert (tmp_path / "copy").read_bytes() == data
    assert len(bank.faults.requests("GET", f"/files/{info.file_id}")) == 1
