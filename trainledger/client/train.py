"""`train`: ask the API for a run; the corpus uploaded first (`--corpus`) or given by id; the
spec from `--config` (TOML) and the options, checked before anything is sent; `--watch`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from trainledger.client.bank import data_bank, upload
from trainledger.client.command import client_command
from trainledger.client.errors import ClientError
from trainledger.client.models import Accepted
from trainledger.client.parsing import tags
from trainledger.client.session import Session
from trainledger.client.spec import PLACEHOLDER_FILE_ID, load, merge, validated
from trainledger.client.watch import watch

RUN, TOKENIZER, MODEL, TRAINING = "Run", "Tokenizer", "Model", "Training"


def _opt(help_text: str, panel: str) -> object:
    return typer.Option(help=help_text, rich_help_panel=panel, show_default=False)


@client_command(uses=("api", "databank"))
def train(
    session: Session,
    corpus: Annotated[
        Path | None,
        typer.Option(
            exists=True, dir_okay=False, help="Upload this corpus first.", rich_help_panel=RUN
        ),
    ] = None,
    corpus_file_id: Annotated[str | None, _opt("A corpus already in Data Bank.", RUN)] = None,
    config: Annotated[
        Path | None,
        typer.Option(
            exists=True,
            dir_okay=False,
            help="TOML: the API's body; options override it.",
            rich_help_panel=RUN,
        ),
    ] = None,
    name: Annotated[str | None, _opt("A name for people (not unique).", RUN)] = None,
    tag: Annotated[list[str] | None, _opt("key=value (repeatable).", RUN)] = None,
    watch_run: Annotated[
        bool, typer.Option("--watch", help="Follow the run to its end.", rich_help_panel=RUN)
    ] = False,
    tokenizer_id: Annotated[str | None, _opt("Reuse a trained tokenizer.", TOKENIZER)] = None,
    vocab_size: Annotated[int | None, _opt("Train a tokenizer of this size.", TOKENIZER)] = None,
    min_frequency: Annotated[int | None, _opt("Its minimum pair frequency.", TOKENIZER)] = None,
    model_size: Annotated[str | None, _opt("tiny, mini or small.", MODEL)] = None,
    n_layer: Annotated[
        int | None, _opt("Explicit layers (with --n-head, --n-embd).", MODEL)
    ] = None,
    n_head: Annotated[int | None, _opt("Attention heads.", MODEL)] = None,
    n_embd: Annotated[int | None, _opt("Embedding width.", MODEL)] = None,
    dropout: Annotated[float | None, _opt("Dropout (default 0.1).", MODEL)] = None,
    epochs: Annotated[int | None, _opt("Passes over the corpus.", TRAINING)] = None,
    max_steps: Annotated[int | None, _opt("Or a number of steps.", TRAINING)] = None,
    batch_size: Annotated[int | None, _opt("Sequences per step.", TRAINING)] = None,
    learning_rate: Annotated[float | None, _opt("Optimizer learning rate.", TRAINING)] = None,
    sequence_length: Annotated[int | None, _opt("Tokens per sequence.", TRAINING)] = None,
    seed: Annotated[int | None, _opt("Random seed.", TRAINING)] = None,
    holdout_fraction: Annotated[float | None, _opt("Share kept for validation.", TRAINING)] = None,
    eval_every_steps: Annotated[
        int | None, _opt("Validation loss every N steps.", TRAINING)
    ] = None,
    checkpoint_every_steps: Annotated[
        int | None, _opt("A checkpoint every N steps (and by the worker's interval).", TRAINING)
    ] = None,
    device: Annotated[str | None, _opt("auto, cpu or cuda.", TRAINING)] = None,
    precision: Annotated[str | None, _opt("fp32, bf16 or fp16.", TRAINING)] = None,
    processes: Annotated[
        int | None, _opt("Data-parallel processes on the node (one GPU each).", TRAINING)
    ] = None,
) -> None:
    """Train a model: the spec from --config and the options, checked before it is sent."""
    if corpus and corpus_file_id:
        raise ClientError("give --corpus or --corpus-file-id, not both")
    body = merge(
        load(config),
        {
            "": {"name": name, "corpus_file_id": corpus_file_id},
            "tags": tags(tag),
            "tokenizer": {
                "tokenizer_id": tokenizer_id,
                "vocab_size": vocab_size,
                "min_frequency": min_frequency,
            },
            "model": {
                "size": model_size,
                "n_layer": n_layer,
                "n_head": n_head,
                "n_embd": n_embd,
                "dropout": dropout,
            },
            "training": {
                "epochs": epochs,
                "max_steps": max_steps,
                "batch_size": batch_size,
                "learning_rate": learning_rate,
                "sequence_length": sequence_length,
                "seed": seed,
                "holdout_fraction": holdout_fraction,
                "eval_every_steps": eval_every_steps,
                "checkpoint_every_steps": checkpoint_every_steps,
                "device": device,
                "precision": precision,
                "processes": processes,
            },
        },
    )
    if corpus:
        body["corpus_file_id"] = PLACEHOLDER_FILE_ID
    elif "corpus_file_id" not in body:
        raise ClientError(
            "no corpus: give --corpus FILE or --corpus-file-id ID (or corpus_file_id in --config)"
        )
    spec = validated(body)
    if corpus:
        with data_bank(session, key_required=True) as bank:
            file_id = upload(bank, corpus, session.out).file_id
        session.out.show(f"corpus uploaded: {file_id}")
        spec = spec.model_copy(update={"corpus_file_id": file_id})
    with session.api() as api:
        accepted = api.post(
            "/runs/train", Accepted, spec.model_dump(mode="json", exclude_none=True)
        )
        session.out.emit(accepted.model_dump(mode="json") | {"corpus_file_id": spec.corpus_file_id})
        session.out.show(f"run {accepted.run_id} requested")
        if watch_run:
            watch(api, accepted.run_id, session.out)
