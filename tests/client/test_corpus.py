"""`corpus upload`: streamed to Data Bank, the file id printed; every failure one line."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest

from tests.client.conftest import Cli, System, closed_port_url
from tests.databank.faults import Fault
from tests.harness import write_corpus


def test_upload_prints_the_file_id(cli: Cli, system: System, tmp_path: Path) -> None:
    corpus = write_corpus(tmp_path / "corpus.txt", seed=11)
    file_id = hashlib.sha256(corpus.read_bytes()).hexdigest()
    assert cli.ok("corpus", "upload", str(corpus)).stdout == f"{file_id}\n"
    assert cli.json("corpus", "upload", str(corpus)) == {
        "file_id": file_id,
        "size": corpus.stat().st_size,
        "path": str(corpus),
    }
    with system.bank.client() as bank:
        assert bank.head(file_id).size == corpus.stat().st_size


def test_a_large_file_streams_with_a_progress_bar(cli: Cli, tmp_path: Path) -> None:
    large = tmp_path / "large.txt"
    large.write_bytes(os.urandom(3 << 20))
    expected = hashlib.sha256(large.read_bytes()).hexdigest()
    assert cli.ok("corpus", "upload", str(large)).stdout.strip() == expected


def test_a_retried_upload_sends_the_file_again(cli: Cli, system: System, tmp_path: Path) -> None:
    corpus = write_corpus(tmp_path / "corpus.txt", seed=12)
    system.bank.faults.add(Fault(kind="answer", method="POST", path="/files", status=503))
    file_id = hashlib.sha256(corpus.read_bytes()).hexdigest()
    assert cli.ok("corpus", "upload", str(corpus)).stdout.strip() == file_id
    assert system.bank.faults.applied["answer"] == 1


def test_the_key_comes_from_the_environment_or_var_databank_key(
    cli: Cli, system: System, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    corpus = write_corpus(tmp_path / "corpus.txt", seed=13)
    monkeypatch.chdir(tmp_path)
    no_key = {"TRAINLEDGER_DATABANK_KEY": None}
    assert cli.fails("corpus", "upload", str(corpus), env=no_key) == (
        "error: no Data Bank key: set TRAINLEDGER_DATABANK_KEY, or run this where "
        "`trainledger up` keeps var/databank.key"
    )
    (tmp_path / "var").mkdir()
    (tmp_path / "var" / "databank.key").write_text(f"{system.bank.key}\n")
    assert len(cli.ok("corpus", "upload", str(corpus), env=no_key).stdout.strip()) == 64
    assert cli.fails(
        "corpus", "upload", str(corpus), env={"TRAINLEDGER_DATABANK_KEY": "wrong"}
    ).startswith("error: Data Bank: ")


def test_upload_failures_are_one_line(cli: Cli, system: System, tmp_path: Path) -> None:
    corpus = write_corpus(tmp_path / "corpus.txt", seed=14)
    unreachable = closed_port_url()
    assert cli.fails("corpus", "upload", str(corpus), "--databank-url", unreachable) == (
        f"error: cannot reach Data Bank at {unreachable}: is `trainledger up` running?"
    )
    system.bank.faults.add(Fault(kind="answer", method="POST", path="/files", status=500, times=3))
    assert cli.fails("corpus", "upload", str(corpus)).startswith(
        "error: Data Bank: upload failed after 3 attempt(s): POST /files:"
    )
    assert cli.fails("corpus", "upload", str(corpus), "--databank-url", "ftp://x") == (
        "error: --databank-url must be an http:// or https:// URL, not 'ftp://x'"
    )
    missing = cli.run("corpus", "upload", str(tmp_path / "missing.txt"))
    assert missing.exit_code == 2
    assert "does not exist" in missing.stderr
