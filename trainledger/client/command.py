"""`client_command`: a client command with the shared options, every failure turned into
one line on stderr and a non-zero exit.

The shared options are added to each command's signature (typer reads signatures), so they
go where users put them, after the command (`trainledger runs list --json`); the command
itself receives a `Session` built from them as its first argument.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Annotated, Literal

import typer
from pydantic import SecretStr

from trainledger.client.errors import ClientError, RunEndedError
from trainledger.client.output import Output
from trainledger.client.session import Endpoints, Session
from trainledger.version import VersionOption

Service = Literal["api", "inference", "databank"]
Command = Callable[..., None]

PANEL = "Connection and output"
DEFAULT_API_URL = "http://127.0.0.1:8000"
DEFAULT_INFERENCE_URL = "http://127.0.0.1:8020"
DEFAULT_DATABANK_URL = "http://127.0.0.1:8010"
RUN_ENDED = 3
"""Exit status of a watched run that ended other than `completed` (1: the command failed)."""


def _option(name: str, annotation: object, default: object) -> inspect.Parameter:
    return inspect.Parameter(
        name, inspect.Parameter.KEYWORD_ONLY, default=default, annotation=annotation
    )


_API_KEY = _option(
    "api_key",
    Annotated[
        str | None,
        typer.Option(
            envvar="TRAINLEDGER_API_KEY",
            help="Sent as X-API-Key (SECURITY__API_KEY of the API and the inference service).",
            rich_help_panel=PANEL,
            show_default=False,
        ),
    ],
    None,
)
_API = [
    _option(
        "api_url",
        Annotated[
            str, typer.Option(envvar="TRAINLEDGER_API_URL", help="The API.", rich_help_panel=PANEL)
        ],
        DEFAULT_API_URL,
    ),
    _API_KEY,
]
_SERVICES: dict[Service, list[inspect.Parameter]] = {
    "api": _API,
    "inference": [
        _option(
            "inference_url",
            Annotated[
                str,
                typer.Option(
                    envvar="TRAINLEDGER_INFERENCE_URL",
                    help="The inference service.",
                    rich_help_panel=PANEL,
                ),
            ],
            DEFAULT_INFERENCE_URL,
        ),
        _API_KEY,
    ],
    "databank": [
        _option(
            "databank_url",
            Annotated[
                str,
                typer.Option(
                    envvar="TRAINLEDGER_DATABANK_URL",
                    help="Data Bank (key: TRAINLEDGER_DATABANK_KEY, else var/databank.key).",
                    rich_help_panel=PANEL,
                ),
            ],
            DEFAULT_DATABANK_URL,
        )
    ],
}
_JSON = _option(
    "json_output",
    Annotated[
        bool, typer.Option("--json", help="Machine output (JSON) on stdout.", rich_help_panel=PANEL)
    ],
    False,
)


_VERSION = _option("version", VersionOption, False)


def client_command(*, uses: tuple[Service, ...] = ("api",)) -> Callable[[Command], Command]:
    """The decorated `function(session, ...)` as a typer command taking the options of the
    services it `uses`, `--json` and `--version`; register the result with `app.command(name)`."""
    # one option of each name (the API key serves the API and the inference service)
    named = {parameter.name: parameter for service in uses for parameter in _SERVICES[service]}
    shared = list(named.values())
    shared += [_JSON, _VERSION]

    def decorate(function: Command) -> Command:
        signature = inspect.signature(function, eval_str=True)
        own = list(signature.parameters.values())[1:]  # the first is the session

        @functools.wraps(function)
        def wrapper(**options: object) -> None:
            session = _session({p.name: options.pop(p.name) for p in shared})
            with failures_reported():
                function(session, **options)

        # typer reads the signature: the command's own parameters, then the shared options
        wrapper.__dict__["__signature__"] = signature.replace(parameters=[*own, *shared])
        return wrapper

    return decorate


def _session(options: dict[str, object]) -> Session:
    key = options.get("api_key")
    endpoints = Endpoints(
        api_url=str(options.get("api_url", DEFAULT_API_URL)),
        inference_url=str(options.get("inference_url", DEFAULT_INFERENCE_URL)),
        databank_url=str(options.get("databank_url", DEFAULT_DATABANK_URL)),
        api_key=SecretStr(key) if isinstance(key, str) and key else None,
    )
    return Session(endpoints, Output(json_output=options["json_output"] is True))


@contextmanager
def failures_reported() -> Iterator[None]:
    """Turn a `ClientError` (or an `OSError` on a local file) into `error: <message>` on
    stderr and exit status 1 (`RUN_ENDED` for a watched run that did not complete)."""
    try:
        yield
    except RunEndedError as error:
        typer.echo(f"error: {error.message}", err=True)
        raise typer.Exit(RUN_ENDED) from None
    except ClientError as error:
        typer.echo(f"error: {error.message}", err=True)
        raise typer.Exit(1) from None
    except OSError as error:
        where = f": {error.filename}" if error.filename else ""
        typer.echo(f"error: {error.strerror or error}{where}", err=True)
        raise typer.Exit(1) from None
