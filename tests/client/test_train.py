"""`train`: the spec from a TOML file and options, checked before anything is sent."""

from __future__ import annotations

from pathlib import Path

from pydantic import JsonValue

from tests.client.conftest import API_KEY, Cli, System
from tests.harness import write_corpus

TINY = ("--vocab-size", "300", "--n-layer", "1", "--n-head", "2", "--n-embd", "32", "--max-steps", "3",
        "--batch-size", "4", "--sequence-length", "32", "--device", "cpu")  # fmt: skip


def requested(system: System, run_id: str) -> dict[str, JsonValue]:
    """The body the run was requested with (its `training.requested` event's payload)."""
    answer = system.api.get(f"/runs/{run_id}/events")
    assert answer.status_code == 200, answer.text
    first = answer.json()["entries"][0]["event"]
    assert first["type"] == "training.requested"
    payload = first["payload"]
    assert isinstance(payload, dict)
    return payload


def given(table: JsonValue) -> dict[str, JsonValue]:
    """A table's values that are set (the log keeps the unset ones as null)."""
    assert isinstance(table, dict)
    return {key: value for key, value in table.items() if value is not None}


def test_train_uploads_the_corpus_names_tags_and_watches_to_completion(
    cli: Cli, system: System, tmp_path: Path
) -> None:
    corpus = write_corpus(tmp_path / "corpus.txt", seed=3)
    result = cli.ok(
        "train", "--corpus", str(corpus), *TINY, "--name", "first", "--tag", "team=nlp",
        "--tag", "try=1", "--watch",
    )  # fmt: skip
    lines = result.stdout.splitlines()
    assert lines[0].startswith("corpus uploaded: ")
    file_id = lines[0].removeprefix("corpus uploaded: ")
    run_id = lines[1].removeprefix("run ").removesuffix(" requested")
    assert lines[-1] == f"run {run_id} completed"
    record = system.status(run_id)
    assert (record["name"], record["tags"]) == ("first", {"team": "nlp", "try": "1"})
    body = requested(system, run_id)
    assert body["corpus_file_id"] == file_id
    assert given(body["model"]) == {
        "family": "gpt2",
        "n_layer": 1,
        "n_head": 2,
        "n_embd": 32,
        "dropout": 0.1,
    }


def test_options_override_the_config_file(cli: Cli, system: System, tmp_path: Path) -> None:
    config = tmp_path / "run.toml"
    config.write_text(
        f'corpus_file_id = "{system.corpus_id}"\nname = "from-file"\n'
        '[tags]\nteam = "nlp"\nlr = "file"\n'
        '[tokenizer]\ntokenizer_id = "tok-1"\n'
        '[model]\nsize = "tiny"\n'
        "[training]\nepochs = 2\nbatch_size = 4\nseed = 7\n"
    )
    accepted = cli.json(
        "train", "--config", str(config), "--tag", "lr=option", "--vocab-size", "300",
        "--n-layer", "1", "--n-head", "2", "--n-embd", "32", "--max-steps", "1", "--seed", "9",
    )  # fmt: skip
    assert isinstance(accepted, dict)
    assert accepted["corpus_file_id"] == system.corpus_id
    run_id = str(accepted["run_id"])
    body = requested(system, run_id)
    assert body["name"] == "from-file"
    assert body["tags"] == {"lr": "option", "team": "nlp"}
    assert given(body["tokenizer"]) == {"vocab_size": 300, "min_frequency": 2}
    assert given(body["model"]) == {
        "family": "gpt2",
        "n_layer": 1,
        "n_head": 2,
        "n_embd": 32,
        "dropout": 0.1,
    }
    training = body["training"]
    assert isinstance(training, dict)
    assert (training["epochs"], training["max_steps"], training["batch_size"], training["seed"]) == (
        None, 1, 4, 9,
    )  # fmt: skip
    config.write_text("[model]\nn_layer = 1\nn_head = 2\nn_embd = 32\n[training]\nmax_steps = 5\n")
    again = cli.json(
        "train", "--config", str(config), "--corpus-file-id", system.corpus_id,
        "--model-size", "tiny", "--epochs", "1", "--tokenizer-id", "tok-1", "--dropout", "0.2",
        "--processes", "2", "--checkpoint-every-steps", "50",
    )  # fmt: skip
    assert isinstance(again, dict)
    body = requested(system, str(again["run_id"]))
    assert given(body["model"]) == {"family": "gpt2", "size": "tiny", "dropout": 0.2}
    assert given(body["tokenizer"]) == {"tokenizer_id": "tok-1"}
    assert isinstance(body["training"], dict)
    assert (body["training"]["epochs"], body["training"]["max_steps"]) == (1, None)
    assert body["training"]["processes"] == 2
    assert body["training"]["checkpoint_every_steps"] == 50
    for run in (run_id, str(again["run_id"])):
        system.wait_final(run)


