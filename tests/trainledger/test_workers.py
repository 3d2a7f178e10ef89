"""Several workers on one machine: node ids of their own and the cores split between them."""

from __future__ import annotations

import os

import pytest
from typer.testing import CliRunner

from trainledger.cli import app
from trainledger.local import worker_services
from trainledger.settings import AppSettings, Settings, WorkerSettings

CORES = len(os.sched_getaffinity(0))


def test_one_worker_keeps_the_plain_node_id_and_gets_every_core() -> None:
    [worker] = worker_services(Settings(app=AppSettings(node_id="box")), 1)
    assert (worker.name, worker.args) == ("worker", ("worker",))
    assert worker.env == {"WORKER__TORCH_THREADS": str(CORES)}  # no APP__NODE_ID: the plain one


@pytest.mark.parametrize("workers", [2, 3, 64])
def test_workers_get_numbered_node_ids_and_a_share_of_the_cores(workers: int) -> None:
    services = worker_services(Settings(app=AppSettings(node_id="box")), workers)
    assert [service.name for service in services] == [f"worker-{n}" for n in range(1, workers + 1)]
    assert [service.env["APP__NODE_ID"] for service in services] == [
        f"box-{n}" for n in range(1, workers + 1)
    ]
    threads = {service.env["WORKER__TORCH_THREADS"] for service in services}
    assert threads == {str(max(1, CORES // workers))}
    assert int(threads.pop()) * workers <= max(CORES, workers)  # never more than the cores


def test_the_torch_threads_setting_wins() -> None:
    settings = Settings(app=AppSettings(node_id="box"), worker=WorkerSettings(torch_threads=3))
    services = worker_services(settings, 2)
    assert [service.env["WORKER__TORCH_THREADS"] for service in services] == ["3", "3"]


def test_the_torch_threads_setting_is_read_from_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("WORKER__TORCH_THREADS", "5")
    assert Settings().worker.threads(workers=4) == 5
    monkeypatch.setenv("WORKER__TORCH_THREADS", "0")
    with pytest.raises(ValueError, match="torch_threads"):
        Settings()


def test_up_refuses_fewer_than_one_worker() -> None:
    result = CliRunner().invoke(app, ["up", "--workers", "0"])
    assert result.exit_code == 2
    assert "--workers" in result.output
    assert "Traceback" not in result.output


def test_openmp_threads_stand_in_for_an_unset_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("WORKER__TORCH_THREADS", raising=False)
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    assert Settings().worker.threads(workers=1) == 1
    monkeypatch.setenv("OMP_NUM_THREADS", "many")
    assert Settings().worker.threads(workers=1) >= 1
