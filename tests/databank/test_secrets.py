"""The API key never appears in a repr, an error message, or a log line."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

from databank import DataBankClient, DataBankError, Timeouts
from databank.server import DataBankServerSettings
from tests.databank.conftest import KEY, Bank
from tests.databank.faults import Fault


def test_reprs_do_not_show_keys(tmp_path: Path) -> None:
    client = DataBankClient("http://127.0.0.1:9", "secret-key-1")
    settings = DataBankServerSettings(data_dir=tmp_path, upload_keys=("secret-key-2",))

    assert "secret-key-1" not in repr(client)
    assert "127.0.0.1:9" in repr(client)
    assert "secret-key-2" not in repr(settings)
    assert "secret-key-2" not in str(settings.model_dump())
    client.close()


def test_no_failure_shows_the_key(
    bank: Bank, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    echo = json.dumps({"code": "NOT_FOUND", "message": f"unknown key {KEY}", "request_id": None})
    bank.faults.add(Fault(kind="answer", status=404, body=echo.encode(), path="/files/" + "1" * 64))
    bank.faults.add(
        Fault(
            kind="answer",
            status=500,
            body=f"oops {KEY}".encode(),
            times=3,
            path="/files/" + "2" * 64,
        )
    )
    bank.faults.add(Fault(kind="hang", times=3, path="/files/" + "3" * 64))
    client = bank.client(timeouts=Timeouts(read=0.3))
    errors: list[DataBankError] = []

    with caplog.at_level(logging.DEBUG):
        for call in (
            lambda: client.info("1" * 64),
            lambda: client.info("2" * 64),
            lambda: client.info("3" * 64),
            lambda: client.download_to("4" * 64, tmp_path / "x"),
            lambda: bank.client("wrong").upload(lambda: [b"x"]),
            lambda: client.info("not an id"),
        ):
            with pytest.raises(DataBankError) as caught:
                call()
            errors.append(caught.value)

    assert [type(error).__name__ for error in errors] == [
        "NotFound",
        "TransientError",
        "TransientError",
        "NotFound",
        "Forbidden",
        "InvalidFileId",
    ]
    assert "[redacted]" in str(errors[0])
    assert "[redacted]" in str(errors[1])
    for error in errors:
        assert KEY not in str(error)
        assert KEY not in repr(error)
        assert KEY not in str(error.__cause__)
    assert caplog.text
    assert KEY not in caplog.text
