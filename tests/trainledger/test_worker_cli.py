"""`trainledger worker`: refuses to start without Data Bank; serves until SIGTERM."""

from __future__ import annotations

import os
import signal
import threading
from pathlib import Path

import pytest
import redis
import torch
from typer.testing import CliRunner

from events import (
    ArtifactPointerSet,
    EventLog,
    TokenizerParams,
    TokenizerRequested,
    TokenizerSpec,
)
from tests import logged
from tests.harness import LocalBank, events_of
from tests.projections.factories import SIGNING_KEY, SIGNING_KEYS
from tests.waiting import wait_until
from trainledger import worker_cli
from trainledger.cli import app
from trainledger.settings import Settings
from trainledger.version import version

URL, KEY = "APP__DATA_BANK_API_URL", "APP__DATA_BANK_API_KEY"


@pytest.mark.parametrize(
    ("env", "missing"),
    [({}, f"{URL}, {KEY}"), ({KEY: "k"}, URL), ({URL: "http://127.0.0.1:1"}, KEY)],
    ids=["both", "url", "key"],
)
def test_without_data_bank_it_refuses_to_start(
    monkeypatch: pytest.MonkeyPatch, env: dict[str, str], missing: str
) -> None:
    monkeypatch.delenv(URL, raising=False)
    monkeypatch.delenv(KEY, raising=False)
    result = CliRunner().invoke(app, ["worker"], env=env)
    assert result.exit_code == 2
    assert f"needs Data Bank: set {URL} and {KEY} (missing: {missing})" in result.output
    assert "Traceback" not in result.output


def test_a_node_id_unfit_for_a_group_name_is_refused() -> None:
    env = {
        URL: "http://127.0.0.1:1",
        KEY: "k",
        "APP__SIGNING_KEY": SIGNING_KEY,
        "APP__NODE_ID": "no spaces please",
    }
    result = CliRunner().invoke(app, ["worker"], env=env)
    assert result.exit_code == 2
    assert "invalid worker settings" in result.output
    assert "node_id" in result.output
    assert "Traceback" not in result.output


def test_the_upload_retry_window_reaches_the_node(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("WORKER__UPLOAD_RETRY_WINDOW_S", raising=False)
    assert worker_cli.worker_config(Settings(), SIGNING_KEYS).upload_retry_window_s == 3600
    monkeypatch.setenv("WORKER__UPLOAD_RETRY_WINDOW_S", "90")
    assert worker_cli.worker_config(Settings(), SIGNING_KEYS).upload_retry_window_s == 90


def test_the_node_records_the_trainledger_version_in_its_manifests() -> None:
    assert worker_cli.worker_config(Settings(), SIGNING_KEYS).trainledger_version == version()


def _ours() -> bool:
    handler = signal.getsignal(signal.SIGTERM)
    return getattr(handler, "__name__", "") == "on_signal"


def test_it_serves_this_node_until_sigterm(
    monkeypatch: pytest.MonkeyPatch,
    redis_url: str,
    redis_client: redis.Redis,
    local_bank: LocalBank,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    for name, value in {
        "REDIS__URL": redis_url,
        "APP__NODE_ID": "cli-node",
        "APP__ARTIFACTS_ROOT": str(tmp_path / "artifacts"),
        "WORKER__TORCH_THREADS": "2",
        URL: local_bank.url,
        KEY: local_bank.key,
        "APP__SIGNING_KEY": SIGNING_KEY,
    }.items():
        monkeypatch.setenv(name, value)
    corpus_id = local_bank.put_corpus(tmp_path)
    log = EventLog(redis_client)
    failures: list[BaseException] = []
    before = signal.getsignal(signal.SIGTERM)

    def drive() -> None:
        """Ask for a tokenizer, wait for its pointer, then SIGTERM this process."""
        try:
            wait_until(_ours, timeout=60, what="the worker's signal handlers")
            spec = TokenizerSpec(corpus_file_id=corpus_id, params=TokenizerParams(vocab_size=300))
            log.append(TokenizerRequested(correlation_id="tok-cli", payload=spec))
            wait_until(lambda: bool(events_of(log, "tok-cli", ArtifactPointerSet)), timeout=60)
        except BaseException as error:
            failures.append(error)
        finally:
            if _ours():
                os.kill(os.getpid(), signal.SIGTERM)

    driver = threading.Thread(target=drive)
    driver.start()
    try:
        worker_cli.worker()  # in the main thread, where signal handlers live
        threads = torch.get_num_threads()
    finally:
        torch.set_num_threads(1)  # as every test runs torch
    driver.join()

    assert failures == []
    assert signal.getsignal(signal.SIGTERM) is before
    [pointer] = events_of(log, "tok-cli", ArtifactPointerSet)
    assert (tmp_path / "artifacts" / "tokenizers" / "tok-cli" / "tokenizer.json").is_file()
    assert pointer.payload.subject == "tokenizer"
    err = capsys.readouterr().err
    [starting] = [r for r in logged.records(err) if r.get("event") == "worker_starting"]
    assert (starting["service"], starting["node_id"]) == ("worker", "cli-node")
    assert str(starting["message"]).endswith(", 2 torch threads")
    assert threads == 2
    assert local_bank.key in logged.formatter().secrets
    assert local_bank.key not in err
