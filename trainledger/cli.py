"""The `trainledger` command line: one typer app, one sub-command per service."""

from __future__ import annotations

import typer

app = typer.Typer(help="Train small language models; artifacts live in Data Bank.", no_args_is_help=True)


@app.callback()
def main() -> None:
    """trainledger: an event log on Redis Streams coordinating training and Data Bank."""
