"""`artifact download RUN DIR`: pointer from the API, verified download from Data Bank, safe
extraction, into a folder that `from_pretrained` loads."""

from __future__ import annotations

import io
import json
import tarfile
from pathlib import Path

from transformers import AutoModelForCausalLM, AutoTokenizer

from tests.client.conftest import Cli, System, closed_port_url
from tests.databank.faults import Fault


def test_download_gives_a_folder_from_pretrained_loads(
    cli: Cli, system: System, trained: str, tmp_path: Path
) -> None:
    target = tmp_path / "models" / "baseline"
    printed = cli.ok("artifact", "download", trained, str(target)).stdout.strip()
    file_id = system.status(trained)["artifact"]
    assert isinstance(file_id, dict)
    assert printed == f"run {trained}: artifact {file_id['file_id']} in {target}"
    model = AutoModelForCausalLM.from_pretrained(target, use_safetensors=True)
    tokenizer = AutoTokenizer.from_pretrained(target)
    assert model.config.n_layer == 1
    assert tokenizer("The quick")["input_ids"]
    assert [path.name for path in target.parent.iterdir()] == ["baseline"]  # no staging left
    empty = tmp_path / "empty"
    empty.mkdir()
    assert cli.json("artifact", "download", trained, str(empty)) == {
        "run_id": trained,
        "file_id": file_id["file_id"],
        "path": str(empty),
    }
    assert (empty / "config.json").is_file()
    assert cli.fails("artifact", "download", trained, str(target)) == (
        f"error: {target} exists and is not an empty directory"
    )


def _fake_pointer(system: System, run_id: str, file_id: str) -> None:
    body = json.dumps({"storage": "data-bank", "file_id": file_id}).encode()
    system.api_faults.add(
        Fault(kind="answer", path=f"/runs/{run_id}/artifact", status=200, body=body)
    )


def test_download_failures_are_one_line(
    cli: Cli, system: System, trained: str, tmp_path: Path
) -> None:
    assert cli.fails("artifact", "download", "nope", str(tmp_path / "a")) == (
        "error: NOT_FOUND: run nope has no artifact"
    )
    unreachable = closed_port_url()
    assert (
        cli.fails(
            "artifact", "download", trained, str(tmp_path / "b"), "--databank-url", unreachable
        )
        == f"error: cannot reach Data Bank at {unreachable}: is `trainledger up` running?"
    )
    _fake_pointer(system, "r-missing", "a" * 64)
    assert cli.fails("artifact", "download", "r-missing", str(tmp_path / "c")).startswith(
        "error: Data Bank: "
    )
    blocker = tmp_path / "file"
    blocker.write_text("")
    assert cli.fails("artifact", "download", trained, str(blocker / "d")).startswith("error: ")
    assert not (tmp_path / "a").exists()


def test_an_unsafe_or_corrupted_artifact_is_refused(
    cli: Cli, system: System, tmp_path: Path
) -> None:
    archive = io.BytesIO()
    with tarfile.open(fileobj=archive, mode="w") as tar:
        member = tarfile.TarInfo("../escaped.txt")
        member.size = 2
        tar.addfile(member, io.BytesIO(b"hi"))
    unsafe = system.bank.put(archive.getvalue())
    _fake_pointer(system, "r-unsafe", unsafe)
    assert cli.fails("artifact", "download", "r-unsafe", str(tmp_path / "out")).startswith(
        "error: artifact refused: "
    )
    assert not (tmp_path / "escaped.txt").exists()
    _fake_pointer(system, "r-corrupt", unsafe)
    system.bank.faults.add(
        Fault(kind="answer", method="GET", path=f"/files/{unsafe}", status=200, body=b"x" * 10)
    )
    assert cli.fails("artifact", "download", "r-corrupt", str(tmp_path / "out")).startswith(
        "error: Data Bank: downloaded bytes hash to "
    )