def test_a_bad_spec_is_refused_before_any_request(cli: Cli, system: System, tmp_path: Path) -> None:
    corpus = write_corpus(tmp_path / "corpus.txt")
    assert cli.fails(
        "train", "--corpus", str(corpus), "--batch-size", "0", "--model-size", "huge"
    ) == (
        "error: invalid training spec: model.size: Input should be 'tiny', 'mini' or 'small'; "
        "training.batch_size: Input should be greater than or equal to 1"
    )
    assert cli.fails("train", "--corpus-file-id", "abc") == (
        "error: invalid training spec: corpus_file_id: Value error, must be a Data Bank file id: "
        "64 lowercase hex characters"
    )
    assert cli.fails(
        "train", "--corpus-file-id", system.corpus_id, "--tag", "bad key=1"
    ).startswith("error: invalid training spec: tags: Value error, tag key 'bad key'")
    assert cli.fails("train", "--corpus", str(corpus), "--corpus-file-id", system.corpus_id) == (
        "error: give --corpus or --corpus-file-id, not both"
    )
    assert cli.fails("train") == (
        "error: no corpus: give --corpus FILE or --corpus-file-id ID (or corpus_file_id in --config)"
    )
    assert cli.fails("train", "--tag", "x") == "error: --tag 'x': expected key=value"
    assert system.api_faults.seen == []
    assert system.bank.faults.seen == []


def test_a_config_that_is_not_toml_or_misshapen_is_one_line(cli: Cli, tmp_path: Path) -> None:
    config = tmp_path / "run.toml"
    config.write_text("model = [unclosed\n")
    assert cli.fails("train", "--config", str(config)).startswith(
        f"error: {config}: not a TOML file: "
    )
    config.write_text('model = "tiny"\n')
    assert cli.fails("train", "--config", str(config), "--n-layer", "2") == (
        "error: config: model must be a table ([model])"
    )
    assert cli.run("train", "--config", str(tmp_path / "missing.toml")).exit_code == 2


def test_the_api_key_is_required_and_checked(cli: Cli, system: System) -> None:
    args = ("train", "--corpus-file-id", system.corpus_id)
    assert cli.fails(*args, env={"TRAINLEDGER_API_KEY": None}) == (
        "error: UNAUTHORIZED: this API requires an X-API-Key header"
    )
    assert cli.fails(*args, "--api-key", "wrong") == "error: FORBIDDEN: the X-API-Key is not valid"
    assert cli.env["TRAINLEDGER_API_KEY"] == API_KEY  # the same command with it is accepted:
    assert isinstance(cli.json(*args, "--max-steps", "1", "--tokenizer-id", "none"), dict)


def test_watch_reports_a_run_that_failed_with_exit_3(cli: Cli, system: System) -> None:
    message = cli.fails("train", "--corpus-file-id", "e" * 64, *TINY, "--watch", code=3)
    assert message.startswith("error: run ")
    assert message.endswith(
        f"ended failed: corpus {'e' * 64} not found in Data Bank: upload it first"
    )
