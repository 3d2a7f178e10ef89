"""`gc`: delete ended runs in bulk (`DELETE /runs/{run_id}` each), keeping the newest N
and/or those younger than a duration; `--dry-run` lists them and deletes nothing."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from trainledger.client.command import client_command
from trainledger.client.errors import ClientError, HttpError
from trainledger.client.http import HttpClient
from trainledger.client.models import Accepted, Run, RunPage
from trainledger.client.output import n_runs, when
from trainledger.client.parsing import duration
from trainledger.client.session import Session

ENDED = frozenset({"completed", "failed", "cancelled"})
PAGE = 200


def all_runs(api: HttpClient) -> list[Run]:
    """Every run the API lists, newest request first."""
    runs: list[Run] = []
    offset: int | None = 0
    while offset is not None:
        page = api.get("/runs", RunPage, {"offset": offset, "limit": PAGE})
        runs += page.items
        offset = page.next_offset
    return runs


def doomed(
    runs: list[Run], keep_last: int | None, older_than: timedelta | None, now: datetime
) -> list[Run]:
    """The ended runs past the newest `keep_last` (of all runs) requested before
    `now - older_than` (either bound may be absent, not both)."""
    cutoff = now - older_than if older_than is not None else None
    candidates = runs[keep_last:] if keep_last is not None else runs
    return [
        run
        for run in candidates
        if run.status in ENDED
        and (cutoff is None or (run.requested_at is not None and run.requested_at < cutoff))
    ]


@client_command()
def gc(
    session: Session,
    keep_last: Annotated[
        int | None, typer.Option(min=0, help="Keep the N most recently requested runs.")
    ] = None,
    older_than: Annotated[
        timedelta | None,
        typer.Option(
            parser=duration,
            metavar="DURATION",
            help="Only runs requested before this long ago: 7d, 12h, 1d12h.",
        ),
    ] = None,
    dry_run: Annotated[
        bool, typer.Option(help="List what would be deleted; delete nothing.")
    ] = False,
) -> None:
    """Delete ended runs (completed, failed, cancelled) and, once unreferenced, their artifacts."""
    if keep_last is None and older_than is None:
        raise ClientError("give --keep-last N, --older-than DURATION, or both")
    with session.api() as api:
        runs = doomed(all_runs(api), keep_last, older_than, datetime.now(UTC))
        session.out.show(_table(runs, dry_run))
        deleted, failed = ([], []) if dry_run else _delete(api, runs, session)
    session.out.emit(
        {
            "dry_run": dry_run,
            "runs": [run.run_id for run in runs],
            "deleted": deleted,
            "failed": failed,
        }
    )
    if failed:
        raise ClientError(f"{len(failed)} of {n_runs(len(runs))} not deleted")


def _delete(api: HttpClient, runs: list[Run], session: Session) -> tuple[list[str], list[str]]:
    deleted: list[str] = []
    failed: list[str] = []
    for run in runs:
        try:
            api.delete(f"/runs/{run.run_id}", Accepted)
        except HttpError as error:  # an unreachable API stops it all
            typer.echo(f"error: run {run.run_id}: {error.message}", err=True)
            failed.append(run.run_id)
            continue
        deleted.append(run.run_id)
    session.out.show(f"deleted {n_runs(len(deleted))}")
    return deleted, failed


def _table(runs: list[Run], dry_run: bool) -> Table:
    table = Table("run", "name", "status", "requested")
    for run in runs:
        table.add_row(run.run_id, escape(run.name or ""), run.status, when(run.requested_at))
    table.caption = f"{'would delete' if dry_run else 'deleting'} {n_runs(len(runs))}"
    return table
