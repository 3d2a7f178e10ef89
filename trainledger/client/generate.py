"""`generate RUN PROMPT`: text from a run's model, through the inference service."""

from __future__ import annotations

from typing import Annotated

import typer
from pydantic import JsonValue

from trainledger.client.command import client_command
from trainledger.client.models import Generated
from trainledger.client.session import Session

TIMEOUT_S = 300.0
"""The first request for a run downloads and loads its model."""


@client_command(uses=("inference",))
def generate(
    session: Session,
    run_id: Annotated[
        str, typer.Argument(help="The run whose model generates.", show_default=False)
    ],
    prompt: Annotated[str, typer.Argument(help="The text to continue.", show_default=False)],
    max_new_tokens: Annotated[int, typer.Option(help="Tokens to add.")] = 40,
    temperature: Annotated[float, typer.Option(help="0: greedy decoding.")] = 0.0,
    top_k: Annotated[int, typer.Option(help="Sample among this many tokens.")] = 50,
    seed: Annotated[int, typer.Option(help="Sampling seed.")] = 0,
) -> None:
    """Continue PROMPT with RUN's model; prints the text."""
    body: dict[str, JsonValue] = {
        "run_id": run_id,
        "prompt": prompt,
        "max_new_tokens": max_new_tokens,
        "temperature": temperature,
        "top_k": top_k,
        "seed": seed,
    }
    with session.inference(TIMEOUT_S) as inference:
        generated = inference.post("/generate", Generated, body)
    session.out.emit(generated)
    session.out.show(generated.text)
