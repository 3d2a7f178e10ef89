"""`runs list/show/logs/watch/cancel/delete` against the running services."""

from __future__ import annotations

import json

from rich.console import Console

from tests.client.conftest import Cli, System, closed_port_url
from tests.databank.faults import Fault
from tests.harness import tiny_spec
from tests.waiting import wait_until
from trainledger.client.models import Run
from trainledger.client.tables import attempt, run_table


def test_list_shows_runs_with_their_name_status_and_tags(cli: Cli, trained: str) -> None:
    table = cli.ok("runs", "list").stdout
    row = next(line for line in table.splitlines() if trained in line)
    assert "baseline" in row
    assert "completed" in row
    assert "lr=default, suite=client" in row
    assert trained in listed(cli)


def listed(cli: Cli, *filters: str) -> list[str]:
    """The ids `runs list --json` prints."""
    page = cli.json("runs", "list", "--limit", "200", *filters)
    assert isinstance(page, dict)
    assert isinstance(page["items"], list)
    return [str(item["run_id"]) for item in page["items"] if isinstance(item, dict)]


def test_list_filters_by_status_name_and_tags(cli: Cli, system: System, trained: str) -> None:
    assert trained in listed(
        cli, "--status", "completed", "--name", "baseline", "--tag", "suite=client"
    )
    assert trained not in listed(cli, "--status", "failed")
    assert trained not in listed(cli, "--name", "other")
    assert trained not in listed(cli, "--tag", "suite=client", "--tag", "lr=other")


def test_list_errors_are_one_line(cli: Cli) -> None:
    assert cli.fails("runs", "list", "--tag", "nokey") == "error: --tag 'nokey': expected key=value"
    unreachable = closed_port_url()
    assert cli.fails("runs", "list", "--api-url", unreachable) == (
        f"error: cannot reach the API at {unreachable}: is `trainledger up` running?"
    )
    assert cli.fails("runs", "list", "--status", "sleeping").startswith(
        "error: VALIDATION_ERROR: query.status:"
    )
    assert cli.fails("runs", "list", "--api-url", "localhost:8000") == (
        "error: --api-url must be an http:// or https:// URL, not 'localhost:8000'"
    )


def test_show_prints_a_run_and_its_metrics(cli: Cli, trained: str) -> None:
    shown = cli.ok("runs", "show", trained).stdout
    assert "baseline" in shown
    assert "completed" in shown
    assert "metrics.train_loss" in shown
    record = cli.json("runs", "show", trained)
    assert isinstance(record, dict)
    assert (record["run_id"], record["status"], record["name"]) == (
        trained,
        "completed",
        "baseline",
    )
    assert isinstance(record["artifact"], dict)
    assert str(record["artifact"]["file_id"]) in shown
    assert cli.fails("runs", "show", "nope") == "error: NOT_FOUND: no run nope"


def test_logs_prints_the_lines_and_how_the_run_ended(cli: Cli, trained: str) -> None:
    printed = cli.ok("runs", "logs", trained).stdout.splitlines()
    assert printed[-1] == "run completed"
    assert any(line.startswith("step 3/3 loss") for line in printed)
    assert cli.ok("runs", "logs", trained, "--follow").stdout.splitlines() == printed
    lines = [
        json.loads(line) for line in cli.ok("runs", "logs", trained, "--json").stdout.splitlines()
    ]
    assert lines[-1] == {"status": "completed", "message": None}
    progress = [line for line in lines if line.get("kind") == "progress"]
    assert [line["step"] for line in progress] == [1, 2, 3]
    assert all(isinstance(line["loss"], float) for line in progress)
    assert cli.fails("runs", "logs", "nope") == "error: NOT_FOUND: no run nope"


