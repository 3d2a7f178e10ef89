"""Clients that are slow or many cannot hold the local server: its uvicorn configuration."""

from __future__ import annotations

import socket
from contextlib import ExitStack

import httpx
import pytest

from databank.server import DataBankServerSettings, ServingLimits, create_app, server_config
from tests.databank.conftest import KEY
from tests.databank.serving import running
from tests.waiting import wait_until

HEALTH = b"GET /healthz HTTP/1.1\r\nHost: bank\r\n\r\n"


def _start(stack: ExitStack, temp: pytest.TempPathFactory, limits: ServingLimits) -> str:
    settings = DataBankServerSettings(data_dir=temp.mktemp("bank"), upload_keys=(KEY,))
    app = create_app(settings)
    config = server_config(app, limits, host="127.0.0.1", port=0, log_level="warning")
    return stack.enter_context(running(app, config))


def _connect(url: str) -> socket.socket:
    host, port = url.removeprefix("http://").split(":")
    return socket.create_connection((host, int(port)), timeout=10)


def _read_until_closed(connection: socket.socket) -> bytes:
    answer = b""
    while chunk := connection.recv(65536):
        answer += chunk
    return answer


def test_a_client_that_stalls_in_its_headers_is_disconnected(
    stack: ExitStack, tmp_path_factory: pytest.TempPathFactory
) -> None:
    url = _start(stack, tmp_path_factory, ServingLimits(header_timeout_s=0.3))

    with _connect(url) as stalled, _connect(url) as silent:
        stalled.sendall(HEALTH[:-2])
        assert _read_until_closed(stalled) == b""
        assert _read_until_closed(silent) == b""


def test_keep_alive_and_pipelined_requests_are_served_then_the_idle_connection_closes(
    stack: ExitStack, tmp_path_factory: pytest.TempPathFactory
) -> None:
    url = _start(stack, tmp_path_factory, ServingLimits(header_timeout_s=0.3, keep_alive_s=60))

    with _connect(url) as connection:
        connection.sendall(HEALTH)
        first = connection.recv(65536)
        connection.sendall(HEALTH + HEALTH)
        rest = _read_until_closed(connection)

    assert first.startswith(b"HTTP/1.1 200")
    assert rest.count(b"HTTP/1.1 200") == 2


def test_connections_past_the_cap_are_refused_until_one_goes(
    stack: ExitStack, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """uvicorn counts the asking connection too: at a cap of 3, two open ones leave no room."""
    url = _start(stack, tmp_path_factory, ServingLimits(max_connections=3))

    with _connect(url), _connect(url) as second:
        wait_until(lambda: httpx.get(f"{url}/healthz").status_code == 503, what="the cap")
        second.close()
        wait_until(lambda: httpx.get(f"{url}/healthz").status_code == 200, what="a free slot")
