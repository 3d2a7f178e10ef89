"""Inputs from Data Bank: a missing or refused corpus or tokenizer fails the request with a
message that says so; Data Bank being down is left for a later delivery; a tokenizer comes
only through a pointer the deployment signed."""

from __future__ import annotations

import io
import tarfile
from pathlib import Path

import pytest
import redis
from transformers import PreTrainedTokenizerFast

from consumers.sources import StageError, fetch_corpus, fetch_tokenizer
from consumers.uploader import ArtifactUploader
from databank import ArtifactFetcher, CorpusFetcher, DataBankClient, TransientError
from events import EventLog
from tests.databank.faults import Fault
from tests.harness import LocalBank
from tests.projections.factories import (
    FORGERIES,
    SIGNING_KEYS,
    Forgery,
    forged_pointer,
    signed_pointer,
)

MISSING = "e" * 64


def _corpora(client: DataBankClient, tmp_path: Path) -> CorpusFetcher:
    return CorpusFetcher(client, tmp_path / "corpora")


def test_a_corpus_is_fetched_into_the_cache(
    local_bank: LocalBank, bank_client: DataBankClient, tmp_path: Path
) -> None:
    file_id = local_bank.put(b"some text\n")
    assert fetch_corpus(_corpora(bank_client, tmp_path), file_id).read_bytes() == b"some text\n"


def test_a_corpus_data_bank_lacks_fails_with_a_message_that_says_so(
    bank_client: DataBankClient, tmp_path: Path
) -> None:
    with pytest.raises(StageError, match=f"corpus {MISSING} not found in Data Bank") as caught:
        fetch_corpus(_corpora(bank_client, tmp_path), MISSING)
    assert caught.value.error_code == "corpus_not_found"


def test_a_refused_corpus_fails(
    local_bank: LocalBank, bank_client: DataBankClient, tmp_path: Path
) -> None:
    file_id = local_bank.put(b"refused\n")
    local_bank.faults.add(
        Fault(kind="answer", method="GET", status=403, body=b'{"code":"FORBIDDEN"}')
    )
    with pytest.raises(StageError, match="could not be fetched") as caught:
        fetch_corpus(_corpora(bank_client, tmp_path), file_id)
    assert caught.value.error_code == "corpus_unavailable"


def test_data_bank_down_is_not_a_failure_of_the_run(
    local_bank: LocalBank, bank_client: DataBankClient, tmp_path: Path
) -> None:
    file_id = local_bank.put(b"later\n")
    local_bank.faults.add(Fault(kind="answer", method="GET", times=3))
    with pytest.raises(TransientError):
        fetch_corpus(_corpora(bank_client, tmp_path), file_id)


def _point(log: EventLog, tokenizer_id: str, file_id: str) -> None:
    log.append(signed_pointer("tokenizer", {"correlation_id": tokenizer_id}, file_id))


def _tar(members: dict[str, bytes], symlink: bool = False) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
        if symlink:
            link = tarfile.TarInfo("escape")
            link.type, link.linkname = tarfile.SYMTYPE, "/etc/passwd"
            tar.addfile(link)
    return buffer.getvalue()


@pytest.fixture
def artifacts(bank_client: DataBankClient, tmp_path: Path) -> ArtifactFetcher:
    return ArtifactFetcher(bank_client, tmp_path / "artifacts")


def test_a_tokenizer_is_fetched_by_its_pointer(
    redis_client: redis.Redis,
    bank_client: DataBankClient,
    artifacts: ArtifactFetcher,
    tokenizer: PreTrainedTokenizerFast,
    tmp_path: Path,
) -> None:
    tokenizer.save_pretrained(tmp_path / "tok")
    file_id = ArtifactUploader(bank_client).upload(tmp_path / "tok", name="tokenizer.tar").file_id
    log = EventLog(redis_client)
    _point(log, "tok-1", file_id)

    fetched = fetch_tokenizer(log, artifacts, "tok-1", SIGNING_KEYS)

    assert fetched.get_vocab() == tokenizer.get_vocab()


@pytest.mark.parametrize("kind", list(FORGERIES))
def test_a_forged_tokenizer_pointer_is_ignored(
    redis_client: redis.Redis,
    local_bank: LocalBank,
    bank_client: DataBankClient,
    artifacts: ArtifactFetcher,
    tokenizer: PreTrainedTokenizerFast,
    tmp_path: Path,
    kind: Forgery,
) -> None:
    """A writer to the engine cannot choose the tokenizer a run downloads: a later forged
    pointer loses to the signed one, and a forged pointer alone is no pointer."""
    tokenizer.save_pretrained(tmp_path / "tok")
    file_id = ArtifactUploader(bank_client).upload(tmp_path / "tok", name="tokenizer.tar").file_id
    chosen = local_bank.put(_tar({"tokenizer.json": b"{}"}))  # what the forger wants fetched
    log = EventLog(redis_client)
    _point(log, "tok-1", file_id)
    log.append(forged_pointer(kind, "tokenizer", {"correlation_id": "tok-1"}, chosen))
    log.append(forged_pointer(kind, "tokenizer", {"correlation_id": "tok-2"}, chosen))

    assert fetch_tokenizer(log, artifacts, "tok-1", SIGNING_KEYS).get_vocab() == (
        tokenizer.get_vocab()
    )
    with pytest.raises(StageError, match="tokenizer tok-2 has no verified pointer") as caught:
        fetch_tokenizer(log, artifacts, "tok-2", SIGNING_KEYS)
    assert caught.value.error_code == "tokenizer_unavailable"
    assert not [seen for seen in local_bank.faults.seen if chosen in seen.path]  # never fetched


def test_a_tokenizer_without_pointer_fails(
    redis_client: redis.Redis, artifacts: ArtifactFetcher
) -> None:
    with pytest.raises(StageError, match="tokenizer tok-1 has no verified pointer") as caught:
        fetch_tokenizer(EventLog(redis_client), artifacts, "tok-1", SIGNING_KEYS)
    assert caught.value.error_code == "tokenizer_unavailable"


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "could not be fetched"),
        (_tar({"readme.txt": b"no tokenizer here"}), "holds no tokenizer.json"),
        (_tar({"tokenizer.json": b"{}"}, symlink=True), "could not be fetched"),
    ],
    ids=["missing", "not-a-tokenizer", "unsafe"],
)
def test_a_tokenizer_artifact_that_cannot_be_used_fails(
    redis_client: redis.Redis,
    local_bank: LocalBank,
    artifacts: ArtifactFetcher,
    content: bytes | None,
    message: str,
) -> None:
    log = EventLog(redis_client)
    _point(log, "tok-1", MISSING if content is None else local_bank.put(content))
    with pytest.raises(StageError, match=message):
        fetch_tokenizer(log, artifacts, "tok-1", SIGNING_KEYS)


def test_a_tokenizer_artifact_while_data_bank_is_down_is_left_for_later(
    redis_client: redis.Redis, local_bank: LocalBank, artifacts: ArtifactFetcher
) -> None:
    log = EventLog(redis_client)
    _point(log, "tok-1", local_bank.put(_tar({"tokenizer.json": b"{}"})))
    local_bank.faults.add(Fault(kind="answer", method="GET", times=3))
    with pytest.raises(TransientError):
        fetch_tokenizer(log, artifacts, "tok-1", SIGNING_KEYS)