def test_watch_follows_a_completed_run_to_exit_0(cli: Cli, trained: str) -> None:
    result = cli.ok("runs", "watch", trained)
    assert result.stdout.strip() == f"run {trained} completed"
    lines = [
        json.loads(line) for line in cli.ok("runs", "watch", trained, "--json").stdout.splitlines()
    ]
    assert lines[-1] == {"status": "completed", "message": None}
    assert [line["step"] for line in lines if line.get("kind") == "progress"] == [1, 2, 3]
    assert cli.fails("runs", "watch", "nope") == "error: NOT_FOUND: no run nope"


def test_watch_resumes_a_dropped_stream_without_losing_or_repeating_lines(
    cli: Cli, system: System, trained: str
) -> None:
    whole = cli.ok("runs", "watch", trained, "--json").stdout
    system.api_faults.reset()
    for after in (0, 150, 400):
        system.api_faults.add(Fault(kind="cut", path=f"/runs/{trained}/logs", after_bytes=after))
    assert cli.ok("runs", "watch", trained, "--json").stdout == whole
    assert system.api_faults.applied["cut"] == 3
    assert len(system.api_faults.requests("GET", f"/runs/{trained}/logs")) == 4


def test_watch_gives_up_on_a_stream_that_keeps_breaking(
    cli: Cli, system: System, trained: str
) -> None:
    system.api_faults.add(Fault(kind="cut", path=f"/runs/{trained}/logs", times=5))
    assert cli.fails("runs", "watch", trained) == (
        f"error: the log stream of run {trained} broke 5 times in a row"
    )


def test_watch_of_a_failed_run_exits_3(cli: Cli, system: System) -> None:
    run_id = system.failed_run()
    message = system.status(run_id)["message"]
    assert cli.fails("runs", "watch", run_id, code=3) == (
        f"error: run {run_id} ended failed: {message}"
    )


def test_a_stream_event_that_does_not_parse_is_an_error(cli: Cli, system: System) -> None:
    system.api_faults.add(
        Fault(
            kind="answer",
            path="/runs/r1/logs",
            status=200,
            body=b"id: 1-0\ndata: {not json\n\n",
            headers=(("content-type", "text/event-stream"),),
        )
    )
    assert cli.fails("runs", "watch", "r1") == (
        "error: the log stream sent an unreadable 'message' event"
    )


def test_cancel_stops_a_run_and_watch_reports_it(cli: Cli, system: System) -> None:
    run_id = system.train(tiny_spec(system.corpus_id, max_steps=100_000))
    so_far = cli.ok("runs", "logs", run_id, "--json").stdout.splitlines()
    assert not any("status" in json.loads(line) for line in so_far)  # going on: no end yet
    assert cli.ok("runs", "cancel", run_id).stdout.strip() == f"cancel requested for run {run_id}"
    assert cli.fails("runs", "watch", run_id, code=3).startswith(
        f"error: run {run_id} ended cancelled"
    )
    assert (
        cli.fails("runs", "cancel", run_id) == f"error: CONFLICT: run {run_id} is already cancelled"
    )
    assert cli.fails("runs", "cancel", "nope") == "error: NOT_FOUND: no run nope"


def test_compare_puts_parameters_and_metrics_side_by_side(
    cli: Cli, system: System, trained: str
) -> None:
    other = system.train(tiny_spec(system.corpus_id, learning_rate=0.01))
    assert system.wait_final(other)["status"] == "completed"
    table = cli.ok("runs", "compare", trained, other).stdout
    differing = [line for line in table.splitlines() if line.lstrip("│ ").startswith("*")]
    assert any(
        "training.learning_rate" in line and "0.0005" in line and "0.01" in line
        for line in differing
    )
    assert not any("training.batch_size" in line for line in differing)
    assert "training.batch_size" in table
    compared = cli.json("runs", "compare", trained, other)
    assert isinstance(compared, dict)
    assert isinstance(compared["rows"], list)
    by_field = {row["field"]: row for row in compared["rows"] if isinstance(row, dict)}
    assert by_field["training.learning_rate"] == {
        "field": "training.learning_rate",
        "values": ["0.0005", "0.01"],
        "differs": True,
    }
    assert by_field["training.batch_size"]["differs"] is False
    assert by_field["name"]["values"] == ["baseline", ""]
    assert "metrics.train_loss" in by_field
    assert cli.fails("runs", "compare", trained) == "error: compare needs two or more runs"
    assert cli.fails("runs", "compare", trained, "nope") == "error: NOT_FOUND: no run nope"


