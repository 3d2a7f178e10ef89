"""What a command shows: rich tables and lines for people, or JSON on stdout for scripts.

With `--json` the machine output is the only thing on stdout (one JSON document, or one per
line for streams); progress bars go to stderr and are off.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime

import typer
from pydantic import BaseModel
from rich.console import Console, RenderableType


class Output:
    """Where a command writes: `show` for people, `emit` for scripts."""

    def __init__(self, *, json_output: bool) -> None:
        self.json = json_output
        self.console = Console(highlight=False)
        self.stderr = Console(stderr=True, highlight=False)

    def show(self, renderable: RenderableType) -> None:
        """Print for people (nothing in `--json` mode)."""
        if not self.json:
            self.console.print(renderable)

    def emit(self, value: BaseModel | Mapping[str, object] | None) -> None:
        """Print one JSON document on one line (only in `--json` mode)."""
        if self.json:
            text = value.model_dump_json() if isinstance(value, BaseModel) else json.dumps(value)
            typer.echo(text)


def when(moment: datetime | None) -> str:
    """A time for a table: UTC to the second, or empty."""
    return moment.strftime("%Y-%m-%d %H:%M:%S") if moment else ""


def number(value: float | None, digits: int = 4) -> str:
    """A number for a table: an integer (or a float of more than `digits` digits) as a whole
    number, a float to `digits` significant digits."""
    if value is None:
        return ""
    if isinstance(value, int) or abs(value) >= 10**digits:
        return f"{value:.0f}"
    return f"{value:.{digits}g}"


def n_runs(count: int) -> str:
    """`1 run`, `2 runs`."""
    return f"{count} run{'' if count == 1 else 's'}"
