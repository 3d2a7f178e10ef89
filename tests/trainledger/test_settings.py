"""Paths in the settings are absolute from the start, so no engine or service sees a relative one."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError
from typer.testing import CliRunner

from tests.projections.factories import SIGNING_KEY
from trainledger.cli import app
from trainledger.settings import Settings


def test_relative_paths_resolve_against_the_directory_settings_are_read_in(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("REDIS__DATA_DIR", "APP__ARTIFACTS_ROOT", "INFERENCE__CACHE_DIR"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)
    defaults = Settings()
    assert defaults.redis.data_dir == tmp_path / "var" / "engine"
    assert defaults.app.artifacts_root == tmp_path / "var" / "artifacts"
    assert defaults.inference.cache_dir == tmp_path / "var" / "inference"
    monkeypatch.setenv("REDIS__DATA_DIR", "../elsewhere/engine")
    assert Settings().redis.data_dir == tmp_path.parent / "elsewhere" / "engine"


def test_rebuild_starts_its_engine_from_a_relative_data_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(
        app,
        ["rebuild", "--verify"],
        env={"REDIS__URL": None, "REDIS__DATA_DIR": "var/engine", "APP__SIGNING_KEY": SIGNING_KEY},
    )
    assert result.exit_code == 0, result.output
    assert "verified only: nothing changed" in result.output
    assert (tmp_path / "var" / "engine" / "engine.log").is_file()


def test_the_inference_cache_budget_is_10_gib_unless_set(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("INFERENCE__CACHE_MAX_BYTES", raising=False)
    assert Settings().inference.cache_max_bytes == 10 * 2**30
    monkeypatch.setenv("INFERENCE__CACHE_MAX_BYTES", "1000")
    assert Settings().inference.cache_max_bytes == 1000
    monkeypatch.setenv("INFERENCE__CACHE_MAX_BYTES", "-1")
    with pytest.raises(ValidationError, match="cache_max_bytes"):
        Settings()
