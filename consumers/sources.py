"""The inputs a stage fetches from Data Bank: a corpus by file id, a tokenizer by its pointer
(one signed under the worker's keys: a forged pointer would choose what a run downloads).

Errors that a retry cannot fix (the file is not there, the key is refused, the bytes are not
what the id says, the artifact is unsafe or holds no tokenizer) become a `StageError` whose
message says what is missing, so the run fails with it instead of looping. A `TransientError`
(Data Bank unreachable past the client's retries) is left to propagate: the entry stays pending
and is delivered again later, and dead-lettered if that keeps happening.
"""

from __future__ import annotations

from pathlib import Path

from transformers import PreTrainedTokenizerFast

from consumers.history import History
from consumers.tokenizer import TOKENIZER_FILE, load_tokenizer
from databank import (
    ArtifactFetcher,
    CorpusFetcher,
    DataBankError,
    NotFound,
    TransientError,
    UnsafeArtifactError,
)
from events import EventLog, SigningKeys


class StageError(Exception):
    """The request cannot succeed: it ends as failed with this message and error code."""

    def __init__(self, message: str, error_code: str) -> None:
        super().__init__(message)
        self.message = message
        self.error_code = error_code


def fetch_corpus(fetcher: CorpusFetcher, corpus_file_id: str) -> Path:
    """The local path of the corpus; `StageError` when Data Bank does not have it."""
    try:
        return fetcher.fetch(corpus_file_id)
    except TransientError:
        raise
    except NotFound:
        raise StageError(
            f"corpus {corpus_file_id} not found in Data Bank: upload it first",
            "corpus_not_found",
        ) from None
    except DataBankError as error:
        raise StageError(
            f"corpus {corpus_file_id} could not be fetched from Data Bank: {error}",
            "corpus_unavailable",
        ) from None


def fetch_tokenizer(
    log: EventLog, fetcher: ArtifactFetcher, tokenizer_id: str, keys: SigningKeys
) -> PreTrainedTokenizerFast:
    """The tokenizer `tokenizer_id`, resolved through its verified pointer in the log and
    downloaded."""
    pointer = History.read(log, tokenizer_id).verified(keys).pointer()
    if pointer is None:
        raise StageError(
            f"tokenizer {tokenizer_id} has no verified pointer (unknown, not trained or "
            "uploaded yet, failed, revoked, or pointed to without the deployment's signature)",
            "tokenizer_unavailable",
        )
    try:
        directory = fetcher.fetch(pointer.file_id)
    except TransientError:
        raise
    except (DataBankError, UnsafeArtifactError) as error:
        raise StageError(
            f"tokenizer {tokenizer_id}: its artifact {pointer.file_id} could not be fetched: "
            f"{error}",
            "tokenizer_unavailable",
        ) from None
    if not (directory / TOKENIZER_FILE).is_file():
        raise StageError(
            f"tokenizer {tokenizer_id}: its artifact {pointer.file_id} holds no {TOKENIZER_FILE}",
            "tokenizer_unavailable",
        )
    return load_tokenizer(directory)
