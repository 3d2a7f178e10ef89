"""What every client command shares: `--version`, `--help`, and `--json` keeping stdout for
machine output (an error goes to stderr only)."""

from __future__ import annotations

import pytest

from tests.client.conftest import Cli, closed_port_url
from trainledger.version import version

COMMANDS = (
    ("train",), ("generate",), ("gc",), ("corpus", "upload"), ("runs", "list"), ("runs", "show"),
    ("runs", "watch"), ("runs", "logs"), ("runs", "cancel"), ("runs", "compare"),
    ("runs", "delete"), ("tokenizers", "list"), ("tokenizers", "show"), ("artifact", "download"),
)  # fmt: skip


@pytest.mark.parametrize("command", COMMANDS, ids=" ".join)
def test_every_command_takes_version_and_help(cli: Cli, command: tuple[str, ...]) -> None:
    assert cli.ok(*command, "--version").stdout == f"trainledger {version()}\n"
    assert "--json" in cli.ok(*command, "--help").stdout


def test_with_json_an_error_leaves_stdout_empty(cli: Cli) -> None:
    result = cli.run("runs", "list", "--json", "--api-url", closed_port_url())
    assert result.exit_code == 1
    assert result.stdout == ""
    assert result.stderr.startswith("error: cannot reach the API at ")
