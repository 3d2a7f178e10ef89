"""The deterministic tar of a run directory, streamed: identical content gives identical bytes.

Identical bytes give an identical sha256, which is the Data Bank file id, so a retried upload
deduplicates. Members are sorted; times, owners and modes are fixed; only regular files and
directories are archived. The archive is produced piece by piece (headers from
`TarInfo.tobuf`, file contents read in chunks), so neither a temporary tar file nor a whole
member is ever held: memory stays at about two chunks.
"""

from __future__ import annotations

import os
import stat
import tarfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Final

TAR_FORMAT: Final = tarfile.PAX_FORMAT
"""POSIX pax: no limits on name length; fixed so the bytes never depend on a library default."""

DEFAULT_CHUNK_SIZE = 1 << 20
_ENCODING = "utf-8"
_NUL = b"\0"


class ArchiveError(Exception):
    """The directory cannot be archived as asked."""


class UnsupportedMember(ArchiveError):  # noqa: N818 - names what happened, as httpx does
    """A symlink, device, FIFO or socket: an artifact holds only regular files and directories."""


class FileChanged(ArchiveError):  # noqa: N818 - names what happened, as httpx does
    """A file changed size while it was being archived; the tar would not match its listing."""


@dataclass(frozen=True, slots=True)
class _Member:
    path: Path
    info: tarfile.TarInfo


def tar_stream(directory: Path, *, chunk_size: int = DEFAULT_CHUNK_SIZE) -> Iterator[bytes]:
    """Stream the deterministic tar of `directory` in chunks of `chunk_size` bytes (the last shorter).

    The tree is listed and checked before this returns, so an unsupported member is refused before
    a single byte goes out; reading happens as the chunks are consumed.
    """
    if chunk_size < 1:
        raise ValueError("chunk_size must be at least 1")
    members = list(_walk(directory, directory))
    return _rechunk(_pieces(members, chunk_size), chunk_size)


def _walk(root: Path, directory: Path) -> Iterator[_Member]:
    """Depth first, entries sorted by name at each level: one fixed order for the same tree."""
    with os.scandir(directory) as scan:
        entries = sorted(scan, key=lambda entry: entry.name)
    for entry in entries:
        path = Path(entry.path)
        status = entry.stat(follow_symlinks=False)
        arcname = path.relative_to(root).as_posix()
        if stat.S_ISDIR(status.st_mode):
            yield _Member(path, _info(arcname, tarfile.DIRTYPE, 0o755, 0))
            yield from _walk(root, path)
        elif stat.S_ISREG(status.st_mode):
            yield _Member(path, _info(arcname, tarfile.REGTYPE, 0o644, status.st_size))
        else:
            raise UnsupportedMember(
                f"{arcname}: only regular files and directories can be archived "
                f"(found {_kind(status.st_mode)})"
            )


def _kind(mode: int) -> str:
    return "a symlink" if stat.S_ISLNK(mode) else "a special file"


def _info(arcname: str, kind: bytes, mode: int, size: int) -> tarfile.TarInfo:
    info = tarfile.TarInfo(arcname)
    info.type = kind
    info.mode = mode
    info.size = size
    info.mtime = 0
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    return info


def _pieces(members: Iterable[_Member], chunk_size: int) -> Iterator[bytes]:
    """The archive as byte strings: what `tarfile` writes for the same members, byte for byte."""
    offset = 0
    for member in members:
        header = member.info.tobuf(TAR_FORMAT, _ENCODING, "surrogateescape")
        yield header
        offset += len(header)
        if member.info.isfile():
            yield from _contents(member, chunk_size, offset)
            padding = -member.info.size % tarfile.BLOCKSIZE
            yield _NUL * padding
            offset += member.info.size + padding
    # The end of archive (two zero blocks), then zeros up to a whole record.
    offset += 2 * tarfile.BLOCKSIZE
    yield _NUL * (2 * tarfile.BLOCKSIZE + -offset % tarfile.RECORDSIZE)


def _contents(member: _Member, chunk_size: int, offset: int) -> Iterator[bytes]:
    """The file's bytes, read so that every read after the first ends on a chunk boundary of
    the archive (`offset` is where the contents start): those pass `_rechunk` uncopied."""
    left = member.info.size
    want = chunk_size - offset % chunk_size
    with member.path.open("rb") as handle:
        while left:
            chunk = handle.read(min(want, left))
            if not chunk:
                raise FileChanged(f"{member.info.name}: shrank while being archived")
            left -= len(chunk)
            want = chunk_size
            yield chunk
        if handle.read(1):
            raise FileChanged(f"{member.info.name}: grew while being archived")


def _rechunk(pieces: Iterable[bytes], chunk_size: int) -> Iterator[bytes]:
    """Regroup pieces into chunks of exactly `chunk_size` bytes, except the last.

    A whole chunk arriving on a chunk boundary goes out as it is (file contents, thanks to
    `_contents`); only the pieces around headers are copied.
    """
    buffer = bytearray()
    for piece in pieces:
        if not buffer and len(piece) == chunk_size:
            yield piece
            continue
        buffer += piece
        while len(buffer) >= chunk_size:
            yield bytes(buffer[:chunk_size])
            del buffer[:chunk_size]
    if buffer:
        yield bytes(buffer)
