"""Faults injected between the client and a real server: each ends in a retry that succeeds or
in the right typed error, and never leaves a partial file at the destination."""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from databank import (
    IntegrityError,
    InvalidAnswer,
    Timeouts,
    TransientError,
    UnexpectedStatus,
)
from tests.databank.conftest import Bank, MakeBank
from tests.databank.faults import Fault
from tests.waiting import wait_until

MIB = 1 << 20
SHORT = Timeouts(connect=2, read=0.5, upload=0.5)


def _upload(bank: Bank, data: bytes) -> str:
    return bank.client().upload(lambda: [data]).file_id


def _only(directory: Path, *names: str) -> None:
    assert sorted(path.name for path in directory.iterdir()) == sorted(names)


def test_a_500_before_each_call_is_retried_away(bank: Bank, tmp_path: Path) -> None:
    data = os.urandom(1000)
    source = tmp_path / "source"
    source.write_bytes(data)
    client = bank.client()
    for method in ("POST", "HEAD", "GET", "DELETE"):
        bank.faults.add(Fault(kind="answer", method=method, body=b'{"code":"INTERNAL_ERROR"}'))
    bank.faults.add(Fault(kind="answer", method="GET", body=b"oops"))

    info = client.upload(source)
    head = client.head(info.file_id)
    again = client.info(info.file_id)
    client.download_to(info.file_id, tmp_path / "copy")
    client.delete(info.file_id)

    assert (head.size, again) == (1000, info)
    assert (tmp_path / "copy").read_bytes() == data
    assert len(bank.faults.requests("POST", "/files")) == 2
    assert len(bank.faults.requests("DELETE", f"/files/{info.file_id}")) == 2


def test_a_download_dropped_mid_body_resumes_from_where_it_stopped(
    any_bank: Bank, tmp_path: Path
) -> None:
    data = os.urandom(3 * MIB)
    file_id = _upload(any_bank, data)
    any_bank.faults.add(Fault(kind="cut", method="GET", after_bytes=MIB + 5))

    any_bank.client().download_to(file_id, tmp_path / "copy")

    assert (tmp_path / "copy").read_bytes() == data
    ranges = [seen.range for seen in any_bank.faults.requests("GET", f"/files/{file_id}")]
    assert ranges == [None, f"bytes={MIB + 5}-"]
    _only(tmp_path, "copy")


def test_a_download_answered_without_a_length_is_read_to_its_end_and_verified(
    bank: Bank, tmp_path: Path
) -> None:
    data = os.urandom(3 * MIB + 7)
    file_id = _upload(bank, data)
    chunked = (("content-type", "application/octet-stream"), ("content-length", ""))
    bank.faults.add(Fault(kind="answer", method="GET", status=200, body=data, headers=chunked))

    bank.client().download_to(file_id, tmp_path / "copy")

    assert (tmp_path / "copy").read_bytes() == data
    assert len(bank.faults.requests("GET", f"/files/{file_id}")) == 1


SIZE = 2 * MIB
CUT = 1000
_REFUSAL = json.dumps({"code": "INVALID_RANGE", "message": "no", "request_id": None}).encode()


@pytest.mark.parametrize(
    "refusal",
    [
        pytest.param(
            Fault(
                kind="answer",
                status=206,
                body=b"0123456789",
                headers=(("content-range", f"bytes 0-9/{SIZE}"),),
                ranged=True,
            ),
            id="another range",
        ),
        pytest.param(
            Fault(
                kind="answer",
                status=206,
                body=b"x" * (SIZE - CUT),
                headers=(("content-range", f"bytes {CUT}-{SIZE - 1}/{SIZE + 1}"),),
                ranged=True,
            ),
            id="another total size",
        ),
        pytest.param(
            Fault(kind="answer", status=416, body=_REFUSAL, ranged=True), id="416 INVALID_RANGE"
        ),
    ],
)
def test_a_resume_that_does_not_continue_restarts_from_zero(
    bank: Bank, tmp_path: Path, refusal: Fault
) -> None:
    data = os.urandom(SIZE)
    file_id = _upload(bank, data)
    bank.faults.add(Fault(kind="cut", method="GET", after_bytes=CUT))
    bank.faults.add(refusal)

    bank.client().download_to(file_id, tmp_path / "copy")

    assert (tmp_path / "copy").read_bytes() == data
    ranges = [seen.range for seen in bank.faults.requests("GET", f"/files/{file_id}")]
    assert ranges == [None, f"bytes={CUT}-", None]


