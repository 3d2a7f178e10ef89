"""Where the services are and how a command talks to them: the options every client command
shares (`--api-url`, `--api-key`, `--inference-url`, `--databank-url`, `--json`), their
environment variables, and the Data Bank key that `trainledger up` writes."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import httpx
from pydantic import SecretStr

from trainledger.client.errors import ClientError
from trainledger.client.http import HttpClient
from trainledger.client.output import Output

KEY_ENV = "TRAINLEDGER_DATABANK_KEY"
KEY_FILE = Path("var/databank.key")
"""Relative to the working directory: where `trainledger up` (default `--root var`) keeps it."""


def http_url(value: str, option: str) -> str:
    """`value` when it is an http(s) URL; a `ClientError` naming `option` otherwise."""
    try:
        url = httpx.URL(value)
    except httpx.InvalidURL:
        url = httpx.URL()
    if url.scheme not in ("http", "https") or not url.host:
        raise ClientError(f"{option} must be an http:// or https:// URL, not {value!r}")
    return value


@dataclass(frozen=True)
class Endpoints:
    """The services' addresses and the API key (checked when a client is made)."""

    api_url: str
    inference_url: str
    databank_url: str
    api_key: SecretStr | None = None


@dataclass(frozen=True)
class Session:
    """What a client command is handed: the endpoints and where to write."""

    endpoints: Endpoints
    out: Output

    def api(self) -> HttpClient:
        """A client of the API, sending the API key when there is one."""
        key = self.endpoints.api_key
        return HttpClient(
            "the API",
            http_url(self.endpoints.api_url, "--api-url"),
            api_key=key.get_secret_value() if key else None,
        )

    def inference(self, timeout: float) -> HttpClient:
        """A client of the inference service, sending the API key when there is one
        (generation loads a model: a longer timeout)."""
        url = http_url(self.endpoints.inference_url, "--inference-url")
        key = self.endpoints.api_key
        return HttpClient(
            "the inference service",
            url,
            api_key=key.get_secret_value() if key else None,
            timeout=timeout,
        )

    def databank_url(self) -> str:
        """The Data Bank's address, checked."""
        return http_url(self.endpoints.databank_url, "--databank-url")


def databank_key() -> str | None:
    """`TRAINLEDGER_DATABANK_KEY`, else the key `trainledger up` keeps in `var/databank.key`."""
    given = os.environ.get(KEY_ENV)
    if given:
        return given
    if KEY_FILE.is_file():
        return KEY_FILE.read_text().strip() or None
    return None
