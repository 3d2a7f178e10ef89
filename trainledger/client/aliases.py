"""`models`: name runs for serving (`name@alias`), move an alias back and forth, see history."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from trainledger.client.command import client_command
from trainledger.client.models import AliasAccepted, Model, ModelList
from trainledger.client.output import when
from trainledger.client.session import Session

app = typer.Typer(help="Models: aliases that name the run to serve.", no_args_is_help=True)

Name = Annotated[str, typer.Argument(help="The model's name.", show_default=False)]
AliasName = Annotated[str, typer.Argument(help="The alias (e.g. production).", show_default=False)]


@app.command("alias")
@client_command()
def alias(
    session: Session,
    name: Name,
    alias_name: AliasName,
    run_id: Annotated[str, typer.Argument(help="A completed run.", show_default=False)],
) -> None:
    """Point NAME@ALIAS at a completed run (a rollback is pointing it back)."""
    with session.api() as api:
        accepted = api.put(
            f"/models/{name}/aliases/{alias_name}", AliasAccepted, {"run_id": run_id}
        )
    session.out.emit(accepted)
    session.out.show(f"{name}@{alias_name} -> run {run_id}")


@app.command("unalias")
@client_command()
def unalias(session: Session, name: Name, alias_name: AliasName) -> None:
    """Remove NAME@ALIAS: it serves nothing until set again."""
    with session.api() as api:
        accepted = api.delete(f"/models/{name}/aliases/{alias_name}", AliasAccepted)
    session.out.emit(accepted)
    session.out.show(f"{name}@{alias_name} removed")


@app.command("list")
@client_command()
def list_models(session: Session) -> None:
    """Every model with its aliases."""
    with session.api() as api:
        found = api.get("/models", ModelList)
    session.out.emit(found)
    table = Table("model", "alias", "run", "since")
    for model in found.items:
        for served in model.aliases:
            table.add_row(model.name, served.alias, served.run_id, when(served.since))
    session.out.show(table)


@app.command("show")
@client_command()
def show(session: Session, name: Name) -> None:
    """A model's aliases and who pointed them where, when."""
    with session.api() as api:
        model = api.get(f"/models/{name}", Model)
    session.out.emit(model)
    aliases = Table("alias", "run", "since", title=f"{name}: aliases")
    for served in model.aliases:
        aliases.add_row(served.alias, served.run_id, when(served.since))
    history = Table("when", "alias", "run", title="history")
    for change in model.history:
        history.add_row(when(change.at), change.alias, change.run_id or "(removed)")
    session.out.show(aliases)
    session.out.show(history)
