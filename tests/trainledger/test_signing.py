"""The pointer signing key reaches every command that signs or verifies through settings: a
command without one (or with a short one) refuses to start in one line; `up` generates one,
kept 0600 like the Data Bank key; no log shows it."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tests import logged
from tests.projections.factories import SIGNING_KEY
from trainledger.cli import app
from trainledger.local import SIGNING_KEY_FILE, signing_key
from trainledger.settings import Settings
from trainledger.signing import signing_keys
from trainledger.startup import start

BANK = {"APP__DATA_BANK_API_URL": "http://127.0.0.1:1", "APP__DATA_BANK_API_KEY": "k"}
SHARED_ENGINE = {"REDIS__URL": "redis://127.0.0.1:1"}
OLD_KEY = "the-previous-signing-key-" + "5" * 32


@pytest.fixture(autouse=True)
def _no_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("APP__SIGNING_KEY", raising=False)
    monkeypatch.delenv("APP__SIGNING_KEYS_PREVIOUS", raising=False)


@pytest.mark.parametrize("command", ["projector", "rebuild", "worker", "inference"])
def test_a_command_that_signs_or_verifies_needs_the_key(command: str) -> None:
    result = CliRunner().invoke(app, [command], env=BANK | SHARED_ENGINE)
    assert result.exit_code == 2, result.output
    assert f"trainledger {command} needs APP__SIGNING_KEY with REDIS__URL set" in result.output
    assert "Traceback" not in result.output


@pytest.mark.parametrize(
    "env",
    [
        {"APP__SIGNING_KEY": "short"},
        {"APP__SIGNING_KEY": SIGNING_KEY, "APP__SIGNING_KEYS_PREVIOUS": "x"},
    ],
    ids=["current", "previous"],
)
def test_a_short_key_is_refused_without_showing_it(env: dict[str, str]) -> None:
    result = CliRunner().invoke(app, ["projector"], env={**BANK, **SHARED_ENGINE, **env})
    assert result.exit_code == 2, result.output
    assert "every signing key has at least 32 characters" in result.output
    assert "short" not in result.output
    assert "Traceback" not in result.output


def test_previous_keys_are_a_comma_separated_list(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("APP__SIGNING_KEYS_PREVIOUS", f"{OLD_KEY}, {OLD_KEY[::-1]},")
    previous = Settings().app.signing_keys_previous
    assert [key.get_secret_value() for key in previous] == [OLD_KEY, OLD_KEY[::-1]]


def test_start_masks_the_signing_keys(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("APP__SIGNING_KEY", SIGNING_KEY)
    monkeypatch.setenv("APP__SIGNING_KEYS_PREVIOUS", OLD_KEY)
    start("tool")
    assert {SIGNING_KEY, OLD_KEY} <= set(logged.formatter().secrets)
    logging.getLogger("trainledger.test").warning("keys %s %s", SIGNING_KEY, OLD_KEY)
    assert json.loads(capsys.readouterr().err)["message"] == "keys *** ***"


def test_the_local_key_is_generated_once_and_kept_0600(tmp_path: Path) -> None:
    assert signing_key(tmp_path, "given") == "given"
    assert not (tmp_path / SIGNING_KEY_FILE).exists()
    generated = signing_key(tmp_path / "root", None)
    path = tmp_path / "root" / SIGNING_KEY_FILE
    assert oct(path.stat().st_mode & 0o777) == "0o600"
    assert len(generated) == 64
    assert signing_key(tmp_path / "root", None) == generated


def test_on_the_private_engine_the_key_beside_its_data_directory_is_used(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """`trainledger rebuild` next to `up` (or a stack started one command at a time) finds the
    key `up` keeps, with nothing to copy by hand; and masks it like a configured one."""
    kept = signing_key(tmp_path, None)  # what `up` with root tmp_path keeps
    monkeypatch.delenv("REDIS__URL", raising=False)
    monkeypatch.setenv("REDIS__DATA_DIR", str(tmp_path / "engine"))
    settings = start("tool")
    keys = signing_keys(settings, "rebuild")
    assert keys.current.get_secret_value() == kept
    logging.getLogger("trainledger.test").warning("key %s", kept)
    assert json.loads(capsys.readouterr().err.splitlines()[-1])["message"] == "key ***"
