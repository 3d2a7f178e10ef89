"""The `trainledger` command line: one typer app, one sub-command per service."""

from __future__ import annotations

import typer

from trainledger import databank_cli, dlq_cli

app = typer.Typer(
    help="Train small language models; every artifact lives in Data Bank, coordinated by an event log.",
    no_args_is_help=True,
)
app.add_typer(dlq_cli.app, name="dlq")
app.command("databank")(databank_cli.serve)


@app.callback()
def main() -> None:
    """trainledger: an event log on Redis Streams coordinating training and Data Bank."""
