"""The inference service over a real read model and a real trained (tiny) artifact."""

from __future__ import annotations

import hashlib
import io
import tarfile
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from fastapi.testclient import TestClient

from consumers.tarball import tar_stream
from consumers.tokenizer import train_tokenizer
from consumers.trainer import train_model
from databank import ArtifactFetcher, NotFound
from events import ModelSpec, TokenizerParams, TrainingParams, TrainingSpec, names
from inference import GenerateRequest, Generator, create_app
from projections import ReadModel
from tests.consumers.conftest import write_corpus


class Store:
    """A `FileDownloader` over blobs in memory."""

    def __init__(self) -> None:
        self.blobs: dict[str, bytes] = {}

    def add(self, blob: bytes) -> str:
        file_id = hashlib.sha256(blob).hexdigest()
        self.blobs[file_id] = blob
        return file_id

    def download_to(self, file_id: str, path: Path) -> Path:
        if file_id not in self.blobs:
            raise NotFound(f"no file {file_id}")
        path.write_bytes(self.blobs[file_id])
        return path


@pytest.fixture(scope="session")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny model trained once for these tests."""
    root = tmp_path_factory.mktemp("inference")
    corpus = write_corpus(root / "corpus.txt")
    tokenizer = train_tokenizer(corpus, TokenizerParams(vocab_size=300), root / "tokenizer")
    spec = TrainingSpec(
        corpus_file_id="0" * 64,
        model=ModelSpec(n_layer=1, n_head=2, n_embd=32),
        training=TrainingParams(max_steps=3, batch_size=4, sequence_length=32, device="cpu"),
    )
    outcome = train_model(
        corpus, tokenizer, spec, root / "run", should_stop=lambda: False, on_progress=lambda p: None
    )
    return outcome.directory


@pytest.fixture
def store() -> Store:
    return Store()


@pytest.fixture
def client(redis_client: redis.Redis, store: Store, tmp_path: Path) -> Iterator[TestClient]:
    fetcher = ArtifactFetcher(store, tmp_path / "cache")
    app = create_app(ReadModel(redis_client), fetcher, Generator(max_models=1))
    with TestClient(app) as test_client:
        yield test_client


def publish(redis_client: redis.Redis, store: Store, run_id: str, blob: bytes) -> str:
    file_id = store.add(blob)
    redis_client.set(names.run_artifact_key(run_id), file_id)
    return file_id


def test_generates_text_from_a_run_pointer(
    client: TestClient, redis_client: redis.Redis, store: Store, model_dir: Path
) -> None:
    file_id = publish(redis_client, store, "run-1", b"".join(tar_stream(model_dir)))
    answer = client.post(
        "/generate", json={"run_id": "run-1", "prompt": "The quick", "max_new_tokens": 5}
    )
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["file_id"] == file_id
    assert body["text"].startswith("The quick")
    sampled = client.post(
        "/generate", json={"run_id": "run-1", "prompt": "A", "temperature": 0.9, "seed": 7}
    )
    assert sampled.status_code == 200
    again = client.post(
        "/generate", json={"run_id": "run-1", "prompt": "A", "temperature": 0.9, "seed": 7}
    )
    assert again.json()["text"] == sampled.json()["text"]


def test_a_run_without_artifact_is_404(client: TestClient) -> None:
    answer = client.post(
        "/generate", json={"run_id": "nope", "prompt": "x"}, headers={"X-Request-ID": "r1"}
    )
    assert answer.status_code == 404
    assert answer.json() == {
        "code": "NOT_FOUND",
        "message": "run 'nope' has no artifact (yet)",
        "request_id": "r1",
        "errors": [],
    }
    assert answer.headers["x-request-id"] == "r1"


def test_bad_input_is_a_json_422_listing_every_failure(client: TestClient) -> None:
    answer = client.post("/generate", json={"run_id": "r", "prompt": "", "extra": 1})
    assert answer.status_code == 422
    body = answer.json()
    assert body["code"] == "VALIDATION_ERROR"
    assert [error["field"] for error in body["errors"]] == ["body.prompt", "body.extra"]
    assert body["request_id"] == answer.headers["x-request-id"]


def test_unknown_routes_are_json(client: TestClient) -> None:
    answer = client.get("/nowhere")
    assert answer.status_code == 404
    assert answer.json()["code"] == "NOT_FOUND"
    assert client.delete("/generate").json()["code"] == "METHOD_NOT_ALLOWED"
    assert client.get("/healthz").json() == {"status": "ok"}


def test_an_unsafe_artifact_is_refused(
    client: TestClient, redis_client: redis.Redis, store: Store
) -> None:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        info = tarfile.TarInfo("pytorch_model.bin")
        tar.addfile(info, io.BytesIO(b""))
    publish(redis_client, store, "evil", buffer.getvalue())
    answer = client.post("/generate", json={"run_id": "evil", "prompt": "x"})
    assert answer.status_code == 502
    assert answer.json()["code"] == "UNSAFE_ARTIFACT"


def test_a_missing_file_in_data_bank_is_a_502(
    client: TestClient, redis_client: redis.Redis
) -> None:
    redis_client.set(names.run_artifact_key("lost"), "f" * 64)
    answer = client.post("/generate", json={"run_id": "lost", "prompt": "x"})
    assert answer.status_code == 502
    assert answer.json()["code"] == "DATA_BANK_ERROR"


def test_the_generator_keeps_a_bounded_lru(model_dir: Path, tmp_path: Path) -> None:
    generator = Generator(max_models=1)
    copy = tmp_path / "copy"
    with tarfile.open(fileobj=io.BytesIO(b"".join(tar_stream(model_dir)))) as tar:
        tar.extractall(copy, filter="data")
    request = GenerateRequest(run_id="r", prompt="The", max_new_tokens=2)
    first = generator.load(model_dir)
    assert generator.load(model_dir) is first
    generator.generate(copy, request)
    assert generator.load(model_dir) is not first


def test_a_prompt_longer_than_the_context_keeps_its_end(model_dir: Path) -> None:
    generator = Generator()
    prompt = " ".join(["the quick fox"] * 40) + " ends here"
    text = generator.generate(
        model_dir, GenerateRequest(run_id="r", prompt=prompt, max_new_tokens=500)
    )
    assert "ends here" in text
    assert len(text) < len(prompt) + 500
