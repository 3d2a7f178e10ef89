"""The deterministic, streamed tar: same content, same bytes; only files and directories."""

from __future__ import annotations

import io
import os
import tarfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from consumers.tarball import (
    TAR_FORMAT,
    FileChanged,
    UnsupportedMember,
    tar_stream,
)


def make_tree(root: Path) -> Path:
    """Files of awkward sizes (empty, one block, not a block multiple), nesting, odd names."""
    (root / "nested" / "deeper").mkdir(parents=True)
    (root / "empty-dir").mkdir()
    (root / "model.safetensors").write_bytes(bytes(range(256)) * 9)
    (root / "config.json").write_text('{"n_layer": 1}\n')
    (root / "block.bin").write_bytes(b"x" * 512)
    (root / "empty.txt").write_bytes(b"")
    (root / "nested" / "deeper" / "wörld.txt").write_text("unicode name\n")
    (root / "nested" / ("long-" * 30 + ".txt")).write_text("a name over 100 characters\n")
    return root


def archive(directory: Path, chunk_size: int = 1000) -> bytes:
    """The whole tar `tar_stream` produces, as one byte string."""
    return b"".join(tar_stream(directory, chunk_size=chunk_size))


def test_same_content_gives_same_bytes_whatever_the_metadata(tmp_path: Path) -> None:
    first = make_tree(tmp_path / "first")
    second = make_tree(tmp_path / "second")
    for path in second.rglob("*"):
        os.utime(path, (1_700_000_000, 1_700_000_000))
        path.chmod(0o700)

    assert archive(first) == archive(second)
    assert archive(first, chunk_size=7) == archive(first, chunk_size=1 << 20)


@contextmanager
def umask(mask: int) -> Iterator[None]:
    """The process's umask for the block (a node's umask decides the modes its files get)."""
    previous = os.umask(mask)
    try:
        yield
    finally:
        os.umask(previous)


def modes(tar: bytes) -> set[tuple[bool, int]]:
    with tarfile.open(fileobj=io.BytesIO(tar)) as opened:
        return {(member.isdir(), member.mode) for member in opened.getmembers()}


@pytest.mark.parametrize("mask", [0o077, 0o027, 0o002, 0o000])
def test_members_have_uniform_modes_whatever_the_nodes_umask(tmp_path: Path, mask: int) -> None:
    with umask(0o022):
        usual = make_tree(tmp_path / "usual")
    with umask(mask):
        other = make_tree(tmp_path / "other")
        (other / "run.sh").write_text("#!/bin/sh\n")
        (other / "run.sh").chmod(0o777 & ~mask)  # executable where the node allows it
    (usual / "run.sh").write_text("#!/bin/sh\n")
    assert {(path.stat().st_mode & 0o777) for path in other.rglob("*")} != {0o644, 0o755}

    assert archive(other) == archive(usual)
    assert modes(archive(other)) == {(False, 0o644), (True, 0o755)}


def test_different_content_gives_different_bytes(tmp_path: Path) -> None:
    first = make_tree(tmp_path / "first")
    second = make_tree(tmp_path / "second")
    (second / "config.json").write_text('{"n_layer": 2}\n')

    assert archive(first) != archive(second)


def normalize(info: tarfile.TarInfo) -> tarfile.TarInfo:
    """The reproducible-build recipe, applied through `tarfile`'s own `add`."""
    info.mtime = info.uid = info.gid = 0
    info.uname = info.gname = ""
    info.mode = 0o755 if info.isdir() else 0o644
    return info


def read_member(tar: tarfile.TarFile, member: tarfile.TarInfo) -> bytes:
    handle = tar.extractfile(member)
    assert handle is not None
    return handle.read()


def test_bytes_are_what_tarfile_writes_for_normalized_members(tmp_path: Path) -> None:
    tree = make_tree(tmp_path / "tree")
    expected = io.BytesIO()
    with tarfile.open(fileobj=expected, mode="w", format=TAR_FORMAT) as reference:
        for path in sorted(tree.rglob("*"), key=lambda path: path.relative_to(tree).parts):
            arcname = path.relative_to(tree).as_posix()
            reference.add(path, arcname, recursive=False, filter=normalize)

    assert archive(tree) == expected.getvalue()


def test_members_are_sorted_and_normalized(tmp_path: Path) -> None:
    tree = make_tree(tmp_path / "tree")

    with tarfile.open(fileobj=io.BytesIO(archive(tree))) as tar:
        members = tar.getmembers()
        contents = {m.name: read_member(tar, m) for m in members if m.isfile()}

    assert [member.name for member in members] == [
        "block.bin",
        "config.json",
        "empty-dir",
        "empty.txt",
        "model.safetensors",
        "nested",
        "nested/deeper",
        "nested/deeper/wörld.txt",
        "nested/" + "long-" * 30 + ".txt",
    ]
    for member in members:
        assert (member.mtime, member.uid, member.gid, member.uname, member.gname) == (
            0,
            0,
            0,
            "",
            "",
        )
        assert member.mode == (0o644 if member.isfile() else 0o755)
        assert member.isfile() or member.isdir()
    assert contents == {name: (tree / name).read_bytes() for name in contents}
    assert len(contents) == 6


def test_chunks_have_the_asked_size_and_any_chunking_gives_the_same_bytes(tmp_path: Path) -> None:
    tree = make_tree(tmp_path / "tree")

    chunks = list(tar_stream(tree, chunk_size=4096))
    data = b"".join(chunks)

    assert all(len(chunk) == 4096 for chunk in chunks[:-1])
    assert 0 < len(chunks[-1]) <= 4096
    assert len(data) % tarfile.RECORDSIZE == 0
    assert archive(tree, chunk_size=333) == data


def test_an_empty_directory_is_a_valid_empty_archive(tmp_path: Path) -> None:
    data = archive(tmp_path)

    assert data == b"\0" * tarfile.RECORDSIZE
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        assert tar.getmembers() == []


def test_symlinks_are_refused_before_any_byte_is_produced(tmp_path: Path) -> None:
    tree = make_tree(tmp_path / "tree")
    (tree / "nested" / "link").symlink_to(tree / "config.json")

    with pytest.raises(UnsupportedMember, match=r"nested/link: .*found a symlink"):
        tar_stream(tree)


def test_special_files_are_refused(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "pipe")

    with pytest.raises(UnsupportedMember, match=r"pipe: .*found a special file"):
        tar_stream(tmp_path)


def test_a_file_that_shrinks_while_streaming_fails_the_stream(tmp_path: Path) -> None:
    (tmp_path / "data.bin").write_bytes(b"x" * 2000)
    chunks = tar_stream(tmp_path, chunk_size=512)
    assert len(next(chunks)) == 512  # the header went out; the contents were not read yet

    (tmp_path / "data.bin").write_bytes(b"x" * 100)

    with pytest.raises(FileChanged, match=r"data\.bin: shrank"):
        list(chunks)


def test_a_file_that_grows_while_streaming_fails_the_stream(tmp_path: Path) -> None:
    (tmp_path / "data.bin").write_bytes(b"x" * 2000)
    chunks = tar_stream(tmp_path, chunk_size=512)

    with (tmp_path / "data.bin").open("ab") as handle:
        handle.write(b"more")

    with pytest.raises(FileChanged, match=r"data\.bin: grew"):
        list(chunks)


def test_chunk_size_must_be_positive(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="chunk_size"):
        tar_stream(tmp_path, chunk_size=0)
