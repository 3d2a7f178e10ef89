"""`trainledger dlq`: list dead letters and replay them into their source stream.

A replay first revives the run or tokenizer that a stage failed when its entry was
dead-lettered (`consumers.Revivals`), so the stages take the entry up again. The stages are
imported when `replay` runs, not when the command line loads (they bring torch along).
"""

from __future__ import annotations

from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from events import (
    EventLog,
    connect,
    dead_letter_streams,
    engine_url,
    list_dead_letters,
    names,
    replay,
)
from trainledger.startup import start

app = typer.Typer(help="Dead letters: entries that could not be decoded or kept failing.")
console = Console()

Stream = Annotated[str, typer.Option(help="Source stream, e.g. stream:training.")]
Group = Annotated[str, typer.Option(help="Consumer group, e.g. training or projector.")]


@app.command("list")
def list_command(
    stream: Annotated[str | None, typer.Option(help="Only this source stream.")] = None,
    group: Annotated[str | None, typer.Option(help="Only this group.")] = None,
    count: Annotated[int, typer.Option(min=1, help="At most this many per stream.")] = 100,
) -> None:
    """Show dead letters: where each came from, after how many deliveries, and why."""
    settings = start("dlq")
    with engine_url(settings.redis.url, settings.redis.data_dir) as url:
        client = connect(url, settings.redis.policy())
        table = Table("dead-letter stream", "original id", "attempts", "error")
        for dlq in dead_letter_streams(client):
            source, owner = names.dlq_origin(dlq)
            if (stream or source) != source or (group or owner) != owner:
                continue
            for letter in list_dead_letters(client, source, owner, count=count):
                table.add_row(dlq, letter.original_id, str(letter.attempts), letter.error)
        console.print(table)


@app.command("replay")
def replay_command(
    stream: Stream,
    group: Group,
    chunk: Annotated[int, typer.Option(min=1, max=10_000, help="Entries per transaction.")] = 100,
) -> None:
    """Move the dead letters of GROUP on STREAM back into STREAM, CHUNK at a time; a run or
    tokenizer that failed because its entry was dead-lettered is queued again first."""
    from consumers import Revivals

    settings = start("dlq")
    with engine_url(settings.redis.url, settings.redis.data_dir) as url:
        client = connect(url, settings.redis.policy())
        revive = Revivals(EventLog(client, settings.redis.durability()))
        moved = replay(client, stream, group, chunk=chunk, revive=revive)
    console.print(f"replayed {moved} entr{'y' if moved == 1 else 'ies'} into {stream}")
