"""The version of trainledger, and the `--version` option every command group shares."""

from __future__ import annotations

from importlib import metadata
from typing import Annotated

import typer

DISTRIBUTION = "trainledger"
UNKNOWN = "0+unknown"
"""The version of a source tree that was never installed (PEP 440, sorts before any release)."""


def version(distribution: str = DISTRIBUTION) -> str:
    """The installed distribution's version: the one `pip` (and the lock) recorded."""
    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return UNKNOWN


def show_version(value: bool) -> None:
    """Eager `--version`: print `trainledger <version>` and exit 0 before anything else runs."""
    if value:
        typer.echo(f"{DISTRIBUTION} {version()}")
        raise typer.Exit()


VersionOption = Annotated[
    bool,
    typer.Option(
        "--version", callback=show_version, is_eager=True, help="Print the version and exit."
    ),
]


def _group(version: VersionOption = False) -> None:
    # no docstring: typer would show it as the help of a group that has none of its own
    pass


def versioned(app: typer.Typer) -> typer.Typer:
    """`app` and every group under it with `--version`.

    A group has one callback: one without a callback is given a callback that takes only
    `--version`; a group with its own callback takes `version: VersionOption = False` itself
    (the tests try `--version` on every group).
    """
    if app.registered_callback is None:
        app.callback()(_group)
    for group in [info.typer_instance for info in app.registered_groups if info.typer_instance]:
        versioned(group)
    return app
