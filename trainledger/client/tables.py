"""How runs and tokenizers look in a terminal."""

from __future__ import annotations

from rich.markup import escape
from rich.table import Table

from trainledger.client.models import Run, RunPage, Tokenizer, TokenizerPage
from trainledger.client.output import number, when

STATUS_STYLES = {"completed": "green", "failed": "red", "cancelled": "yellow", "deleted": "dim"}


def status(value: str) -> str:
    """A status, coloured by how it ended."""
    style = STATUS_STYLES.get(value, "cyan")
    return f"[{style}]{value}[/{style}]"


def progress(run: Run) -> str:
    """`step/total`, or empty."""
    return f"{run.progress.step}/{run.progress.total_steps}" if run.progress else ""


def loss(run: Run) -> str:
    """The latest train loss: while running from the progress, after from the metrics."""
    if run.progress and run.progress.train_loss is not None:
        return number(run.progress.train_loss)
    value = (run.metrics or {}).get("train_loss")
    return number(value)


def tag_list(tags: dict[str, str]) -> str:
    """`k=v, k=v`."""
    return ", ".join(f"{key}={value}" for key, value in tags.items())


def attempt(run: Run) -> str:
    """The attempt after a restart and where it started from (empty for a first attempt)."""
    if run.attempt is None:
        return ""
    start = (
        "step 0" if run.resumed_at_step is None else f"the checkpoint at step {run.resumed_at_step}"
    )
    return f"{run.attempt}, from {start}"


def reproduction(run: Run) -> str:
    """The run it reproduces and, once known, whether the weights are byte-identical and
    which inputs differed (empty for a run that reproduces none)."""
    found = run.reproduction
    if found is None:
        return ""
    verdicts = {True: "byte-identical weights", False: "different weights", None: ""}
    differed = ", ".join(
        f"{d.name} {d.original or '?'} -> {d.reproduction or '?'}" for d in found.differences
    )
    said = [verdicts[found.identical], f"differed: {differed}" if differed else ""]
    return escape("; ".join([found.of, *(part for part in said if part)]))


def runs_table(page: RunPage) -> Table:
    """One page of runs."""
    table = Table("run", "name", "status", "progress", "loss", "tags", "requested")
    table.columns[0].no_wrap = True
    for run in page.items:
        table.add_row(
            run.run_id,
            escape(run.name or ""),
            status(run.status),
            progress(run),
            loss(run),
            escape(tag_list(run.tags)),
            when(run.requested_at),
        )
    more = f"; more with --offset {page.next_offset}" if page.next_offset is not None else ""
    table.caption = f"{len(page.items)} of {page.total} runs{more}"
    return table


def run_table(run: Run) -> Table:
    """One run, field by field."""
    table = Table("field", "value", show_header=False)
    rows = {
        "run": run.run_id,
        "name": escape(run.name or ""),
        "status": status(run.status),
        "message": escape(run.message or ""),
        "node": run.node or "",
        "tags": escape(tag_list(run.tags)),
        "progress": progress(run),
        "requested": when(run.requested_at),
        "started": when(run.started_at),
        "attempt": attempt(run),
        "completed": when(run.completed_at),
        "failed": when(run.failed_at),
        "cancelled": when(run.cancelled_at),
        "artifact": run.artifact.file_id if run.artifact else "",
        "reproduces": reproduction(run),
    }
    rows |= {f"metrics.{key}": number(value) for key, value in (run.metrics or {}).items()}
    for field, value in rows.items():
        if value:
            table.add_row(field, value)
    return table


def tokenizers_table(page: TokenizerPage) -> Table:
    """One page of tokenizers."""
    table = Table("tokenizer", "status", "vocab", "requested", "completed", "artifact")
    table.columns[0].no_wrap = True
    for tokenizer in page.items:
        table.add_row(
            tokenizer.tokenizer_id,
            status(tokenizer.status),
            str(tokenizer.vocab_size or ""),
            when(tokenizer.requested_at),
            when(tokenizer.completed_at),
            tokenizer.artifact.file_id if tokenizer.artifact else "",
        )
    table.caption = f"{len(page.items)} of {page.total} tokenizers"
    return table


def tokenizer_table(tokenizer: Tokenizer) -> Table:
    """One tokenizer, field by field."""
    table = Table("field", "value", show_header=False)
    rows = {
        "tokenizer": tokenizer.tokenizer_id,
        "status": status(tokenizer.status),
        "message": escape(tokenizer.message or ""),
        "node": tokenizer.node or "",
        "vocab size": str(tokenizer.vocab_size or ""),
        "requested": when(tokenizer.requested_at),
        "completed": when(tokenizer.completed_at),
        "artifact": tokenizer.artifact.file_id if tokenizer.artifact else "",
    }
    for field, value in rows.items():
        if value:
            table.add_row(field, value)
    return table
