"""`manifest.json`: a typed, strict record that survives a round trip and gains its pointer."""

from __future__ import annotations

import hashlib
import json
import platform
from datetime import UTC, datetime
from pathlib import Path

import pytest
import tokenizers
import torch
import transformers
from pydantic import ValidationError

from consumers.manifest import (
    MANIFEST_FILE,
    Execution,
    LibraryVersions,
    Manifest,
    Timings,
    TokenizerRecord,
    weights_sha256,
)
from events.envelope import TrainingMetrics
from events.specs import ArtifactPointer, TokenizerParams, TrainingParams

FILE_ID = "ab" * 32
TRAINED = TokenizerRecord(params=TokenizerParams(vocab_size=320, min_frequency=3), vocab_size=300)


def make_manifest(tokenizer: TokenizerRecord = TRAINED) -> Manifest:
    return Manifest(
        run_id="run-1",
        model={"model_type": "gpt2", "n_layer": 1, "architectures": ["GPT2LMHeadModel"]},
        tokenizer=tokenizer,
        corpus_file_id=FILE_ID,
        training=TrainingParams(max_steps=3, sequence_length=32),
        metrics=TrainingMetrics(
            steps=3,
            tokens=384,
            seconds=0.5,
            tokens_per_second=768.0,
            train_loss=5.1,
            val_loss=5.3,
            perplexity=200.3,
        ),
        device="cpu",
        threads=2,
        versions=LibraryVersions.current("1.2.3"),
        model_sha256="cd" * 32,
        execution=Execution(
            node_id="node-a",
            finished_at=datetime(2030, 1, 1, tzinfo=UTC),
            timings=Timings(
                tokenizer_seconds=0.1, data_seconds=0.01, train_seconds=0.5, save_seconds=0.02
            ),
        ),
    )


def test_round_trip_through_the_file(tmp_path: Path) -> None:
    manifest = make_manifest()
    path = tmp_path / MANIFEST_FILE

    manifest.write(path)

    assert Manifest.read(path) == manifest
    written = json.loads(path.read_text())
    assert written["tokenizer"] == {
        "params": {"vocab_size": 320, "min_frequency": 3},
        "tokenizer_id": None,
        "vocab_size": 300,
    }
    assert written["versions"]["trainledger"] == "1.2.3"
    assert [p.name for p in tmp_path.iterdir()] == [MANIFEST_FILE]


def test_with_pointer_adds_the_pointer_and_keeps_the_rest(tmp_path: Path) -> None:
    manifest = make_manifest(TokenizerRecord(tokenizer_id="tok-7", vocab_size=300))
    path = tmp_path / MANIFEST_FILE
    manifest.write(path)

    Manifest.read(path).with_pointer(ArtifactPointer(file_id=FILE_ID)).write(path)

    updated = Manifest.read(path)
    assert updated.artifact_pointer == ArtifactPointer(file_id=FILE_ID)
    assert updated.model_copy(update={"artifact_pointer": None}) == manifest
    assert manifest.artifact_pointer is None


def test_library_versions_are_those_installed() -> None:
    versions = LibraryVersions.current("1.2.3")

    assert versions.trainledger == "1.2.3"
    assert versions.python == platform.python_version()
    assert versions.torch == torch.__version__
    assert versions.transformers == transformers.__version__
    assert versions.tokenizers == tokenizers.__version__


def test_unknown_fields_and_bad_tokenizer_ids_are_rejected(tmp_path: Path) -> None:
    data = json.loads(make_manifest().model_dump_json())
    path = tmp_path / MANIFEST_FILE

    path.write_text(json.dumps({**data, "surprise": 1}))
    with pytest.raises(ValidationError, match="surprise"):
        Manifest.read(path)

    for tokenizer in (
        {"tokenizer_id": "not an id", "vocab_size": 300},
        "trained with run",  # the manifest before it recorded the tokenizer's parameters
    ):
        path.write_text(json.dumps({**data, "tokenizer": tokenizer}))
        with pytest.raises(ValidationError, match="tokenizer"):
            Manifest.read(path)


@pytest.mark.parametrize(
    "fields",
    [{}, {"params": {"vocab_size": 320}, "tokenizer_id": "tok-1"}],
    ids=["neither", "both"],
)
def test_a_tokenizer_is_either_trained_with_the_run_or_reused(fields: dict[str, object]) -> None:
    with pytest.raises(ValidationError, match=r"trained with the run \(params\) or reused"):
        TokenizerRecord.model_validate({**fields, "vocab_size": 300})


def test_what_varies_between_runs_is_kept_apart_from_the_provenance(tmp_path: Path) -> None:
    manifest = make_manifest()
    written = json.loads(manifest.model_dump_json())

    assert set(written["execution"]) == {"node_id", "finished_at", "timings"}
    provenance = manifest.provenance()
    assert (provenance.model_sha256, provenance.device, provenance.threads) == ("cd" * 32, "cpu", 2)
    assert provenance.versions == written["versions"]
    elsewhere = manifest.model_copy(
        update={"execution": manifest.execution.model_copy(update={"node_id": "node-b"})}
    )
    assert elsewhere.provenance() == provenance


def test_the_weights_sha256_is_that_of_model_safetensors_or_of_its_shards(tmp_path: Path) -> None:
    single, sharded = tmp_path / "single", tmp_path / "sharded"
    single.mkdir()
    sharded.mkdir()
    (single / "model.safetensors").write_bytes(b"weights")
    (single / "config.json").write_text("{}")
    (sharded / "model-00002-of-00002.safetensors").write_bytes(b"ghts")
    (sharded / "model-00001-of-00002.safetensors").write_bytes(b"wei")
    (sharded / "model.safetensors.index.json").write_text("{}")

    expected = hashlib.sha256(b"weights").hexdigest()
    assert weights_sha256(single) == weights_sha256(sharded) == expected
