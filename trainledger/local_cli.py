"""`trainledger up` (every service on this machine, supervised) and `trainledger demo` (the
pipeline, end to end)."""

from __future__ import annotations

import signal
import tempfile
import threading
import time
from importlib import resources
from pathlib import Path
from types import FrameType
from typing import Annotated

import httpx
import typer
from rich.console import Console
from rich.table import Table

from databank import DataBankClient
from events import ArtifactPointer, EngineError, without_password
from producers import RunAccepted
from projections import RunStatus
from trainledger.local import Ports, RootBusy, Stack, local_stack
from trainledger.startup import start
from trainledger.supervisor import ServiceFailed

console = Console()
FINAL = ("completed", "failed", "cancelled")


def up(
    root: Annotated[
        Path, typer.Option(help="Data, artifacts and logs of the local services.")
    ] = Path("var"),
    api_port: Annotated[int | None, typer.Option(help="Default: API__PORT.")] = None,
    databank_port: Annotated[int, typer.Option(help="Port of the local Data Bank.")] = 8010,
    inference_port: Annotated[int | None, typer.Option(help="Default: INFERENCE__PORT.")] = None,
    workers: Annotated[
        int,
        typer.Option(
            min=1,
            help="Worker processes, node ids <node>-1, <node>-2, ..., "
            "the cores split between them (WORKER__TORCH_THREADS each).",
        ),
    ] = 1,
) -> None:
    """Run engine, Data Bank, projector, worker(s), API and inference here until Ctrl-C,
    restarting a service that exits; one that keeps dying stops them all (exit 1)."""
    settings = start("up")
    ports = Ports(
        api_port or settings.api.port, databank_port, inference_port or settings.inference.port
    )
    stopping = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stopping.set()

    try:
        with local_stack(settings, root, ports, workers=workers) as (stack, supervisor):
            for sig in (signal.SIGINT, signal.SIGTERM):  # a signal while starting unwinds it
                signal.signal(sig, on_signal)
            show(stack)
            supervisor.watch(stopping)
    except (RootBusy, ServiceFailed, EngineError) as error:
        typer.echo(f"trainledger up: {error}", err=True)
        raise typer.Exit(1) from None
    console.print("stopped")


def show(stack: Stack) -> None:
    """Print where each service answers."""
    table = Table("service", "address")
    for name, address in (
        ("write/read API", stack.api_url),
        ("Data Bank", stack.databank_url),
        ("inference", stack.inference_url),
        ("engine", without_password(stack.redis_url)),
        ("logs", str(stack.logs)),
        (
            "Data Bank key",
            f"in {stack.key_file}" if stack.key_file.exists() else "APP__DATA_BANK_API_KEY",
        ),
        (
            "signing key",
            f"in {stack.signing_key_file}" if stack.signing_key_file else "APP__SIGNING_KEY",
        ),
    ):
        table.add_row(name, address)
    console.print(table)
    console.file.flush()  # at once, also when stdout is a file or a pipe


def demo(
    steps: Annotated[int, typer.Option(min=1, help="Training steps of the demo model.")] = 200,
    timeout: Annotated[float, typer.Option(help="Seconds to wait for the run.")] = 600.0,
) -> None:
    """Upload a corpus, train a tiny model through the log, fetch it by pointer, generate."""
    settings = start("demo")
    with (
        tempfile.TemporaryDirectory(prefix="trainledger-demo-") as root,
        local_stack(settings, Path(root), Ports.free()) as (stack, _),
    ):
        show(stack)
        run_id = train(stack, steps)
        status = completed(wait_for(stack, run_id, timeout))
        pointer, text = use(stack, run_id)
    console.print(f"run {run_id} completed; artifact in Data Bank: {pointer.file_id}")
    console.print(f"metrics: {status.metrics}")
    console.print(f"generated: {text!r}")


def completed(status: RunStatus) -> RunStatus:
    """`status` when the run completed; otherwise say how it ended and exit 1."""
    if status.status != "completed":
        console.print(f"[red]run {status.run_id} ended {status.status}: {status.message}[/red]")
        raise typer.Exit(1)
    return status


def train(stack: Stack, steps: int) -> str:
    """Upload the embedded corpus to Data Bank and ask the API for a tiny run on it."""
    corpus = resources.files("trainledger").joinpath("demo_corpus.txt").read_bytes()
    with DataBankClient(stack.databank_url, stack.databank_key) as bank:
        corpus_id = bank.upload(
            lambda: [corpus], filename="demo_corpus.txt", content_type="text/plain"
        ).file_id
    console.print(f"corpus uploaded: {corpus_id}")
    body = {
        "corpus_file_id": corpus_id,
        "tokenizer": {"vocab_size": 512},
        "model": {"size": "tiny"},
        "training": {"max_steps": steps, "batch_size": 8, "sequence_length": 64, "seed": 0},
    }
    answer = httpx.post(f"{stack.api_url}/runs/train", json=body, timeout=30)
    answer.raise_for_status()
    accepted = RunAccepted.model_validate_json(answer.content)
    console.print(f"run requested: {accepted.run_id} (entry {accepted.entry_id})")
    return accepted.run_id


def wait_for(stack: Stack, run_id: str, timeout: float) -> RunStatus:
    """Poll the read API until the run ends (or `timeout` passes), printing status changes."""
    deadline, last = time.monotonic() + timeout, ""
    while True:
        answer = httpx.get(f"{stack.api_url}/runs/{run_id}", timeout=30)
        if answer.status_code == 200:
            status = RunStatus.model_validate_json(answer.content)
            if status.status != last:
                console.print(f"  {status.status}")
                last = status.status
            if status.status in FINAL:
                return status
        if time.monotonic() > deadline:
            console.print(
                f"[red]run {run_id} did not finish in {timeout}s; logs in {stack.logs}[/red]"
            )
            raise typer.Exit(1)
        time.sleep(0.5)


def use(stack: Stack, run_id: str) -> tuple[ArtifactPointer, str]:
    """Resolve the pointer through the API and generate through the inference service."""
    from inference import GenerateResponse  # transformers: not for every command line start

    pointer = ArtifactPointer.model_validate_json(
        httpx.get(f"{stack.api_url}/runs/{run_id}/artifact", timeout=30).content
    )
    body = {"run_id": run_id, "prompt": "The river", "max_new_tokens": 24, "temperature": 0.8}
    answer = httpx.post(f"{stack.inference_url}/generate", json=body, timeout=120)
    answer.raise_for_status()
    return pointer, GenerateResponse.model_validate_json(answer.content).text
