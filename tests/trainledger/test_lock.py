"""`requirements.lock` pins every dependency exactly, covers pyproject.toml, and is what runs.

A dependency added to `pyproject.toml` without `make lock` fails here, not on a fresh machine.
"""

from __future__ import annotations

import re
import tomllib
from importlib import metadata
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

ROOT = Path(__file__).resolve().parents[2]
EXACT = re.compile(r"[A-Za-z0-9._-]+==[0-9][0-9a-z.!]*")


def pins() -> dict[str, Version]:
    """The lock's `name==version` lines, by canonical name."""
    lines = (ROOT / "requirements.lock").read_text().splitlines()
    pinned: dict[str, Version] = {}
    for line in lines:
        if line and not line.startswith("#"):
            name, version = line.split("==")
            pinned[canonicalize_name(name)] = Version(version)
    return pinned


def declared() -> list[Requirement]:
    """Every requirement of the project, runtime and dev."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    extras = project["optional-dependencies"]
    return [Requirement(text) for text in [*project["dependencies"], *extras["dev"]]]


def test_every_line_is_an_exact_pin() -> None:
    lines = [
        line
        for line in (ROOT / "requirements.lock").read_text().splitlines()
        if line and not line.startswith("#")
    ]
    assert lines
    for line in lines:  # no `-e`, no `name @ url`, no local label, no marker, no range
        assert EXACT.fullmatch(line), line
    assert pins()["torch"] == Version("2.13.0")


def test_the_lock_satisfies_pyproject() -> None:
    pinned = pins()
    for requirement in declared():
        name = canonicalize_name(requirement.name)
        assert name in pinned, f"{name} is not in requirements.lock: run make lock"
        assert requirement.specifier.contains(pinned[name]), (requirement, pinned[name])


def test_the_environment_under_test_is_the_lock() -> None:
    for name, pinned in pins().items():
        installed = Version(metadata.version(name))
        assert installed.public == pinned.public, (name, installed, pinned)
