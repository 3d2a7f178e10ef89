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


def test_refuses_a_path_through_a_file(tmp_path: Path) -> None:
    archive = make_tar(tmp_path / "a.tar", (member("a"), b"1"), (member("a/b/c"), b"2"))
    with pytest.raises(UnsafeArtifactError, match="member path 'a/b' passes through a file"):
        safe_extract(archive, tmp_path / "out")


def test_a_tar_of_dot_extracts_inside_the_target(tmp_path: Path) -> None:
    """What `tar -C dir -cf x.tar .` makes: the member `.` itself, then `./...` members."""
    source = tmp_path / "dir"
    (source / "weights").mkdir(parents=True)
    (source / "config.json").write_bytes(b"{}")
    (source / "weights" / "model.safetensors").write_bytes(b"x" * 10)
    archive = tmp_path / "x.tar"
    with tarfile.open(archive, "w") as tar:
        tar.add(source, arcname=".")

    safe_extract(archive, tmp_path / "out")

    assert (tmp_path / "out/config.json").read_bytes() == b"{}"
    assert (tmp_path / "out/weights/model.safetensors").read_bytes() == b"x" * 10
    assert sorted(path.name for path in tmp_path.iterdir()) == ["dir", "out", "x.tar"]


def test_dot_slash_does_not_hide_a_duplicate(tmp_path: Path) -> None:
    archive = make_tar(tmp_path / "a.tar", (member("./a"), b"1"), (member("a"), b"2"))
    with pytest.raises(UnsafeArtifactError, match="appears twice"):
        safe_extract(archive, tmp_path / "out")


SPARSE_SIZE = 8 * 2**20


def _octal(value: int) -> bytes:
    return b"%011o\0" % value


def _gnu_sparse_tar(path: Path) -> Path:
    """An old-GNU sparse member (type `S`): 512 stored bytes that unpack to `SPARSE_SIZE`.

    tarfile cannot write one, so the header fields are set by hand: the sparse map at 386, the
    real size at 483, then the checksum again.
    """
    info = tarfile.TarInfo("big.safetensors")
    info.size = 512
    info.type = tarfile.GNUTYPE_SPARSE
    header = bytearray(info.tobuf(format=tarfile.GNU_FORMAT))
    header[386:410] = _octal(SPARSE_SIZE - 512) + _octal(512)
    header[483:495] = _octal(SPARSE_SIZE)
    header[148:156] = b" " * 8
    header[148:155] = b"%06o\0" % sum(header)
    path.write_bytes(bytes(header) + b"x" * 512 + bytes(1024))
    return path


def _pax_sparse_tar(path: Path) -> Path:
    """A GNU sparse 1.0 member in pax headers: a sparse map, then the one stored block."""
    info = tarfile.TarInfo("GNUSparseFile.0/big.safetensors")
    info.pax_headers = {
        "GNU.sparse.major": "1",
        "GNU.sparse.minor": "0",
        "GNU.sparse.name": "big.safetensors",
        "GNU.sparse.realsize": str(SPARSE_SIZE),
    }
    sparse_map = f"1\n{SPARSE_SIZE - 512}\n512\n".encode().ljust(512, b"\0")
    data = sparse_map + b"x" * 512
    info.size = len(data)
    with tarfile.open(path, "w", format=tarfile.PAX_FORMAT) as tar:
        tar.addfile(info, io.BytesIO(data))
    return path


@pytest.mark.parametrize("build", [_gnu_sparse_tar, _pax_sparse_tar], ids=["gnu", "pax-1.0"])
def test_refuses_sparse_members(tmp_path: Path, build: Callable[[Path], Path]) -> None:
    archive = build(tmp_path / "sparse.tar")
    with tarfile.open(archive) as tar:
        assert [(m.name, m.size, m.issparse()) for m in tar] == [
            ("big.safetensors", SPARSE_SIZE, True)
        ]

    with pytest.raises(UnsafeArtifactError, match=f"sparse.*{SPARSE_SIZE} bytes"):
        safe_extract(archive, tmp_path / "out")

    assert archive.stat().st_size <= 10 * 1024
    assert list((tmp_path / "out").iterdir()) == []
