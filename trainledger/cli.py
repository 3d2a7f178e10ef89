"""The `trainledger` command line: one typer app, one sub-command per service."""

from __future__ import annotations

import typer

from trainledger import (
    client,
    databank_cli,
    dlq_cli,
    inference_cli,
    local_cli,
    services_cli,
    worker_cli,
)
from trainledger.version import VersionOption, versioned

app = typer.Typer(
    help="Train small language models; every artifact lives in Data Bank, coordinated by an event log.",
    no_args_is_help=True,
    add_completion=False,
)
app.add_typer(dlq_cli.app, name="dlq")
app.command("databank")(databank_cli.serve)
app.command("api")(services_cli.api)
app.command("projector")(services_cli.projector)
app.command("rebuild")(services_cli.rebuild)
app.command("inference")(inference_cli.inference)
app.command("worker")(worker_cli.worker)
app.command("up")(local_cli.up)
app.command("demo")(local_cli.demo)
client.register(app)  # the client commands: train, runs, corpus, tokenizers, artifact, ...


@app.callback()
def main(version: VersionOption = False) -> None:
    """trainledger: an event log on Redis Streams coordinating training and Data Bank."""


versioned(app)  # last: every group added above gets `--version` too
