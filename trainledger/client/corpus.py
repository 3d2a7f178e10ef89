"""`corpus upload FILE`: put a training corpus into Data Bank; prints its file id."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from trainledger.client.bank import data_bank, upload
from trainledger.client.command import client_command
from trainledger.client.session import Session

app = typer.Typer(help="Training corpora in Data Bank.", no_args_is_help=True)

ExistingFile = Annotated[
    Path, typer.Argument(exists=True, dir_okay=False, readable=True, help="A UTF-8 text file.")
]


@app.command("upload")
@client_command(uses=("databank",))
def upload_corpus(session: Session, file: ExistingFile) -> None:
    """Upload a corpus (streamed; a progress bar for large files) and print its file id."""
    with data_bank(session, key_required=True) as bank:
        info = upload(bank, file, session.out)
    session.out.emit({"file_id": info.file_id, "size": info.size, "path": str(file)})
    session.out.show(info.file_id)
