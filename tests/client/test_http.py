"""The HTTP client's failures, each a one-line message: timeouts, broken and unreadable answers,
and a log stream that ends early (resumed with Last-Event-ID)."""

from __future__ import annotations

import json

import pytest

from tests.client.conftest import Cli, System
from tests.databank.faults import Fault
from trainledger.client.errors import UnreachableError
from trainledger.client.http import HttpClient
from trainledger.client.models import Run


def test_an_answer_that_is_not_the_expected_model(cli: Cli, system: System) -> None:
    system.api_faults.add(Fault(kind="answer", path="/runs/r1", status=200, body=b"{}"))
    assert cli.fails("runs", "show", "r1") == (
        "error: the API answered GET /runs/r1 with something that is not a Run: Field required"
    )


def test_an_error_answer_that_is_not_json(cli: Cli, system: System) -> None:
    system.api_faults.add(Fault(kind="answer", path="/runs/r1", status=502, body=b"bad gateway\n"))
    assert cli.fails("runs", "show", "r1") == "error: HTTP 502: the API answered: bad gateway"
    system.api_faults.add(Fault(kind="answer", path="/runs/r1", status=503, body=b""))
    assert cli.fails("runs", "show", "r1") == (
        "error: HTTP 503: the API answered: Service Unavailable"
    )


def test_a_connection_broken_mid_answer(cli: Cli, system: System, trained: str) -> None:
    system.api_faults.add(Fault(kind="cut", path=f"/runs/{trained}", after_bytes=5))
    assert cli.fails("runs", "show", trained).startswith(f"error: the API at {system.api_url}: ")


def test_a_service_that_does_not_answer_in_time(system: System) -> None:
    system.api_faults.reset()
    system.api_faults.add(Fault(kind="hang", path="/runs/r1"))
    with (
        HttpClient("the API", system.api_url, timeout=0.2) as api,
        pytest.raises(UnreachableError) as raised,
    ):
        api.get("/runs/r1", Run)
    assert raised.value.message == f"the API at {system.api_url} did not answer within 0.2 s"


def test_a_url_that_does_not_parse(cli: Cli) -> None:
    assert cli.fails("runs", "list", "--api-url", "http://[::1") == (
        "error: --api-url must be an http:// or https:// URL, not 'http://[::1'"
    )


def test_a_stream_that_ends_without_its_end_event_is_resumed(
    cli: Cli, system: System, trained: str
) -> None:
    whole = cli.ok("runs", "watch", trained, "--json").stdout.splitlines()
    first = whole[0]
    resumed_after = system.api.get(f"/runs/{trained}/logs", params={"follow": "false"})
    first_id = resumed_after.text.split("\n", 1)[0].removeprefix("id: ")
    body = f"id: {first_id}\ndata: {first}\n\n: waiting\n\nretry: 10\n\n".encode()
    system.api_faults.reset()
    system.api_faults.add(
        Fault(
            kind="answer",
            path=f"/runs/{trained}/logs",
            status=200,
            body=body,
            headers=(("content-type", "text/event-stream"),),
        )
    )
    assert cli.ok("runs", "watch", trained, "--json").stdout.splitlines() == whole
    assert json.loads(whole[-1])["status"] == "completed"
    assert len(system.api_faults.requests("GET", f"/runs/{trained}/logs")) == 2
