"""`models alias/unalias/list/show`."""

from __future__ import annotations

from tests.client.conftest import Cli, System
from tests.waiting import wait_until


def test_an_alias_is_set_shown_moved_back_and_removed(
    cli: Cli, system: System, trained: str
) -> None:
    assert cli.ok("models", "alias", "cli-model", "prod", trained).stdout.strip() == (
        f"cli-model@prod -> run {trained}"
    )
    wait_until(
        lambda: any(m["name"] == "cli-model" for m in system.api.get("/models").json()["items"]),
        timeout=30,
        what="the alias projected",
    )
    listed = cli.ok("models", "list").stdout
    assert "cli-model" in listed
    assert trained in listed
    shown = cli.json("models", "show", "cli-model")
    assert isinstance(shown, dict)
    assert isinstance(shown["aliases"], list)
    assert [a["run_id"] for a in shown["aliases"] if isinstance(a, dict)] == [trained]
    assert "(removed)" not in cli.ok("models", "show", "cli-model").stdout
    removed = cli.json("models", "unalias", "cli-model", "prod")
    assert isinstance(removed, dict)
    assert removed["run_id"] is None
    assert "(removed)" in cli.ok("models", "show", "cli-model").stdout


def test_alias_errors_are_one_line(cli: Cli, system: System) -> None:
    failed = system.failed_run()
    assert cli.fails("models", "alias", "m", "prod", "nobody") == "error: NOT_FOUND: no run nobody"
    assert cli.fails("models", "alias", "m", "prod", failed).startswith(
        f"error: CONFLICT: run {failed} is failed"
    )
    assert cli.fails("models", "show", "nobody") == "error: NOT_FOUND: no model nobody"
    assert cli.fails("models", "unalias", "nobody", "prod") == (
        "error: NOT_FOUND: no alias nobody@prod"
    )
