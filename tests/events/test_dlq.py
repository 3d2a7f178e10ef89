"""Dead letters: listed with their reason, replayed in bounded chunks, by API and by CLI."""

from __future__ import annotations

import pytest
import redis
from typer.testing import CliRunner

from events import DeadLetter, dead_letter_streams, entries, list_dead_letters, names, replay
from trainledger.cli import app

GROUP = "g"
DLQ = names.dlq_stream(names.TRAINING_STREAM, GROUP)


def bury(client: redis.Redis, count: int) -> None:
    for i in range(count):
        client.xadd(
            DLQ,
            {
                b"original_stream": names.TRAINING_STREAM.encode(),
                b"original_id": f"{i}-0".encode(),
                b"group": GROUP.encode(),
                b"error": b"boom",
                b"attempts": b"6",
                b"original:event": f"payload-{i}".encode(),
            },
        )


def test_replay_moves_everything_back_in_chunks(redis_client: redis.Redis) -> None:
    bury(redis_client, 5)
    assert replay(redis_client, names.TRAINING_STREAM, GROUP, chunk=2) == 5
    assert redis_client.xlen(DLQ) == 0
    moved = entries(redis_client.xrange(names.TRAINING_STREAM))
    assert [fields[b"event"] for _, fields in moved] == [f"payload-{i}".encode() for i in range(5)]


def test_a_letter_without_fields_replays_as_an_empty_event(redis_client: redis.Redis) -> None:
    redis_client.xadd(DLQ, {b"error": b"?"})
    [letter] = list_dead_letters(redis_client, names.TRAINING_STREAM, GROUP)
    assert (letter.attempts, letter.original_id, letter.original_fields) == (0, "", {})
    assert replay(redis_client, names.TRAINING_STREAM, GROUP) == 1
    [(_, fields)] = entries(redis_client.xrange(names.TRAINING_STREAM))
    assert fields == {b"event": b""}


@pytest.fixture
def cli_env(redis_url: str, monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    monkeypatch.setenv("REDIS__URL", redis_url)
    return CliRunner()


def test_cli_lists_and_replays(redis_client: redis.Redis, cli_env: CliRunner) -> None:
    bury(redis_client, 2)
    redis_client.xadd(names.dlq_stream(names.UPLOAD_STREAM, "projector"), {b"error": b"other"})
    assert dead_letter_streams(redis_client) == sorted(
        [DLQ, names.dlq_stream(names.UPLOAD_STREAM, "projector")]
    )
    listed = cli_env.invoke(app, ["dlq", "list", "--group", GROUP], terminal_width=200)
    assert listed.exit_code == 0, listed.output
    assert listed.output.count("boom") == 2
    assert "other" not in listed.output
    by_stream = cli_env.invoke(
        app, ["dlq", "list", "--stream", names.UPLOAD_STREAM], terminal_width=200
    )
    assert "other" in by_stream.output
    assert "boom" not in by_stream.output
    replayed = cli_env.invoke(
        app, ["dlq", "replay", "--stream", names.TRAINING_STREAM, "--group", GROUP]
    )
    assert replayed.exit_code == 0, replayed.output
    assert "replayed 2 entries" in replayed.output
    again = cli_env.invoke(
        app, ["dlq", "replay", "--stream", names.UPLOAD_STREAM, "--group", "projector"]
    )
    assert "replayed 1 entry into" in again.output
    assert redis_client.xlen(DLQ) == 0


def test_cli_help_lists_commands() -> None:
    result = CliRunner().invoke(app, ["--help"])
    assert result.exit_code == 0
    assert "dlq" in result.output


def test_cli_lists_the_letters_of_a_group_whose_name_holds_colons(
    redis_client: redis.Redis, cli_env: CliRunner
) -> None:
    group = names.upload_group("node-a")
    redis_client.xadd(names.dlq_stream(names.UPLOAD_STREAM, group), {b"error": b"colon-group"})
    by_group = cli_env.invoke(app, ["dlq", "list", "--group", group], terminal_width=200)
    assert by_group.exit_code == 0, by_group.output
    assert "colon-group" in by_group.output
    by_stream = cli_env.invoke(
        app, ["dlq", "list", "--stream", names.UPLOAD_STREAM], terminal_width=200
    )
    assert "colon-group" in by_stream.output
    assert names.dlq_origin(names.dlq_stream(names.UPLOAD_STREAM, group)) == (
        names.UPLOAD_STREAM,
        group,
    )


def test_replay_revives_each_letter_before_its_chunk_goes_back(redis_client: redis.Redis) -> None:
    bury(redis_client, 3)
    seen: list[tuple[str, int, int]] = []

    def revive(letter: DeadLetter) -> None:
        seen.append(
            (letter.original_id, redis_client.xlen(DLQ), redis_client.xlen(names.TRAINING_STREAM))
        )

    assert replay(redis_client, names.TRAINING_STREAM, GROUP, chunk=2, revive=revive) == 3
    assert seen == [("0-0", 3, 0), ("1-0", 3, 0), ("2-0", 1, 2)]
