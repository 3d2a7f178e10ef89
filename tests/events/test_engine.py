"""The engine launcher: a private, persistent engine, found and stopped by us."""

from __future__ import annotations

import importlib.util
import shutil
import signal
import threading
from pathlib import Path

import pytest
import redis

from events import (
    EngineError,
    EventLog,
    LocalEngine,
    TrainingCancelRequested,
    connect,
    engine_url,
    names,
    url_password,
    without_password,
)
from events import engine as engine_module
from events.engine import PASSWORD_FILE, PID_FILE, PORT_FILE, running_engine


def test_appended_data_survives_a_restart_in_the_same_data_directory(tmp_path: Path) -> None:
    engine = LocalEngine(tmp_path)
    engine.start()
    try:
        appended = EventLog(connect(engine.url)).append(TrainingCancelRequested(correlation_id="r"))
        pid = engine.pid
        engine.restart()
        assert engine.pid != pid
        [entry] = EventLog(connect(engine.url)).read_range(names.TRAINING_STREAM)
        assert entry.entry_id == appended.entry_id
    finally:
        engine.stop()
    assert engine.pid is None
    assert any(path.name.startswith("appendonly") for path in tmp_path.iterdir())
    engine.stop()  # stopping twice is harmless


def test_engine_url_passes_a_given_url_through(tmp_path: Path) -> None:
    with engine_url("redis://example:1/0", tmp_path) as url:
        assert url == "redis://example:1/0"
    assert not list(tmp_path.iterdir())


def test_engine_url_starts_and_stops_a_private_engine(tmp_path: Path) -> None:
    with engine_url(None, tmp_path) as url:
        assert connect(url).ping()
    with pytest.raises(redis.ConnectionError):
        connect(url).ping()


def test_a_client_without_the_password_is_refused(tmp_path: Path) -> None:
    """The private engine asks for a password generated once and kept beside its data (0600):
    only processes given its URL, or able to read its directory, can write the log."""
    with engine_url(None, tmp_path) as url:
        kept = tmp_path / PASSWORD_FILE
        password = kept.read_text().strip()
        assert kept.stat().st_mode & 0o777 == 0o600
        assert f":{password}@" in url
        port = (tmp_path / PORT_FILE).read_text()
        stranger = redis.Redis.from_url(f"redis://127.0.0.1:{port}/0")
        with pytest.raises(redis.AuthenticationError):  # NOAUTH, or HELLO refused
            stranger.xadd(names.TRAINING_STREAM, {"event": "{}"})
        stranger.close()
        assert running_engine(tmp_path) == url
        assert connect(url).xlen(names.TRAINING_STREAM) == 0
    with engine_url(None, tmp_path) as again:
        assert f":{password}@" in again  # kept across restarts


def test_a_password_is_masked_in_an_address_shown_or_logged() -> None:
    assert without_password("redis://:s3cret@127.0.0.1:1/0") == "redis://:***@127.0.0.1:1/0"
    assert without_password("redis://127.0.0.1:1/0") == "redis://127.0.0.1:1/0"
    assert url_password("redis://:s3cret@127.0.0.1:1/0") == "s3cret"
    assert url_password(None) is None


def test_no_binary_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None)
    monkeypatch.setattr(shutil, "which", lambda name: None)
    with pytest.raises(EngineError, match="no valkey-server"):
        engine_module.engine_binary()


def test_redis_server_on_path_is_the_fallback(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None)
    monkeypatch.setattr(shutil, "which", lambda name: "/usr/bin/redis-server")
    assert engine_module.engine_binary() == Path("/usr/bin/redis-server")


def test_an_engine_that_exits_at_once_is_reported(tmp_path: Path) -> None:
    (tmp_path / "appendonlydir").write_text("a file where a directory must be")
    engine = LocalEngine(tmp_path)
    with pytest.raises(EngineError, match="exited early"):
        engine.start()


def test_an_engine_that_never_answers_times_out(tmp_path: Path) -> None:
    engine = LocalEngine(tmp_path)
    with pytest.raises(EngineError, match="did not answer"):
        engine.start(timeout=0)
    assert engine.pid is None


def test_a_second_process_shares_the_engine_of_a_data_directory(tmp_path: Path) -> None:
    with engine_url(None, tmp_path) as first, engine_url(None, tmp_path) as second:
        assert first == second
        assert connect(second).ping()
    assert running_engine(tmp_path) is None


def test_a_stale_or_broken_port_file_is_ignored(tmp_path: Path) -> None:
    assert running_engine(tmp_path) is None
    (tmp_path / "engine.port").write_text("not a port")
    assert running_engine(tmp_path) is None
    (tmp_path / "engine.port").write_text(str(engine_module.free_port()))
    assert running_engine(tmp_path) is None  # no password kept: not ours
    (tmp_path / PASSWORD_FILE).write_text("kept")
    assert running_engine(tmp_path) is None  # nothing answers on the port


def test_a_relative_data_directory_is_made_absolute_before_valkey_sees_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    engine = LocalEngine(Path("var/engine"))  # valkey changes into --dir before the --logfile
    assert engine.data_dir == tmp_path / "var" / "engine"
    engine.start()
    try:
        assert connect(engine.url).ping()
        assert (tmp_path / "var/engine" / PID_FILE).read_text() == str(engine.pid)
        assert (tmp_path / "var/engine/engine.log").is_file()
    finally:
        engine.stop()
    assert not (tmp_path / "var/engine" / PID_FILE).exists()
    assert not (tmp_path / "var/engine" / PORT_FILE).exists()


def test_sigterm_unwinds_the_block_that_owns_a_private_engine(tmp_path: Path) -> None:
    # a real SIGTERM to a real service: tests/trainledger/test_single_services.py
    before = signal.getsignal(signal.SIGTERM)
    with engine_url(None, tmp_path):
        handler = signal.getsignal(signal.SIGTERM)
        assert handler is engine_module._unwind
        with pytest.raises(SystemExit) as stopped:
            engine_module._unwind(signal.SIGTERM, None)
        assert stopped.value.code == 128 + signal.SIGTERM
    assert signal.getsignal(signal.SIGTERM) is before


def test_outside_the_main_thread_no_handler_is_set(tmp_path: Path) -> None:
    seen: list[object] = []

    def use() -> None:
        with engine_url(None, tmp_path):
            seen.append(signal.getsignal(signal.SIGTERM))

    before = signal.getsignal(signal.SIGTERM)
    thread = threading.Thread(target=use)
    thread.start()
    thread.join(60)
    assert seen == [before]
