"""`gc`: ended runs deleted in bulk, on a system of its own (it deletes what it finds)."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from tests.client.conftest import Cli, System, serve_system
from tests.databank.faults import Fault
from tests.harness import LocalBank, tiny_spec


@pytest.fixture(scope="module")
def own(tmp_path_factory: pytest.TempPathFactory, local_bank_server: LocalBank) -> Iterator[System]:
    """A system for this module alone."""
    with serve_system(tmp_path_factory.mktemp("gc-system"), local_bank_server) as system:
        yield system


@pytest.fixture
def gc_cli(own: System, local_bank: LocalBank) -> Cli:
    """A command runner on `own`, whose runs (all ended) were all deleted."""
    own.api_faults.reset()
    cli = Cli(own.env())
    cli.ok("gc", "--keep-last", "0")
    assert listed(cli) == []
    return cli


def listed(cli: Cli) -> list[str]:
    page = cli.json("runs", "list", "--limit", "200")
    assert isinstance(page, dict)
    assert isinstance(page["items"], list)
    return [str(item["run_id"]) for item in page["items"] if isinstance(item, dict)]


def test_gc_keeps_the_newest_and_spares_runs_still_going(gc_cli: Cli, own: System) -> None:
    ended = [own.failed_run() for _ in range(3)]  # oldest first
    going = own.train(tiny_spec(own.corpus_id, max_steps=100_000))
    assert listed(gc_cli) == [going, *reversed(ended)]

    dry = gc_cli.ok("gc", "--keep-last", "3", "--dry-run").stdout
    assert ended[0] in dry
    assert ended[1] not in dry
    assert "would delete 1 run" in dry
    assert gc_cli.json("gc", "--keep-last", "2", "--dry-run") == {
        "dry_run": True,
        "runs": [ended[1], ended[0]],
        "deleted": [],
        "failed": [],
    }
    assert listed(gc_cli) == [going, *reversed(ended)]

    assert gc_cli.json("gc", "--keep-last", "3", "--older-than", "0s") == {
        "dry_run": False,
        "runs": [ended[0]],
        "deleted": [ended[0]],
        "failed": [],
    }
    assert gc_cli.json("gc", "--older-than", "7d") == {
        "dry_run": False, "runs": [], "deleted": [], "failed": []
    }  # fmt: skip
    assert "deleted 2 runs" in gc_cli.ok("gc", "--older-than", "0s").stdout
    assert listed(gc_cli) == [going]
    gc_cli.ok("runs", "cancel", going)
    own.wait_final(going)


def test_gc_reports_the_runs_it_could_not_delete(gc_cli: Cli, own: System) -> None:
    first, second = own.failed_run(), own.failed_run()
    own.api_faults.add(Fault(kind="answer", method="DELETE", path=f"/runs/{second}", status=500))
    result = gc_cli.run("gc", "--keep-last", "0")
    assert result.exit_code == 1
    errors = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    assert errors[0].startswith(f"error: run {second}: HTTP 500: the API answered: ")
    assert errors[1] == "error: 1 of 2 runs not deleted"
    assert listed(gc_cli) == [second]
    assert first not in listed(gc_cli)
    assert json.loads(gc_cli.ok("gc", "--keep-last", "0", "--json").stdout)["deleted"] == [second]


def test_gc_needs_a_bound(gc_cli: Cli) -> None:
    assert gc_cli.fails("gc") == "error: give --keep-last N, --older-than DURATION, or both"
    wrong = gc_cli.run("gc", "--older-than", "soon")
    assert wrong.exit_code == 2
    assert "expected a duration like 7d, 12h, 1d12h or 90m" in wrong.stderr
