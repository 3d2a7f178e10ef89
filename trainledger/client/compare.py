"""`runs compare`: each run's parameters (from its `training.requested` event) and final
metrics, one row per field, one column per run."""

from __future__ import annotations

import json

from pydantic import BaseModel, ConfigDict, JsonValue
from rich.markup import escape
from rich.table import Table

from trainledger.client.http import HttpClient
from trainledger.client.models import History, Run
from trainledger.client.output import number
from trainledger.client.tables import tag_list

REQUESTED = "training.requested"
SHOWN = ("name", "tags")
"""Parameters shown from the run's record instead."""


class Row(BaseModel):
    """One field across the compared runs."""

    model_config = ConfigDict(frozen=True)

    field: str
    values: list[str]
    differs: bool

    @classmethod
    def of(cls, field: str, values: list[str]) -> Row:
        """The row, marked when the runs disagree on it."""
        return cls(field=field, values=values, differs=len(set(values)) > 1)


def flatten(value: JsonValue, prefix: str = "") -> dict[str, str]:
    """Nested JSON objects as dotted keys; leaves as text (null as empty)."""
    if isinstance(value, dict):
        found: dict[str, str] = {}
        for key, inner in value.items():
            found |= flatten(inner, f"{prefix}{key}.")
        return found
    text = "" if value is None else value if isinstance(value, str) else json.dumps(value)
    return {prefix.rstrip("."): text}


def fields(run: Run, history: History) -> dict[str, str]:
    """What is compared of one run: name, status, tags, parameters, metrics."""
    requested = [e.event.payload for e in history.entries if e.event and e.event.type == REQUESTED]
    flat = flatten(requested[0]) if requested else {}
    parameters = {key: value for key, value in flat.items() if key.split(".")[0] not in SHOWN}
    metrics = {f"metrics.{key}": number(value) for key, value in (run.metrics or {}).items()}
    return {"name": run.name or "", "status": run.status, "tags": tag_list(run.tags)} | (
        parameters | metrics
    )


def compared(api: HttpClient, run_ids: list[str]) -> list[Row]:
    """The rows comparing `run_ids`, in the order fields first appear (not those empty in
    every run: parameters none of them set)."""
    columns = [
        fields(api.get(f"/runs/{run_id}", Run), api.get(f"/runs/{run_id}/events", History))
        for run_id in run_ids
    ]
    names = list(dict.fromkeys(name for column in columns for name in column))
    rows = [Row.of(name, [column.get(name, "") for column in columns]) for name in names]
    return [row for row in rows if any(row.values)]


def comparison_table(run_ids: list[str], rows: list[Row]) -> Table:
    """The rows, those that differ in bold yellow and marked `*`."""
    table = Table("", "field", *run_ids)
    for row in rows:
        table.add_row(
            "*" if row.differs else "",
            row.field,
            *(escape(value) for value in row.values),
            style="bold yellow" if row.differs else None,
        )
    table.caption = "* differs"
    return table