def test_a_resume_answered_with_the_whole_file_starts_over_with_that_answer(
    bank: Bank, tmp_path: Path
) -> None:
    data = os.urandom(2 * MIB)
    file_id = _upload(bank, data)
    bank.faults.add(Fault(kind="cut", method="GET", after_bytes=MIB))
    whole = (("content-type", "application/octet-stream"),)
    bank.faults.add(Fault(kind="answer", status=200, body=data, headers=whole, ranged=True))

    bank.client().download_to(file_id, tmp_path / "copy")

    assert (tmp_path / "copy").read_bytes() == data
    assert len(bank.faults.requests("GET", f"/files/{file_id}")) == 2


def test_a_download_that_keeps_dropping_is_transient_and_leaves_nothing(
    bank: Bank, tmp_path: Path
) -> None:
    file_id = _upload(bank, os.urandom(2 * MIB))
    bank.faults.add(Fault(kind="cut", method="GET", after_bytes=100, times=3))

    with pytest.raises(TransientError) as caught:
        bank.client().download_to(file_id, tmp_path / "copy")

    assert caught.value.attempts == 3
    assert "connection closed" in str(caught.value)
    _only(tmp_path)


def test_downloaded_bytes_that_do_not_match_the_id_are_an_integrity_error(
    bank: Bank, tmp_path: Path
) -> None:
    file_id = _upload(bank, os.urandom(1000))
    headers = (("content-type", "application/octet-stream"),)
    bank.faults.add(Fault(kind="answer", status=200, body=b"x" * 1000, headers=headers))
    (tmp_path / "copy").write_bytes(b"previous")

    with pytest.raises(IntegrityError):
        bank.client().download_to(file_id, tmp_path / "copy")

    assert (tmp_path / "copy").read_bytes() == b"previous"
    _only(tmp_path, "copy")


def test_a_partial_answer_to_a_plain_get_is_unexpected(bank: Bank, tmp_path: Path) -> None:
    file_id = _upload(bank, os.urandom(100))
    headers = (("content-range", "bytes 0-9/100"),)
    bank.faults.add(Fault(kind="answer", status=206, body=b"0123456789", headers=headers))

    with pytest.raises(UnexpectedStatus):
        bank.client().download_to(file_id, tmp_path / "copy")

    _only(tmp_path)


def test_answers_slower_than_the_timeout_are_retried(bank: Bank, tmp_path: Path) -> None:
    data = os.urandom(5000)
    client = bank.client(timeouts=SHORT)
    bank.faults.add(Fault(kind="hang", method="POST", effect=True))
    info = client.upload(lambda: [data])
    bank.faults.add(Fault(kind="hang", method="GET"))
    bank.faults.add(Fault(kind="hang", method="HEAD"))

    client.download_to(info.file_id, tmp_path / "copy")
    head = client.head(info.file_id)

    assert (tmp_path / "copy").read_bytes() == data
    assert head.size == 5000
    assert len(bank.faults.requests("POST", "/files")) == 2


def test_answers_that_never_come_are_transient(bank: Bank) -> None:
    bank.faults.add(Fault(kind="hang", times=3))

    with pytest.raises(TransientError) as caught:
        bank.client(timeouts=SHORT).info("1" * 64)

    assert caught.value.attempts == 3
    assert "ReadTimeout" in str(caught.value)


def test_a_delete_whose_answer_was_lost_succeeds_on_a_strict_server(make_bank: MakeBank) -> None:
    bank = make_bank(strict_delete=True)
    client = bank.client(timeouts=SHORT)
    info = client.upload(lambda: [b"delete me"])
    bank.faults.add(Fault(kind="hang", method="DELETE", effect=True))

    client.delete(info.file_id)

    assert len(bank.faults.requests("DELETE", f"/files/{info.file_id}")) == 2


