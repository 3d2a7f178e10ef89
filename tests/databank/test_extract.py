"""Artifact extraction refuses every member a reader must not trust."""

from __future__ import annotations

import io
import tarfile
from collections.abc import Callable
from pathlib import Path

import pytest

from databank import ExtractLimits, UnsafeArtifactError
from databank.client.extract import safe_extract


def make_tar(path: Path, *members: tuple[tarfile.TarInfo, bytes]) -> Path:
    with tarfile.open(path, "w") as tar:
        for info, data in members:
            info.size = len(data) if info.isreg() else 0
            tar.addfile(info, io.BytesIO(data) if info.isreg() else None)
    return path


def member(name: str, kind: bytes = tarfile.REGTYPE, **fields: str) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = kind
    for key, value in fields.items():
        setattr(info, key, value)
    return info


def test_extracts_files_and_directories(tmp_path: Path) -> None:
    archive = make_tar(
        tmp_path / "a.tar",
        (member("model", tarfile.DIRTYPE), b""),
        (member("model/config.json"), b"{}"),
        (member("model/weights/model.safetensors"), b"x" * 100),
    )
    safe_extract(archive, tmp_path / "out")
    assert (tmp_path / "out/model/config.json").read_bytes() == b"{}"
    assert (tmp_path / "out/model/weights/model.safetensors").stat().st_size == 100


BAD: list[tuple[str, Callable[[], tarfile.TarInfo], str]] = [
    ("absolute", lambda: member("/etc/passwd"), "outside the target"),
    ("dotdot", lambda: member("a/../../x"), "outside the target"),
    ("dot", lambda: member("."), "outside the target"),
    (
        "symlink",
        lambda: member("link", tarfile.SYMTYPE, linkname="/etc/passwd"),
        "not a regular file",
    ),
    ("hardlink", lambda: member("hard", tarfile.LNKTYPE, linkname="x"), "not a regular file"),
    ("device", lambda: member("dev", tarfile.CHRTYPE), "not a regular file"),
    ("fifo", lambda: member("fifo", tarfile.FIFOTYPE), "not a regular file"),
    ("pickle", lambda: member("pytorch_model.bin"), "pickled weights"),
    ("pt", lambda: member("weights.PT"), "pickled weights"),
]


@pytest.mark.parametrize(("label", "build", "message"), BAD, ids=[b[0] for b in BAD])
def test_refuses_unsafe_members(
    tmp_path: Path, label: str, build: Callable[[], tarfile.TarInfo], message: str
) -> None:
    archive = make_tar(tmp_path / "a.tar", (build(), b"data"))
    with pytest.raises(UnsafeArtifactError, match=message):
        safe_extract(archive, tmp_path / "out")
    assert not (tmp_path / "etc").exists()


def test_bounds_member_count_and_size(tmp_path: Path) -> None:
    archive = make_tar(tmp_path / "a.tar", (member("a"), b"1234"), (member("b"), b"5678"))
    with pytest.raises(UnsafeArtifactError, match="more than 1 members"):
        safe_extract(archive, tmp_path / "one", ExtractLimits(max_members=1))
    with pytest.raises(UnsafeArtifactError, match="more than 6 bytes"):
        safe_extract(archive, tmp_path / "six", ExtractLimits(max_total_bytes=6))


def test_refuses_duplicates_and_garbage(tmp_path: Path) -> None:
    archive = make_tar(tmp_path / "a.tar", (member("a"), b"1"), (member("a"), b"2"))
    with pytest.raises(UnsafeArtifactError, match="appears twice"):
        safe_extract(archive, tmp_path / "dup")
    garbage = tmp_path / "g.tar"
    garbage.write_bytes(b"not a tar at all" * 100)
    with pytest.raises(UnsafeArtifactError, match="not a readable tar"):
        safe_extract(garbage, tmp_path / "garbage")
