"""Extract an artifact tar without trusting it.

Only regular files and directories, each inside the target (no links, devices, absolute
paths or `..`), within a bounded member count and total size; pickled weights are refused
because loading them runs code. Files are streamed out one at a time, never read whole.
"""

from __future__ import annotations

import io
import shutil
import tarfile
from pathlib import Path, PurePosixPath

from pydantic import BaseModel, ConfigDict, Field

PICKLED_SUFFIXES = frozenset({".bin", ".pt", ".pth", ".pkl", ".pickle", ".ckpt"})


class UnsafeArtifactError(ValueError):
    """The tar holds something a reader must not extract."""


class ExtractLimits(BaseModel):
    """Bounds on what one artifact may unpack to."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    max_members: int = Field(default=10_000, ge=1)
    max_total_bytes: int = Field(default=20 * 2**30, ge=0)


DEFAULT_LIMITS = ExtractLimits()


def _checked_name(member: tarfile.TarInfo) -> PurePosixPath:
    name = PurePosixPath(member.name)
    if name.is_absolute() or ".." in name.parts or not name.parts:
        raise UnsafeArtifactError(f"member {member.name!r} would land outside the target")
    if not (member.isreg() or member.isdir()):
        raise UnsafeArtifactError(f"member {member.name!r} is not a regular file or directory")
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
        raise UnsafeArtifactError(f"member {error.filename!r} appears twice") from error


def _write(tar: tarfile.TarFile, member: tarfile.TarInfo, path: Path) -> None:
    if member.isdir():
        path.mkdir(parents=True, exist_ok=True)
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    with tar.extractfile(member) or io.BytesIO() as source, path.open("xb") as out:
        shutil.copyfileobj(source, out, 1 << 20)