def test_an_upload_whose_answer_was_cut_is_retried_and_replays_the_source(bank: Bank) -> None:
    data = os.urandom(3 * MIB)
    calls = 0

    def chunks() -> Iterator[bytes]:
        nonlocal calls
        calls += 1
        yield from (data[start : start + MIB] for start in range(0, len(data), MIB))

    bank.faults.add(Fault(kind="cut", method="POST", after_bytes=10))

    info = bank.client().upload(chunks)

    assert info.file_id == hashlib.sha256(data).hexdigest()
    assert calls == 2


def test_an_upload_answer_that_is_not_json_is_invalid(bank: Bank) -> None:
    bank.faults.add(Fault(kind="answer", status=201, body=b"<html>created</html>", method="POST"))

    with pytest.raises(InvalidAnswer) as caught:
        bank.client().upload(lambda: [b"x"])

    assert "json" in str(caught.value).lower()
    assert len(bank.faults.requests("POST", "/files")) == 1


@pytest.mark.parametrize("body", [b"[]", b"null", b'{"size": 1}', b'{"file_id": "abc"}'])
def test_an_upload_answer_of_the_wrong_shape_is_invalid(bank: Bank, body: bytes) -> None:
    bank.faults.add(Fault(kind="answer", status=201, body=body, method="POST"))

    with pytest.raises(InvalidAnswer):
        bank.client().upload(lambda: [b"x"])


def test_an_upload_answer_without_file_id_names_it(bank: Bank) -> None:
    body = (
        b'{"size": 1, "sha256": "x", "content_type": "a/b", "created_at": "2024-01-01T00:00:00Z"}'
    )
    bank.faults.add(Fault(kind="answer", status=201, body=body, method="POST"))

    with pytest.raises(InvalidAnswer) as caught:
        bank.client().upload(lambda: [b"x"])

    assert "file_id" in str(caught.value)


@pytest.mark.parametrize(
    ("file_id", "size"), [("0" * 64, 1), (hashlib.sha256(b"x").hexdigest(), 2)]
)
def test_an_upload_answer_that_is_not_the_sha256_sent_is_an_integrity_error(
    bank: Bank, file_id: str, size: int
) -> None:
    answer = {
        "file_id": file_id,
        "size": size,
        "sha256": file_id,
        "content_type": "application/octet-stream",
        "created_at": "2024-01-01T00:00:00Z",
    }
    bank.faults.add(Fault(kind="answer", status=201, body=json.dumps(answer).encode()))

    with pytest.raises(IntegrityError) as caught:
        bank.client().upload(lambda: [b"x"])

    assert hashlib.sha256(b"x").hexdigest() in str(caught.value)


def test_a_head_answer_without_a_length_is_invalid(bank: Bank) -> None:
    headers = (("content-length", ""), ("etag", '"abc"'))
    bank.faults.add(Fault(kind="answer", status=200, method="HEAD", headers=headers))

    with pytest.raises(InvalidAnswer):
        bank.client().head("2" * 64)


def test_a_source_that_fails_mid_upload_leaves_nothing_on_the_server(bank: Bank) -> None:
    class SourceFailedError(Exception):
        pass

    def chunks() -> Iterator[bytes]:
        yield os.urandom(MIB)
        wait_until(lambda: bank.partials() != [], what="the server to start receiving")
        raise SourceFailedError

    with pytest.raises(SourceFailedError):
        bank.client().upload(chunks)

    wait_until(lambda: bank.partials() == [], what="the server to drop the partial upload")
    assert len(bank.faults.requests("POST", "/files")) == 1


def test_a_slow_answer_is_waited_for_and_counted(bank: Bank) -> None:
    bank.faults.add(Fault(kind="delay", method="POST", path="/files", delay_s=0.3))

    file_id = _upload(bank, b"slow")

    assert bank.client().info(file_id).size == 4
    assert bank.faults.applied["delay"] == 1
    assert len(bank.faults.requests("POST", "/files")) == 1  # waited for, not retried


def test_an_outage_refuses_every_request_until_it_ends(bank: Bank) -> None:
    file_id = _upload(bank, b"before")
    bank.faults.outage(60)
    with pytest.raises(TransientError):
        bank.client().info(file_id)
    refused = bank.faults.applied["outage"]

    bank.faults.outage(0)

    assert refused == 3  # each of the client's attempts
    assert bank.client().info(file_id).size == 6
