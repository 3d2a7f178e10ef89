"""`runs list/show/watch/logs/cancel/reproduce/compare/delete`."""

from __future__ import annotations

from typing import Annotated

import typer

from trainledger.client.command import client_command
from trainledger.client.compare import compared, comparison_table
from trainledger.client.errors import ClientError
from trainledger.client.models import Accepted, LogLine, Run, RunPage
from trainledger.client.parsing import tags
from trainledger.client.session import Session
from trainledger.client.stream import run_log
from trainledger.client.tables import reproduction, run_table, runs_table
from trainledger.client.watch import watch

app = typer.Typer(
    help="Training runs: list, inspect, follow, compare, cancel, reproduce, delete.",
    no_args_is_help=True,
)

RunId = Annotated[str, typer.Argument(help="The run's id.", show_default=False)]


@app.command("list")
@client_command()
def list_runs(
    session: Session,
    status: Annotated[str | None, typer.Option(help="Only runs with this status.")] = None,
    name: Annotated[str | None, typer.Option(help="Only runs with this name.")] = None,
    tag: Annotated[
        list[str] | None, typer.Option(help="key=value; repeatable, all must match.")
    ] = None,
    limit: Annotated[int, typer.Option(min=1, max=200, help="Runs per page.")] = 50,
    offset: Annotated[int, typer.Option(min=0, help="Skip this many (newest first).")] = 0,
) -> None:
    """Runs, newest request first."""
    wanted = [f"{key}={value}" for key, value in tags(tag).items()]
    params = {"status": status, "name": name, "tag": wanted, "limit": limit, "offset": offset}
    with session.api() as api:
        page = api.get("/runs", RunPage, {key: value for key, value in params.items() if value})
    session.out.emit(page)
    session.out.show(runs_table(page))


@app.command("show")
@client_command()
def show(session: Session, run_id: RunId) -> None:
    """A run's status, progress, metrics and artifact."""
    with session.api() as api:
        run = api.get(f"/runs/{run_id}", Run)
    session.out.emit(run)
    session.out.show(run_table(run))


@app.command("watch")
@client_command()
def watch_run(session: Session, run_id: RunId) -> None:
    """Follow a run with a progress bar; exit 0 once it completed, 3 if it ended otherwise."""
    with session.api() as api:
        watch(api, run_id, session.out)


@app.command("logs")
@client_command()
def logs(
    session: Session,
    run_id: RunId,
    follow: Annotated[
        bool, typer.Option("--follow", "-f", help="Keep printing until the run ends.")
    ] = False,
) -> None:
    """A run's log lines."""

    def line(entry: LogLine) -> None:
        session.out.emit(entry)
        session.out.show(entry.message)

    with session.api() as api:
        end = run_log(api, run_id, line, follow=follow)
    if end is not None:
        session.out.emit(end)
        session.out.show(f"run {end.status}" + (f": {end.message}" if end.message else ""))


@app.command("cancel")
@client_command()
def cancel(session: Session, run_id: RunId) -> None:
    """Ask a run to stop between steps."""
    with session.api() as api:
        accepted = api.post(f"/runs/{run_id}/cancel", Accepted)
    session.out.emit(accepted)
    session.out.show(f"cancel requested for run {accepted.run_id}")


@app.command("reproduce")
@client_command()
def reproduce(
    session: Session,
    run_id: RunId,
    watch_run: Annotated[
        bool,
        typer.Option("--watch", help="Follow the new run; then say how its weights compare."),
    ] = False,
) -> None:
    """Train a completed run again from its recorded spec, corpus and tokenizer."""
    with session.api() as api:
        accepted = api.post(f"/runs/{run_id}/reproduce", Accepted)
        session.out.emit(accepted)
        session.out.show(f"run {accepted.run_id} requested: reproduces {run_id}")
        if watch_run:
            watch(api, accepted.run_id, session.out)
            run = api.get(f"/runs/{accepted.run_id}", Run)
            session.out.emit(run)
            session.out.show(f"run {run.run_id} reproduces {reproduction(run)}")


@app.command("compare")
@client_command()
def compare(
    session: Session,
    run_ids: Annotated[list[str], typer.Argument(help="Two or more run ids.", show_default=False)],
) -> None:
    """Parameters and final metrics side by side; rows that differ are highlighted."""
    if len(run_ids) < 2:
        raise ClientError("compare needs two or more runs")
    with session.api() as api:
        rows = compared(api, run_ids)
    session.out.emit({"runs": run_ids, "rows": [row.model_dump(mode="json") for row in rows]})
    session.out.show(comparison_table(run_ids, rows))


@app.command("delete")
@client_command()
def delete(
    session: Session,
    run_id: RunId,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask.")] = False,
) -> None:
    """Delete a finished run: it leaves the lists; its artifact goes once nothing points to it."""
    if not (yes or typer.confirm(f"Delete run {run_id} and its artifact?", err=True)):
        raise ClientError(f"run {run_id} not deleted")
    with session.api() as api:
        accepted = api.delete(f"/runs/{run_id}", Accepted)
    session.out.emit(accepted)
    session.out.show(f"run {accepted.run_id} deleted")