def test_delete_removes_an_ended_run_after_asking(cli: Cli, system: System) -> None:
    run_id = system.failed_run()
    assert cli.fails("runs", "delete", run_id, stdin="n\n") == f"error: run {run_id} not deleted"
    assert system.status(run_id)["status"] == "failed"
    answered = cli.ok("runs", "delete", run_id, stdin="y\n").stdout  # the runner echoes "y"
    assert answered.splitlines()[-1] == f"run {run_id} deleted"
    assert run_id not in listed(cli)
    wait_until(lambda: system.status(run_id).get("status") == "deleted", what="deleted")
    accepted = cli.json("runs", "delete", system.failed_run(), "--yes")
    assert isinstance(accepted, dict)
    assert set(accepted) == {"run_id", "entry_id"}
    assert cli.fails("runs", "delete", "nope", "--yes") == "error: NOT_FOUND: no run nope"


def test_delete_refuses_a_run_still_going(cli: Cli, system: System) -> None:
    run_id = system.train(tiny_spec(system.corpus_id, max_steps=100_000))
    assert cli.fails("runs", "delete", run_id, "--yes").startswith("error: CONFLICT: ")
    cli.ok("runs", "cancel", run_id)
    system.wait_final(run_id)


def test_reproduce_follows_the_new_run_and_says_its_weights_are_byte_identical(
    cli: Cli, system: System, trained: str
) -> None:
    printed = cli.ok("runs", "reproduce", trained, "--watch").stdout.splitlines()

    requested = next(line for line in printed if line.endswith(f"requested: reproduces {trained}"))
    new_run = requested.split()[1]
    assert printed[-1] == f"run {new_run} reproduces {trained}; byte-identical weights"
    record = system.status(new_run)
    assert record["status"] == "completed"
    assert record["reproduction"] == {"of": trained, "identical": True, "differences": []}
    assert f"{trained}; byte-identical weights" in cli.ok("runs", "show", new_run).stdout
    shown = cli.json("runs", "show", new_run)
    assert isinstance(shown, dict)
    assert shown["reproduction"] == record["reproduction"]


def test_reproduce_answers_json_and_refuses_unknown_and_unfinished_runs(
    cli: Cli, system: System, trained: str
) -> None:
    accepted = cli.json("runs", "reproduce", trained)
    assert isinstance(accepted, dict)
    assert accepted["reproduces"] == trained
    assert system.wait_final(str(accepted["run_id"]))["status"] == "completed"
    assert cli.fails("runs", "reproduce", "nope") == "error: NOT_FOUND: no run nope"
    failed = system.failed_run()
    assert cli.fails("runs", "reproduce", failed) == (
        f"error: CONFLICT: run {failed} is failed: only a completed run can be reproduced"
    )


def test_show_says_which_attempt_runs_and_where_it_started() -> None:
    first = Run(run_id="r1", status="running")
    assert attempt(first) == ""
    assert attempt(first.model_copy(update={"attempt": 2})) == "2, from step 0"
    resumed = first.model_copy(update={"attempt": 3, "resumed_at_step": 40})
    assert attempt(resumed) == "3, from the checkpoint at step 40"
    shown = Console(width=200, record=True)
    shown.print(run_table(resumed))
    rows = [
        [cell.strip() for cell in line.split("│")[1:-1]]
        for line in shown.export_text().splitlines()
    ]
    assert ["attempt", "3, from the checkpoint at step 40"] in rows
