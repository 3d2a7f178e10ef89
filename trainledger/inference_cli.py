"""`trainledger inference`: serve text generation from the runs' artifacts in Data Bank.

The inference package (transformers) is imported when the command runs, so the command line
loads fast for every other command."""

from __future__ import annotations

from typing import Annotated

import typer
import uvicorn

from databank import ArtifactFetcher, DataBankClient
from events import connect, engine_url
from projections import ReadModel
from trainledger.signing import signing_keys
from trainledger.startup import start


def inference(
    host: Annotated[
        str | None, typer.Option(help="Listen address (default: INFERENCE__HOST).")
    ] = None,
    port: Annotated[
        int | None, typer.Option(help="Listen port (default: INFERENCE__PORT).")
    ] = None,
) -> None:
    """Serve POST /generate: run_id -> pointer -> verified artifact -> text."""
    from inference import Generator, create_app

    settings = start("inference")
    bank_url, bank_key = settings.app.data_bank_api_url, settings.app.data_bank_api_key
    if not bank_url or not bank_key:
        typer.echo("inference needs APP__DATA_BANK_API_URL and APP__DATA_BANK_API_KEY", err=True)
        raise typer.Exit(2)
    keys = signing_keys(settings, "inference")
    with (
        engine_url(settings.redis.url, settings.redis.data_dir) as url,
        DataBankClient(bank_url, bank_key) as bank,
    ):
        app = create_app(
            ReadModel(connect(url, settings.redis.policy())),
            ArtifactFetcher(
                bank, settings.inference.cache_dir, max_bytes=settings.inference.cache_max_bytes
            ),
            Generator(
                settings.inference.max_models,
                max_parameters=settings.inference.max_parameters,
            ),
            signing_keys=keys,
            api_key=settings.security.api_key,
        )
        uvicorn.run(
            app,
            host=host or settings.inference.host,
            port=port or settings.inference.port,
            log_config=None,
        )
