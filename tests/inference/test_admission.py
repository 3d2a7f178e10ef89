"""An artifact's model is checked before it is built: its size from `config.json` against the
bound, its weights against the safetensors header. A small artifact naming a large model, or
lacking weights, is refused with a JSON error (never served with random weights) and the
service serves on."""

from __future__ import annotations

import io
import json
import tarfile
from pathlib import Path

import pytest
import redis
import torch
from fastapi.testclient import TestClient
from safetensors.torch import load, save
from transformers import GPT2Config, GPT2LMHeadModel

from databank import ArtifactFetcher
from inference import Generator, Loaded, create_app, load_model
from inference.admission import MAX_CONFIG_BYTES, WEIGHTS, Gpt2Shape, TooLargeError
from projections import ReadModel
from tests.harness import LocalBank
from tests.inference.conftest import Service
from tests.inference.test_error_answers import assert_json_error, tar_of
from tests.projections.factories import SIGNING_KEYS

CONFIG = "config.json"

GPT2_SMALL: dict[str, object] = {
    "model_type": "gpt2",
    "n_layer": 12,
    "n_head": 12,
    "n_embd": 768,
    "n_positions": 1024,
    "vocab_size": 50257,
}
"""The 124M-parameter GPT-2: within the default bound."""


def files_of(artifact: bytes) -> dict[str, bytes]:
    """The regular files of a tar, by name."""
    files: dict[str, bytes] = {}
    with tarfile.open(fileobj=io.BytesIO(artifact)) as tar:
        for member in tar:
            extracted = tar.extractfile(member)
            if extracted is not None:
                files[member.name] = extracted.read()
    return files


def edited(artifact: bytes, changes: dict[str, bytes | None]) -> bytes:
    """`artifact` with files replaced (bytes) or removed (None)."""
    files = files_of(artifact)
    for name, data in changes.items():
        if data is None:
            files.pop(name)
        else:
            files[name] = data
    return tar_of(list(files.items()))


def config(artifact: bytes, **changes: object) -> bytes:
    """The artifact's `config.json` with `changes`."""
    return json.dumps({**json.loads(files_of(artifact)[CONFIG]), **changes}).encode()


def weights(artifact: bytes, drop: str) -> bytes:
    """The artifact's `model.safetensors` without the tensor `drop`."""
    tensors = load(files_of(artifact)[WEIGHTS])
    del tensors[drop]
    return save(tensors)


def hostile(artifact: bytes, case: str) -> tuple[str, bytes]:
    """The expected error code and the artifact of `case`."""
    small = json.dumps(GPT2_SMALL).encode()
    too_large = config(artifact, n_layer=48, n_embd=4096, n_head=32, vocab_size=65536)
    cases: dict[str, tuple[str, dict[str, bytes | None]]] = {
        "huge-config": ("MODEL_TOO_LARGE", {CONFIG: too_large}),
        "124m-empty-weights": ("UNLOADABLE_ARTIFACT", {CONFIG: small, WEIGHTS: b""}),
        "124m-no-tensors": ("UNLOADABLE_ARTIFACT", {CONFIG: small, WEIGHTS: save({})}),
        "no-weights-file": ("UNLOADABLE_ARTIFACT", {WEIGHTS: None}),
        "partial-weights": (
            "UNLOADABLE_ARTIFACT",
            {WEIGHTS: weights(artifact, "transformer.h.0.mlp.c_fc.weight")},
        ),
        "wrong-shape": ("UNLOADABLE_ARTIFACT", {CONFIG: config(artifact, vocab_size=299)}),
        "heads-do-not-divide": ("UNLOADABLE_ARTIFACT", {CONFIG: config(artifact, n_head=5)}),
        "no-layers": ("UNLOADABLE_ARTIFACT", {CONFIG: config(artifact, n_layer=0)}),
        "bad-tokenizer": ("UNLOADABLE_ARTIFACT", {"tokenizer.json": b"{not json"}),
        "not-json": ("UNLOADABLE_ARTIFACT", {CONFIG: b"{not json"}),
        "not-an-object": ("UNLOADABLE_ARTIFACT", {CONFIG: b"[1, 2]"}),
        "config-over-bound": (
            "UNLOADABLE_ARTIFACT",
            {CONFIG: config(artifact, padding="x" * MAX_CONFIG_BYTES)},
        ),
    }
    code, changes = cases[case]
    return code, edited(artifact, changes)


CASES = [
    "huge-config",
    "124m-empty-weights",
    "124m-no-tensors",
    "no-weights-file",
    "partial-weights",
    "wrong-shape",
    "heads-do-not-divide",
    "no-layers",
    "not-json",
    "bad-tokenizer",
    "not-an-object",
    "config-over-bound",
]


@pytest.mark.parametrize("case", CASES)
def test_a_model_not_as_shipped_is_refused_before_it_is_built(
    service: Service, artifact: bytes, tmp_path: Path, case: str
) -> None:
    code, blob = hostile(artifact, case)
    service.publish("run-1", blob)
    answer = service.client.post("/generate", json={"run_id": "run-1", "prompt": "x"})
    assert_json_error(
        answer.status_code, answer.text, answer.headers["X-Request-ID"], code, tmp_path
    )
    assert service.generator.stats().loads == 0
    service.publish("run-2", artifact)
    assert service.generate(run_id="run-2", prompt="The", max_new_tokens=2).run_id == "run-2"


def test_a_model_at_the_bound_loads_and_one_parameter_more_does_not(
    redis_client: redis.Redis,
    local_bank: LocalBank,
    fetcher: ArtifactFetcher,
    artifact: bytes,
    reference: Loaded,
    tmp_path: Path,
) -> None:
    bound = reference.model.num_parameters()
    tight = Generator(max_models=2, max_parameters=bound)
    try:
        with TestClient(
            create_app(ReadModel(redis_client), fetcher, tight, signing_keys=SIGNING_KEYS)
        ) as client:
            service = Service(client, redis_client, local_bank, fetcher, tight)
            service.publish("run-1", artifact)
            assert (
                service.generate(run_id="run-1", prompt="The", max_new_tokens=2).run_id == "run-1"
            )
            service.publish("run-2", edited(artifact, {CONFIG: config(artifact, vocab_size=301)}))
            answer = client.post("/generate", json={"run_id": "run-2", "prompt": "x"})
            rid = answer.headers["X-Request-ID"]
            assert_json_error(answer.status_code, answer.text, rid, "MODEL_TOO_LARGE", tmp_path)
            assert f"at most {bound:,}" in answer.json()["message"]
    finally:
        tight.close()


def test_the_bound_applies_to_loading_a_directory(model_dir: Path, reference: Loaded) -> None:
    bound = reference.model.num_parameters()
    assert load_model(model_dir, bound).context == reference.context
    with pytest.raises(TooLargeError):
        load_model(model_dir, bound - 1)


@pytest.mark.parametrize(
    "sizes",
    [
        {"n_layer": 12, "n_head": 12, "n_embd": 768, "n_positions": 1024, "vocab_size": 50257},
        {
            "n_layer": 2,
            "n_head": 2,
            "n_embd": 32,
            "n_positions": 16,
            "vocab_size": 300,
            "n_inner": 50,
            "tie_word_embeddings": False,
        },
    ],
)
def test_the_count_is_the_models_own(sizes: dict[str, object]) -> None:
    with torch.device("meta"):
        built = GPT2LMHeadModel(GPT2Config.from_dict(sizes))
    shape = Gpt2Shape.model_validate({"model_type": "gpt2", **sizes})
    assert shape.parameters() == built.num_parameters()
