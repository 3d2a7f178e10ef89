"""Lua scripts ship as package data, load through `lua_source`, and compile in the engine."""

from __future__ import annotations

import fnmatch
import tomllib
from importlib.resources import files
from pathlib import Path

import pytest
import redis

from events import lua_source
from events.liveness import _ANNOUNCE, _LIVE
from events.log import _APPEND
from events.runtime import _HEARTBEAT, _RECLAIM
from projections.drift import _MEMBERS, _READ, _SCAN
from projections.rebuild import _PAGE
from projections.repair import _CHECKPOINTS, _DELETE, _WRITE
from projections.store import APPLY

ROOT = Path(__file__).resolve().parents[2]
SETUPTOOLS = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
LUA = sorted(ROOT.glob("*/lua/*.lua"))

SCRIPTS = {
    "append": _APPEND,
    "reclaim": _RECLAIM,
    "heartbeat": _HEARTBEAT,
    "announce": _ANNOUNCE,
    "live": _LIVE,
    "apply": APPLY,
    "page": _PAGE,
    "read": _READ,
    "scan": _SCAN,
    "members": _MEMBERS,
    "write": _WRITE,
    "delete": _DELETE,
    "checkpoints": _CHECKPOINTS,
}
"""Every script the code registers, by the file that holds its body."""


def test_there_are_lua_files_in_both_packages() -> None:
    assert {path.parent.parent.name for path in LUA} == {"events", "projections"}


@pytest.mark.parametrize("path", LUA, ids=lambda path: f"{path.parent.parent.name}/{path.name}")
def test_every_lua_file_is_package_data_and_loads(path: Path) -> None:
    package = path.parent.parent.name
    included = SETUPTOOLS["packages"]["find"]["include"]
    assert any(fnmatch.fnmatch(package, pattern) for pattern in included)
    patterns = SETUPTOOLS["package-data"]["*"]
    assert any(fnmatch.fnmatch(f"lua/{path.name}", pattern) for pattern in patterns)
    resource = files(package) / "lua" / path.name
    assert resource.is_file()
    if "{{" not in path.read_text():
        assert lua_source(package, path.stem) == path.read_text()


def test_every_file_with_a_body_is_a_script() -> None:
    preludes = {"pack", "bytewise", "owned"}
    assert {path.stem for path in LUA} == preludes | set(SCRIPTS)


@pytest.mark.parametrize("name", sorted(SCRIPTS))
def test_every_script_compiles_in_the_engine(name: str, redis_client: redis.Redis) -> None:
    digest = redis_client.script_load(SCRIPTS[name])
    assert redis_client.script_exists(digest) == [True]


def test_parts_are_joined_in_order_and_placeholders_filled() -> None:
    joined = lua_source("projections", "owned", "write")
    assert joined.index("LOCKLOST") < joined.index("cjson.decode")
    assert "{{" not in APPLY
    assert '"fallback": "queued"' in APPLY


def test_a_placeholder_must_have_a_value_and_a_value_a_placeholder() -> None:
    with pytest.raises(KeyError, match="rules"):
        lua_source("projections", "apply")
    with pytest.raises(ValueError, match="no placeholder for"):
        lua_source("events", "append", rules="{}")
