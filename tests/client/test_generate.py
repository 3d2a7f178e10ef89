"""`generate RUN PROMPT` through the inference service."""

from __future__ import annotations

from tests.client.conftest import Cli, closed_port_url


def test_generate_continues_the_prompt(cli: Cli, trained: str) -> None:
    text = cli.ok("generate", trained, "The quick", "--max-new-tokens", "5").stdout
    assert text.startswith("The quick")
    answer = cli.json(
        "generate", trained, "A", "--temperature", "0.9", "--seed", "7", "--top-k", "5"
    )
    assert isinstance(answer, dict)
    assert answer["run_id"] == trained
    assert str(answer["text"]).startswith("A")
    again = cli.json(
        "generate", trained, "A", "--temperature", "0.9", "--seed", "7", "--top-k", "5"
    )
    assert isinstance(again, dict)
    assert again | {"timings": None} == answer | {"timings": None}  # timings vary, text does not


def test_generate_errors_are_one_line(cli: Cli, trained: str) -> None:
    assert cli.fails("generate", "nope", "x") == "error: NOT_FOUND: run 'nope' is unknown"
    assert cli.fails("generate", trained, "x", "--max-new-tokens", "0").startswith(
        "error: VALIDATION_ERROR: body.max_new_tokens: "
    )
    unreachable = closed_port_url()
    assert cli.fails("generate", trained, "x", "--inference-url", unreachable) == (
        f"error: cannot reach the inference service at {unreachable}: is `trainledger up` running?"
    )


def test_generate_sends_the_api_key(cli: Cli, trained: str) -> None:
    assert cli.ok("generate", trained, "The", "--max-new-tokens", "1").stdout.startswith("The")
    without = cli.fails("generate", trained, "x", env={"TRAINLEDGER_API_KEY": None})
    assert without.startswith("error: UNAUTHORIZED: ")
