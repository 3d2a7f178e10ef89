"""The deployed service's quirks, emulated on the local server, and the client tolerating them.

Raw requests show each quirk is there (so the emulation is real); client calls show it does
not hurt.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import httpx
import pytest

from databank import EMPTY_FILE_ID, NotFound, Unauthorized
from tests.databank.conftest import KEY, Bank
from tests.databank.faults import Fault

AUTH = {"X-API-Key": KEY}


@pytest.fixture
def deployed(deployed_bank: Bank) -> Bank:
    return deployed_bank


@pytest.fixture
def local(bank: Bank) -> Bank:
    return bank


def test_etag_is_the_bare_sha256_on_both_servers_and_read_either_way(
    deployed: Bank, local: Bank
) -> None:
    data = os.urandom(64)
    file_ids = {deployed.client().upload(lambda: [data]).file_id}
    file_id = local.client().upload(lambda: [data]).file_id
    file_ids.add(file_id)

    raw_deployed = httpx.head(f"{deployed.url}/files/{file_id}", headers=AUTH)
    raw_local = httpx.head(f"{local.url}/files/{file_id}", headers=AUTH)
    quoted = (("content-length", "64"), ("etag", f'"{file_id}"'))
    local.faults.add(Fault(kind="answer", status=200, method="HEAD", headers=quoted))

    assert file_ids == {file_id}
    assert raw_deployed.headers["etag"] == raw_local.headers["etag"] == file_id
    assert local.client().head(file_id).etag == file_id  # the quoted answer injected above
    assert deployed.client().head(file_id).etag == local.client().head(file_id).etag == file_id


def test_created_at_may_be_null(deployed: Bank) -> None:
    data = os.urandom(32)
    stored = deployed.client().upload(lambda: [data])
    legacy = stored.model_dump(mode="json") | {"created_at": None}
    deployed.faults.add(
        Fault(kind="answer", status=200, method="GET", body=json.dumps(legacy).encode())
    )

    info = deployed.client().info(stored.file_id)

    assert info.created_at is None
    assert info.model_copy(update={"created_at": stored.created_at}) == stored


def test_suffix_ranges_are_served_wrongly_so_the_client_never_sends_them(
    deployed: Bank, local: Bank, tmp_path: Path
) -> None:
    data = os.urandom(2 << 20)
    file_id = deployed.client().upload(lambda: [data]).file_id
    local.client().upload(lambda: [data])
    suffix = {"Range": "bytes=-10", **AUTH}

    wrong = httpx.get(f"{deployed.url}/files/{file_id}", headers=suffix)
    right = httpx.get(f"{local.url}/files/{file_id}", headers=suffix)
    deployed.faults.reset()
    deployed.faults.add(Fault(kind="cut", method="GET", after_bytes=len(data) - 10))
    deployed.client().download_to(file_id, tmp_path / "copy")

    assert wrong.content == data[:11]
    assert right.content == data[-10:]
    assert (tmp_path / "copy").read_bytes() == data
    ranges = [seen.range for seen in deployed.faults.requests("GET", f"/files/{file_id}")]
    assert ranges == [None, f"bytes={len(data) - 10}-"]


def test_malformed_ids_and_empty_files_answer_a_plain_text_500(
    deployed: Bank, tmp_path: Path
) -> None:
    client = deployed.client()
    client.upload(lambda: [])

    malformed = httpx.get(f"{deployed.url}/files/abc", headers=AUTH)
    empty = httpx.get(f"{deployed.url}/files/{EMPTY_FILE_ID}", headers=AUTH)
    client.download_to(EMPTY_FILE_ID, tmp_path / "empty")

    for answer in (malformed, empty):
        assert answer.status_code == 500
        assert answer.headers["content-type"].startswith("text/plain")
        assert answer.text == "Internal Server Error"
    assert (tmp_path / "empty").read_bytes() == b""


def test_a_post_without_a_file_part_is_a_422_before_the_key_check(
    deployed: Bank, local: Bank
) -> None:
    fields = {"other": "field"}
    files = {"not_file": ("a", b"x")}

    quirky = httpx.post(f"{deployed.url}/files", data=fields, files=files)
    correct = httpx.post(f"{local.url}/files", data=fields, files=files)

    assert quirky.status_code == 422
    assert quirky.json()["detail"][0]["loc"] == ["body", "file"]
    assert correct.status_code == 401
    with pytest.raises(Unauthorized):
        deployed.client("").upload(lambda: [b"x"])


def test_range_errors_come_as_invalid_range(deployed: Bank, local: Bank) -> None:
    file_id = deployed.client().upload(lambda: [b"0123456789"]).file_id
    local.client().upload(lambda: [b"0123456789"])
    beyond = {"Range": "bytes=10-", **AUTH}

    quirky = httpx.get(f"{deployed.url}/files/{file_id}", headers=beyond)
    correct = httpx.get(f"{local.url}/files/{file_id}", headers=beyond)

    assert (quirky.status_code, quirky.json()["code"]) == (416, "INVALID_RANGE")
    assert (correct.status_code, correct.json()["code"]) == (416, "RANGE_NOT_SATISFIABLE")
    assert quirky.headers["content-range"] == correct.headers["content-range"] == "bytes */10"


def test_request_id_is_null_and_the_client_reports_its_own(deployed: Bank) -> None:
    missing = "9" * 64

    raw = httpx.get(f"{deployed.url}/files/{missing}/info", headers={"X-Request-ID": "r1", **AUTH})
    with pytest.raises(NotFound) as caught:
        deployed.client().info(missing)

    assert raw.json()["request_id"] is None
    assert "x-request-id" not in raw.headers
    sent = deployed.faults.requests("GET", f"/files/{missing}/info")[-1].request_id
    assert sent is not None
    assert caught.value.request_id == sent


def test_a_full_download_may_gain_a_charset(deployed: Bank, tmp_path: Path) -> None:
    data = os.urandom(100)
    client = deployed.client()
    file_id = client.upload(lambda: [data], content_type="text/plain").file_id

    raw = httpx.get(f"{deployed.url}/files/{file_id}", headers=AUTH)
    client.download_to(file_id, tmp_path / "copy")

    assert raw.headers["content-type"] == "text/plain; charset=utf-8"
    assert client.head(file_id).content_type == "text/plain"
    assert (tmp_path / "copy").read_bytes() == data
