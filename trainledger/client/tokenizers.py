"""`tokenizers list/show`."""

from __future__ import annotations

from typing import Annotated

import typer

from trainledger.client.command import client_command
from trainledger.client.models import Tokenizer, TokenizerPage
from trainledger.client.session import Session
from trainledger.client.tables import tokenizer_table, tokenizers_table

app = typer.Typer(help="Tokenizers: list and inspect.", no_args_is_help=True)


@app.command("list")
@client_command()
def list_tokenizers(
    session: Session,
    limit: Annotated[int, typer.Option(min=1, max=200, help="Tokenizers per page.")] = 50,
    offset: Annotated[int, typer.Option(min=0, help="Skip this many.")] = 0,
) -> None:
    """Tokenizers, newest request first."""
    with session.api() as api:
        page = api.get("/tokenizers", TokenizerPage, {"limit": limit, "offset": offset})
    session.out.emit(page)
    session.out.show(tokenizers_table(page))


@app.command("show")
@client_command()
def show(
    session: Session,
    tokenizer_id: Annotated[str, typer.Argument(help="The tokenizer's id.", show_default=False)],
) -> None:
    """A tokenizer's status and artifact."""
    with session.api() as api:
        tokenizer = api.get(f"/tokenizers/{tokenizer_id}", Tokenizer)
    session.out.emit(tokenizer)
    session.out.show(tokenizer_table(tokenizer))
