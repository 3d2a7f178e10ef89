"""`tokenizers list/show`."""

from __future__ import annotations

from events import TokenizerParams, TokenizerSpec
from tests.client.conftest import Cli, System, closed_port_url
from tests.waiting import wait_until


def test_list_and_show_a_trained_tokenizer(cli: Cli, system: System) -> None:
    spec = TokenizerSpec(corpus_file_id=system.corpus_id, params=TokenizerParams(vocab_size=300))
    answer = system.api.post("/tokenizers/train", json=spec.model_dump(mode="json"))
    assert answer.status_code == 202, answer.text
    tokenizer_id = answer.json()["tokenizer_id"]
    wait_until(
        lambda: system.api.get(f"/tokenizers/{tokenizer_id}").json().get("status") == "completed",
        timeout=60,
        what="tokenizer completed",
    )
    row = next(
        line for line in cli.ok("tokenizers", "list").stdout.splitlines() if tokenizer_id in line
    )
    assert "completed" in row
    assert "300" in row
    page = cli.json("tokenizers", "list", "--limit", "200")
    assert isinstance(page, dict)
    assert isinstance(page["items"], list)
    assert tokenizer_id in [
        item["tokenizer_id"] for item in page["items"] if isinstance(item, dict)
    ]
    shown = cli.ok("tokenizers", "show", tokenizer_id).stdout
    assert "vocab size" in shown
    record = cli.json("tokenizers", "show", tokenizer_id)
    assert isinstance(record, dict)
    assert isinstance(record["artifact"], dict)
    assert str(record["artifact"]["file_id"]) in shown


def test_tokenizer_errors_are_one_line(cli: Cli) -> None:
    assert cli.fails("tokenizers", "show", "nope") == "error: NOT_FOUND: no tokenizer nope"
    unreachable = closed_port_url()
    assert cli.fails("tokenizers", "list", "--api-url", unreachable) == (
        f"error: cannot reach the API at {unreachable}: is `trainledger up` running?"
    )
    assert cli.fails("tokenizers", "show", "bad id!").startswith("error: VALIDATION_ERROR: ")
