"""`runs watch`: a run's log stream as a progress bar (step/total, loss, tokens/s, ETA), or
as JSON lines; the exit status says how the run ended."""

from __future__ import annotations

from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn

from trainledger.client.errors import RunEndedError
from trainledger.client.http import HttpClient
from trainledger.client.models import End, LogLine
from trainledger.client.output import Output, number
from trainledger.client.stream import run_log


def watch(api: HttpClient, run_id: str, out: Output) -> End | None:
    """Follow the run to its end; `RunEndedError` unless it completed."""
    end = run_log(api, run_id, out.emit, follow=True) if out.json else _as_bar(api, run_id, out)
    out.emit(end)
    if end is None or end.status != "completed":
        how = f"ended {end.status}" if end else "log stream ended early"
        why = f": {end.message}" if end and end.message else ""
        raise RunEndedError(f"run {run_id} {how}{why}")
    out.show(f"run {run_id} completed")
    return end


def _as_bar(api: HttpClient, run_id: str, out: Output) -> End | None:
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("loss {task.fields[loss]}"),
        TextColumn("{task.fields[speed]} tokens/s"),
        TextColumn("ETA {task.fields[eta]}"),
        console=out.stderr,
    ) as bar:
        task = bar.add_task(run_id, total=None, loss="-", speed="-", eta="-")

        def on_line(line: LogLine) -> None:
            if line.step is None:
                bar.console.print(line.message, markup=False)
            else:
                _advance(bar, task, line)

        return run_log(api, run_id, on_line, follow=True)


def _advance(bar: Progress, task: TaskID, line: LogLine) -> None:
    eta = line.eta_seconds
    speed = line.tokens_per_second
    bar.update(
        task,
        completed=line.step,
        total=line.total_steps,
        loss=number(line.loss),
        speed="-" if speed is None else f"{speed:.0f}",
        eta="-" if eta is None else f"{int(eta) // 60}:{int(eta) % 60:02d}",
    )
