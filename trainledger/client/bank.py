"""Data Bank through `databank`'s own client: a streamed upload with a progress bar, and the
verified download with safe extraction that the inference service uses (`ArtifactFetcher`),
into a folder of the user's choosing; its errors become `ClientError`s."""

from __future__ import annotations

import logging
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TimeRemainingColumn,
    TransferSpeedColumn,
)

from databank import (
    ArtifactFetcher,
    DataBankClient,
    DataBankError,
    FileInfo,
    RetryPolicy,
    TransientError,
    UnsafeArtifactError,
)
from trainledger.client.errors import ClientError, UnreachableError
from trainledger.client.output import Output
from trainledger.client.session import Session, databank_key

RETRY = RetryPolicy(attempts=3, initial_backoff=0.5, max_backoff=2.0, total_seconds=60)
"""A person is waiting: a few quick retries, then the error."""
LARGE = 1 << 20
"""Files from this size get a progress bar."""
CHUNK = 1 << 20

# The client logs each retry as a warning; a command says what finally happened, in one line.
logging.getLogger("databank").addHandler(logging.NullHandler())


@contextmanager
def data_bank(session: Session, *, key_required: bool) -> Iterator[DataBankClient]:
    """A Data Bank client with the local key; its errors raised as `ClientError`s."""
    url = session.databank_url()
    key = databank_key()
    if key is None and key_required:
        raise ClientError(
            "no Data Bank key: set TRAINLEDGER_DATABANK_KEY, or run this where "
            "`trainledger up` keeps var/databank.key"
        )
    with DataBankClient(url, key or "", retry=RETRY) as client, _errors(url):
        yield client


@contextmanager
def _errors(url: str) -> Iterator[None]:
    try:
        yield
    except TransientError as error:
        if error.status is None:  # no answer at all: refused, reset or timed out
            raise UnreachableError(
                f"cannot reach Data Bank at {url}: is `trainledger up` running?"
            ) from None
        raise ClientError(f"Data Bank: {error.message}") from None
    except UnsafeArtifactError as error:
        raise ClientError(f"artifact refused: {error}") from None
    except DataBankError as error:
        code = f"{error.code}: " if error.code else ""
        raise ClientError(f"Data Bank: {code}{error.message}") from None


def upload(client: DataBankClient, path: Path, out: Output) -> FileInfo:
    """Stream `path` to Data Bank (a progress bar on stderr for a large file); its info."""
    size = path.stat().st_size
    columns = (BarColumn(), DownloadColumn(), TransferSpeedColumn(), TimeRemainingColumn())
    with Progress(
        "{task.description}",
        *columns,
        console=out.stderr,
        transient=True,
        disable=out.json or size < LARGE,
    ) as progress:
        task = progress.add_task(f"uploading {path.name}", total=size)

        def chunks() -> Iterator[bytes]:
            progress.reset(task, total=size)  # called again on a retry
            with path.open("rb") as handle:
                while chunk := handle.read(CHUNK):
                    progress.advance(task, len(chunk))
                    yield chunk

        return client.upload(chunks, filename=path.name, content_type="text/plain")


def download(client: DataBankClient, file_id: str, target: Path) -> Path:
    """Download artifact `file_id` (sha256-verified), extract it safely, and move the tree
    to `target`, which must be missing or an empty directory."""
    if target.exists() and (not target.is_dir() or any(target.iterdir())):
        raise ClientError(f"{target} exists and is not an empty directory")
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent, prefix=".trainledger-") as staging:
        tree = ArtifactFetcher(client, Path(staging)).fetch(file_id)
        if target.exists():
            target.rmdir()
        tree.rename(target)
    return target
