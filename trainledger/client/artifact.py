"""`artifact download RUN DIR`: the run's model, found by its pointer, downloaded from Data
Bank (sha256-verified) and extracted safely into DIR, a folder `from_pretrained` loads."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from trainledger.client.bank import data_bank, download
from trainledger.client.command import client_command
from trainledger.client.models import Pointer
from trainledger.client.session import Session

app = typer.Typer(help="Trained artifacts.", no_args_is_help=True)


@app.command("download")
@client_command(uses=("api", "databank"))
def download_artifact(
    session: Session,
    run_id: Annotated[str, typer.Argument(help="The run.", show_default=False)],
    directory: Annotated[
        Path, typer.Argument(help="Where: missing, or an empty directory.", show_default=False)
    ],
) -> None:
    """Download RUN's model into DIR (verified, extracted)."""
    with session.api() as api:
        pointer = api.get(f"/runs/{run_id}/artifact", Pointer)
    with data_bank(session, key_required=False) as bank:
        target = download(bank, pointer.file_id, directory)
    session.out.emit({"run_id": run_id, "file_id": pointer.file_id, "path": str(target)})
    session.out.show(f"run {run_id}: artifact {pointer.file_id} in {target}")
