"""The client command line: thin clients of the HTTP APIs (the API, the inference service,
Data Bank), one module per command group.

`register` adds the groups (`corpus`, `runs`, `tokenizers`, `artifact`, `models`) and the commands
(`train`, `generate`, `gc`) to the `trainledger` app. Every command takes the shared
connection options and `--json` (`command`), and reports a failure in one line.
"""

from __future__ import annotations

import typer

from trainledger.client import aliases, artifact, corpus, gc, generate, runs, tokenizers, train


def register(app: typer.Typer) -> None:
    """Add the client commands to `app`."""
    app.command("train")(train.train)
    app.command("generate")(generate.generate)
    app.command("gc")(gc.gc)
    app.add_typer(corpus.app, name="corpus")
    app.add_typer(runs.app, name="runs")
    app.add_typer(tokenizers.app, name="tokenizers")
    app.add_typer(artifact.app, name="artifact")
    app.add_typer(aliases.app, name="models")
