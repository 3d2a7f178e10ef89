"""`--version` on the command and on every command group; the version itself."""

from __future__ import annotations

from collections.abc import Iterator
from importlib import metadata

import pytest
import typer
from typer.testing import CliRunner

from trainledger.cli import app
from trainledger.version import UNKNOWN, version, versioned

runner = CliRunner()


def groups(parent: typer.Typer, path: tuple[str, ...] = ()) -> Iterator[tuple[str, ...]]:
    """The command path of every group under `parent`, at any depth."""
    for info in parent.registered_groups:
        if info.typer_instance and isinstance(info.name, str):
            yield (*path, info.name)
            yield from groups(info.typer_instance, (*path, info.name))


def test_version_is_the_installed_distributions() -> None:
    assert version() == metadata.version("trainledger")


def test_a_source_tree_never_installed_has_an_unknown_version() -> None:
    assert version("trainledger-not-installed") == UNKNOWN == "0+unknown"


def test_version_prints_and_exits_zero() -> None:
    result = runner.invoke(app, ["--version"])
    assert result.exit_code == 0, result.output
    assert result.output == f"trainledger {version()}\n"


def test_every_command_group_answers_version() -> None:
    paths = list(groups(app))
    assert ("dlq",) in paths
    for path in paths:
        result = runner.invoke(app, [*path, "--version"])
        assert (result.exit_code, result.output) == (0, f"trainledger {version()}\n"), path


def test_a_group_keeps_its_own_callback_and_help() -> None:
    group = typer.Typer(help="A group with its own help.")

    @group.callback()
    def own() -> None:
        """Not replaced."""

    @group.command()
    def hello() -> None:
        typer.echo("hello")

    kept = versioned(group).registered_callback
    assert kept is not None
    assert kept.callback is own
    assert runner.invoke(group, ["hello"]).output == "hello\n"


def test_a_group_given_version_still_runs_its_commands() -> None:
    group = typer.Typer(help="A group without a callback.")

    @group.command()
    def hello() -> None:
        typer.echo("hello")

    @group.command()
    def other() -> None:
        typer.echo("other")

    versioned(group)
    assert runner.invoke(group, ["hello"]).output == "hello\n"
    assert runner.invoke(group, ["--version", "hello"]).output == f"trainledger {version()}\n"
    assert "A group without a callback." in runner.invoke(group, ["--help"]).output


@pytest.mark.parametrize("argv", [["dlq", "--help"], ["--help"]])
def test_help_lists_version(argv: list[str]) -> None:
    result = runner.invoke(app, argv)
    assert result.exit_code == 0
    assert "--version" in result.output
