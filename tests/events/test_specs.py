"""Specs reject what a worker could not run, with messages a client can act on."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from events import AliasSetPayload, ArtifactPointer, ModelSpec, TrainingParams, TrainingSpec

CORPUS = "a" * 64


def test_defaults_make_a_tiny_run_with_a_trained_tokenizer() -> None:
    spec = TrainingSpec(corpus_file_id=CORPUS)
    assert spec.model.dimensions() == (2, 2, 64)
    assert spec.training.device == "auto"


def test_explicit_dimensions() -> None:
    assert ModelSpec(n_layer=3, n_head=4, n_embd=32).dimensions() == (3, 4, 32)


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({}, "give a size, or all of"),
        ({"n_layer": 2, "n_head": 2}, "give a size, or all of"),
        ({"size": "tiny", "n_layer": 2}, "not both"),
        ({"n_layer": 2, "n_head": 3, "n_embd": 32}, "multiple of n_head"),
        ({"size": "huge"}, "size"),
    ],
)
def test_model_spec_errors(fields: dict[str, object], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        ModelSpec.model_validate(fields)


def test_epochs_and_max_steps_exclude_each_other() -> None:
    with pytest.raises(ValidationError, match="not both"):
        TrainingParams(epochs=1, max_steps=10)


@pytest.mark.parametrize("file_id", ["A" * 64, "a" * 63, "g" * 64, ""])
def test_file_ids_are_64_lowercase_hex(file_id: str) -> None:
    with pytest.raises(ValidationError, match="64 lowercase hex"):
        TrainingSpec(corpus_file_id=file_id)


@pytest.mark.parametrize("tokenizer_id", ["", "-x", "a/b", "x" * 129])
def test_ids_are_safe_names(tokenizer_id: str) -> None:
    with pytest.raises(ValidationError, match="1-128 characters"):
        TrainingSpec.model_validate(
            {"corpus_file_id": CORPUS, "tokenizer": {"tokenizer_id": tokenizer_id}}
        )


def test_unknown_fields_are_rejected() -> None:
    with pytest.raises(ValidationError, match="corpus_path"):
        TrainingSpec.model_validate({"corpus_file_id": CORPUS, "corpus_path": "/x"})


def test_artifact_pointer_validates_assignment() -> None:
    pointer = ArtifactPointer(file_id=CORPUS)
    assert pointer.storage == "data-bank"
    with pytest.raises(ValidationError):
        pointer.file_id = "nope"
    with pytest.raises(ValidationError):
        ArtifactPointer.model_validate({"storage": "disk", "file_id": CORPUS})


def test_names_and_tags_are_kept_sorted_and_bounded() -> None:
    spec = TrainingSpec(corpus_file_id=CORPUS, name="exp 1", tags={"b": "2", "a": "1"})
    assert (spec.name, list(spec.tags)) == ("exp 1", ["a", "b"])


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"tags": {f"k{i}": "v" for i in range(21)}}, "at most 20 tags"),
        ({"tags": {"bad key": "v"}}, "tag key 'bad key'"),
        ({"tags": {"k": "x" * 201}}, "tag 'k': at most 200 printable characters"),
        ({"tags": {"k": "line\nbreak"}}, "tag 'k': at most 200 printable characters"),
        ({"name": "tab\there"}, "String should match pattern"),
        ({"name": ""}, "at least 1 character"),
    ],
)
def test_bad_names_and_tags_are_refused(fields: dict[str, object], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        TrainingSpec.model_validate({"corpus_file_id": CORPUS, **fields})


@pytest.mark.parametrize("name", ["", "g@pt", "-x", "x" * 65])
def test_model_and_alias_names_are_safe(name: str) -> None:
    with pytest.raises(ValidationError, match="1-64 characters"):
        AliasSetPayload(model=name, alias="prod", run_id="r1")
    with pytest.raises(ValidationError, match="1-64 characters"):
        AliasSetPayload(model="gpt", alias=name, run_id="r1")


def test_one_process_and_gpt2_dropout_by_default() -> None:
    spec = TrainingSpec(corpus_file_id=CORPUS)
    assert (spec.training.processes, spec.model.dropout) == (1, 0.1)


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"training": {"processes": 0}}, "training.processes"),
        ({"training": {"processes": 65}}, "training.processes"),
        ({"model": {"size": "tiny", "dropout": 1}}, "model.dropout"),
        ({"model": {"size": "tiny", "dropout": -0.1}}, "model.dropout"),
    ],
)
def test_processes_and_dropout_are_bounded(fields: dict[str, object], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        TrainingSpec.model_validate({"corpus_file_id": CORPUS, **fields})
