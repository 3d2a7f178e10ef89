"""Extract an artifact tar without trusting it.

Only regular files and directories, each inside the target (no links, devices, absolute
paths or `..`; `./` prefixes are fine), within a bounded member count and total size counted
in what each member writes, not what the archive weighs; sparse members, whose holes would be
written out in full, are refused; pickled weights are refused because loading them runs code.
Files are streamed out one at a time, never read whole.
"""

from __future__ import annotations

import io
import shutil
import tarfile
from pathlib import Path, PurePosixPath

from pydantic import BaseModel, ConfigDict, Field

PICKLED_SUFFIXES = frozenset({".bin", ".pt", ".pth", ".pkl", ".pickle", ".ckpt"})
MAX_NAME_BYTES = 255
"""Longest member name component (`NAME_MAX` of common file systems)."""
MAX_PATH_BYTES = 1024
"""Longest member name: well below `PATH_MAX` once under the cache's own directory."""


class UnsafeArtifactError(ValueError):
    """The tar holds something a reader must not extract."""


class ExtractLimits(BaseModel):
    """Bounds on what one artifact may unpack to."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    max_members: int = Field(default=10_000, ge=1)
    max_total_bytes: int = Field(default=20 * 2**30, ge=0)


DEFAULT_LIMITS = ExtractLimits()


def _checked_name(member: tarfile.TarInfo) -> PurePosixPath:
    # `./a` is `a`; `.` itself (what `tar -C dir -cf x.tar .` puts first) is the target, which
    # only a directory may be.
    name = PurePosixPath(member.name)
    if name.is_absolute() or ".." in name.parts or not (name.parts or member.isdir()):
        raise UnsafeArtifactError(f"member {member.name!r} would land outside the target")
    if not (member.isreg() or member.isdir()):
        raise UnsafeArtifactError(f"member {member.name!r} is not a regular file or directory")
    longest = max((len(part.encode()) for part in name.parts), default=0)
    if longest > MAX_NAME_BYTES or len(member.name.encode()) > MAX_PATH_BYTES:
        raise UnsafeArtifactError(
            f"member {member.name[:40]!r}... has a name longer than {MAX_NAME_BYTES} bytes "
            f"per part or {MAX_PATH_BYTES} in all"
        )
    if member.issparse():
        # tarfile fills the holes with zeros: a few stored blocks would write `size` bytes.
        raise UnsafeArtifactError(
            f"member {member.name!r} is sparse: it would expand to {member.size} bytes on disk"
        )
    if member.isreg() and name.suffix.lower() in PICKLED_SUFFIXES:
        raise UnsafeArtifactError(
            f"member {member.name!r} holds pickled weights; only safetensors load"
        )
    return name


def safe_extract(archive: Path, target: Path, limits: ExtractLimits = DEFAULT_LIMITS) -> None:
    """Extract `archive` into the new directory `target`, refusing anything unsafe."""
    target.mkdir(parents=True)
    total = 0
    try:
        with tarfile.open(archive, mode="r:") as tar:
            for count, member in enumerate(tar, start=1):
                if count > limits.max_members:
                    raise UnsafeArtifactError(f"more than {limits.max_members} members")
                name = _checked_name(member)
                total += member.size
                if total > limits.max_total_bytes:
                    raise UnsafeArtifactError(f"more than {limits.max_total_bytes} bytes unpacked")
                _write(tar, member, target.joinpath(*name.parts))
    except tarfile.TarError as error:
        raise UnsafeArtifactError(f"not a readable tar: {error}") from error
    except FileExistsError as error:
        twice = _inside(error, target)
        raise UnsafeArtifactError(f"member {twice!r} appears twice") from error
    except NotADirectoryError as error:  # `a/b/c` after the file `a`
        through = _inside(error, target)
        raise UnsafeArtifactError(f"member path {through!r} passes through a file") from error


def _inside(error: OSError, target: Path) -> str:
    """The member's name, not where it was written: that path is the reader's own."""
    return Path(error.filename).relative_to(target).as_posix()


def _write(tar: tarfile.TarFile, member: tarfile.TarInfo, path: Path) -> None:
    if member.isdir():
        path.mkdir(parents=True, exist_ok=True)
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    with tar.extractfile(member) or io.BytesIO() as source, path.open("xb") as out:
        shutil.copyfileobj(source, out, 1 << 20)
