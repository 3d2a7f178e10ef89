"""`python -m tests.reliability [--seed N] [--short]`: one chaos run; exit 1 on any problem."""

from __future__ import annotations

import random
import tempfile
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from tests.reliability.chaos import chaos_run
from tests.reliability.plan import FULL, SHORT, make_plan


def main(
    seed: Annotated[int | None, typer.Option(help="Repeat the run of this seed.")] = None,
    short: Annotated[bool, typer.Option(help="The short version (as in make check).")] = False,
    keep: Annotated[Path | None, typer.Option(help="Keep data and logs here.")] = None,
) -> None:
    """Start the whole system, kill and starve it from a seed, check nothing was lost."""
    console = Console()
    seed = random.randrange(2**31) if seed is None else seed
    console.print(f"chaos run, seed {seed} (repeat with --seed {seed})")
    plan = make_plan(seed, SHORT if short else FULL)
    with tempfile.TemporaryDirectory(prefix="trainledger-chaos-") as scratch:
        root = keep or Path(scratch)
        report = chaos_run(plan, root.resolve())
    report.print(console)
    if report.problems or report.lost or report.duplicate_pointers or report.drift:
        raise typer.Exit(1)


if __name__ == "__main__":
    typer.run(main)
