"""`ArtifactUploader`: the deterministic tar, streamed to a real local Data Bank, verified."""

from __future__ import annotations

import hashlib
import io
import json
import os
import tarfile
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from pathlib import Path

import pytest

from consumers.tarball import UnsupportedMember
from consumers.uploader import TAR_CONTENT_TYPE, ArtifactUploader
from databank import FileInfo, IntegrityError
from tests.consumers.test_tarball import archive
from tests.databank.faults import Fault
from tests.harness import LocalBank


def _run_dir(root: Path) -> Path:
    run = root / "run"
    (run / "sub").mkdir(parents=True)
    (run / "model.safetensors").write_bytes(os.urandom(3000))
    (run / "sub" / "config.json").write_text('{"n": 1}')
    return run


def test_upload_streams_the_tar_and_answers_its_sha256(
    local_bank: LocalBank, tmp_path: Path
) -> None:
    run = _run_dir(tmp_path)
    with local_bank.client() as client:
        file_id = ArtifactUploader(client, chunk_size=1024).upload(run, name="run-r1.tar").file_id
        client.download_to(file_id, tmp_path / "copy.tar")
        info = client.info(file_id)

    assert file_id == hashlib.sha256(archive(run)).hexdigest()
    assert (tmp_path / "copy.tar").read_bytes() == archive(run)
    assert info.content_type == TAR_CONTENT_TYPE
    with tarfile.open(tmp_path / "copy.tar") as tar:
        assert sorted(tar.getnames()) == ["model.safetensors", "sub", "sub/config.json"]


def test_a_retried_upload_replays_the_stream_and_reports_what_was_sent(
    local_bank: LocalBank, tmp_path: Path
) -> None:
    run = _run_dir(tmp_path)
    local_bank.faults.add(Fault(kind="answer", method="POST", path="/files"))
    with local_bank.client() as client:
        receipt = ArtifactUploader(client).upload(run, name="run-r1.tar")

    data = archive(run)
    digest = hashlib.sha256(data).hexdigest()
    assert (receipt.file_id, receipt.sha256, receipt.size) == (digest, digest, len(data))
    assert receipt.seconds > 0
    assert len(local_bank.faults.requests("POST", "/files")) == 2


class _Answering:
    """A client that reads what it is sent and answers its sha256, with the size off by `size_delta`."""

    def __init__(self, size_delta: int = 0) -> None:
        self.size_delta = size_delta

    def upload(
        self,
        source: Path | Callable[[], Iterable[bytes]],
        *,
        filename: str = "file",
        content_type: str = "application/octet-stream",
    ) -> FileInfo:
        assert callable(source)
        body = b"".join(source())
        return FileInfo(
            file_id=hashlib.sha256(body).hexdigest(),
            size=len(body) + self.size_delta,
            sha256=hashlib.sha256(body).hexdigest(),
            content_type=content_type,
            created_at=datetime.now(UTC),
        )


def test_an_answer_of_another_size_is_refused(tmp_path: Path) -> None:
    with pytest.raises(IntegrityError, match="but the tar sent is"):
        ArtifactUploader(_Answering(size_delta=1)).upload(_run_dir(tmp_path), name="run.tar")


def test_an_answer_with_another_id_is_refused(local_bank: LocalBank, tmp_path: Path) -> None:
    """The client hashes what the uploader streams; a wrong id never becomes a receipt."""
    run = _run_dir(tmp_path)
    size = len(archive(run))
    body = json.dumps(
        {
            "file_id": "0" * 64,
            "size": size,
            "sha256": "0" * 64,
            "content_type": TAR_CONTENT_TYPE,
            "created_at": "2024-01-01T00:00:00Z",
        }
    ).encode()
    local_bank.faults.add(Fault(kind="answer", method="POST", status=201, body=body))
    with local_bank.client() as client, pytest.raises(IntegrityError, match="hash to"):
        ArtifactUploader(client).upload(run, name="run.tar")


def test_a_directory_that_cannot_be_archived_sends_nothing(
    local_bank: LocalBank, tmp_path: Path
) -> None:
    run = _run_dir(tmp_path)
    (run / "link").symlink_to(run / "model.safetensors")
    with local_bank.client() as client, pytest.raises(UnsupportedMember):
        ArtifactUploader(client).upload(run, name="run.tar")
    assert local_bank.faults.requests("POST", "/files") == []


def test_the_answered_bytes_are_the_tar(tmp_path: Path) -> None:
    run = _run_dir(tmp_path)
    sent: list[bytes] = []

    class Keeping(_Answering):
        def upload(
            self,
            source: Path | Callable[[], Iterable[bytes]],
            *,
            filename: str = "file",
            content_type: str = "application/octet-stream",
        ) -> FileInfo:
            assert callable(source)
            sent.append(b"".join(source()))
            return super().upload(lambda: [sent[-1]], filename=filename)

    ArtifactUploader(Keeping()).upload(run, name="run.tar")
    with tarfile.open(fileobj=io.BytesIO(sent[0])) as tar:
        assert "model.safetensors" in tar.getnames()
