"""JSON-lines logs: one object per line, extras kept, secrets masked."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import pytest

from httpservice import JsonFormatter, configure_logging, mask_also


@pytest.fixture
def captured() -> Iterator[io.StringIO]:
    root = logging.getLogger()
    saved = (root.handlers[:], root.level)
    stream = io.StringIO()
    configure_logging(
        "worker", level="DEBUG", secrets=["s3cret", "", None, 'q"uote'], stream=stream
    )
    yield stream
    root.handlers[:], level = saved
    root.setLevel(level)


def test_records_are_json_lines_with_extras(captured: io.StringIO) -> None:
    logging.getLogger("trainledger.test").info(
        "artifact uploaded",
        extra={
            "event": "artifact_uploaded",
            "request_id": "req-1",
            "run_id": "r1",
            "file_id": "f" * 64,
            "other": object(),
        },
    )
    [line] = captured.getvalue().splitlines()
    record = json.loads(line)
    assert record["message"] == "artifact uploaded"
    assert (record["service"], record["event"], record["run_id"]) == (
        "worker",
        "artifact_uploaded",
        "r1",
    )
    assert record["level"] == "info"
    assert record["request_id"] == "req-1"
    assert "other" not in record
    assert "category" not in record


def test_secrets_are_masked_and_exceptions_kept(captured: io.StringIO) -> None:
    try:
        raise RuntimeError("key s3cret leaked")
    except RuntimeError:
        logging.getLogger("x").exception("failed with s3cret")
    record = json.loads(captured.getvalue())
    assert "s3cret" not in captured.getvalue()
    assert record["message"] == "failed with ***"
    assert "RuntimeError" in record["exception"]


def test_a_secret_learned_later_is_masked_from_then_on(captured: io.StringIO) -> None:
    plain = logging.StreamHandler(io.StringIO())  # a handler of someone else's: left alone
    logging.getLogger().addHandler(plain)
    mask_also("late-key")
    logging.getLogger("x").warning("late-key and s3cret")
    assert json.loads(captured.getvalue())["message"] == "*** and ***"
    assert plain.formatter is None


def test_noisy_http_loggers_are_quieted(captured: io.StringIO) -> None:
    logging.getLogger("httpx").info("GET /files")
    assert captured.getvalue() == ""


def test_a_secret_json_would_escape_is_masked_too(captured: io.StringIO) -> None:
    logging.getLogger("x").warning('bad key q"uote')
    assert json.loads(captured.getvalue())["message"] == "bad key ***"


def test_the_formatter_names_its_service() -> None:
    record = logging.LogRecord("a", logging.ERROR, __file__, 1, "m", None, None)
    assert json.loads(JsonFormatter("api").format(record))["service"] == "api"


def test_loggers_with_their_own_handlers_come_through_as_json() -> None:
    library = logging.getLogger("tests.library")
    library.addHandler(logging.StreamHandler(io.StringIO()))
    library.propagate = False
    logging.getLogger("tests.unnamed.child")  # "tests.unnamed" is a placeholder: skipped
    stream = io.StringIO()
    configure_logging("api", stream=stream)
    library.warning("plain no more")
    assert json.loads(stream.getvalue())["message"] == "plain no more"
    assert library.handlers == []
