"""End to end: the API asks, workers train and upload, the projector materializes, and the
artifact behind the pointer is a model that loads and generates."""

from __future__ import annotations

import json
from pathlib import Path

from transformers import AutoModelForCausalLM, AutoTokenizer

from consumers import Manifest
from consumers.manifest import MANIFEST_FILE
from databank.client.extract import safe_extract
from events import (
    ArtifactPointer,
    ArtifactUploaded,
    TokenizerParams,
    TokenizerRef,
    TokenizerSpec,
    TrainingCompleted,
    names,
)
from tests.e2e.conftest import Pipeline
from tests.harness import events_of, tiny_spec, types_of
from tests.waiting import wait_until


def _pointer(pipeline: Pipeline, path: str) -> ArtifactPointer:
    answer = pipeline.api.get(path)
    assert answer.status_code == 200, answer.text
    return ArtifactPointer.model_validate_json(answer.content)


def _download(pipeline: Pipeline, pointer: ArtifactPointer, target: Path) -> Path:
    with pipeline.bank.client() as client:
        archive = client.download_to(pointer.file_id, target.with_suffix(".tar"))
    safe_extract(archive, target)
    return target


def test_a_run_ends_with_a_pointer_to_a_model_that_loads_and_generates(
    pipeline: Pipeline, tmp_path: Path
) -> None:
    pipeline.start_worker(pipeline.worker_config("node-a"))
    run_id = pipeline.train(tiny_spec(pipeline.bank.put_corpus(tmp_path)))

    record = pipeline.wait_final(f"/runs/{run_id}")
    assert (record["status"], record["node"]) == ("completed", "node-a")
    pointer = _pointer(pipeline, f"/runs/{run_id}/artifact")
    model_dir = _download(pipeline, pointer, tmp_path / "downloaded")

    model = AutoModelForCausalLM.from_pretrained(model_dir)
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    prompt = tokenizer("The quick", return_tensors="pt")["input_ids"]
    text = tokenizer.decode(model.generate(prompt, max_new_tokens=6, do_sample=False)[0])
    assert isinstance(text, str)
    assert text.startswith("The quick")

    shipped = Manifest.read(model_dir / MANIFEST_FILE)
    kept = Manifest.read(tmp_path / "node-a" / "models" / run_id / MANIFEST_FILE)
    assert (shipped.run_id, shipped.artifact_pointer) == (run_id, None)
    assert kept.artifact_pointer == pointer
    assert kept.model_copy(update={"artifact_pointer": None}) == shipped
    assert types_of(pipeline.log, run_id) == [
        "training.requested",
        "training.started",
        "training.completed",
        "artifact.uploaded",
        "artifact.pointer_set",
    ]
    lines = pipeline.api.get(f"/runs/{run_id}/logs", params={"follow": "false"}).text
    data = [json.loads(line[6:]) for line in lines.splitlines() if line[:6] == "data: "]
    kinds = [line["kind"] for line in data[:-1]]
    assert kinds[0] == "started"
    assert "progress" in kinds
    assert kinds[-1] == "completed"
    assert "event: end\n" in lines
    assert data[-1] == {"status": "completed", "message": None}


def test_a_tokenizer_job_and_a_run_that_uses_it_by_id(pipeline: Pipeline, tmp_path: Path) -> None:
    pipeline.start_worker(pipeline.worker_config("node-a"))
    corpus_id = pipeline.bank.put_corpus(tmp_path)
    spec = TokenizerSpec(corpus_file_id=corpus_id, params=TokenizerParams(vocab_size=280))
    tokenizer_id = pipeline.train_tokenizer(spec)

    record = pipeline.wait_final(f"/tokenizers/{tokenizer_id}")
    assert record["status"] == "completed"
    tokenizer_dir = _download(
        pipeline, _pointer(pipeline, f"/tokenizers/{tokenizer_id}/artifact"), tmp_path / "tok"
    )
    tokenizer = AutoTokenizer.from_pretrained(tokenizer_dir)
    assert tokenizer.decode(tokenizer("héllo wörld")["input_ids"]) == "héllo wörld"

    by_id = tiny_spec(corpus_id).model_copy(
        update={"tokenizer": TokenizerRef(tokenizer_id=tokenizer_id)}
    )
    run_id = pipeline.train(by_id)
    assert pipeline.wait_final(f"/runs/{run_id}")["status"] == "completed"
    model_dir = _download(pipeline, _pointer(pipeline, f"/runs/{run_id}/artifact"), tmp_path / "m")
    assert Manifest.read(model_dir / MANIFEST_FILE).tokenizer.tokenizer_id == tokenizer_id
    assert AutoTokenizer.from_pretrained(model_dir).get_vocab() == tokenizer.get_vocab()


def test_two_nodes_each_upload_their_own_runs_once(pipeline: Pipeline, tmp_path: Path) -> None:
    nodes = ("node-a", "node-b")
    for node in nodes:
        pipeline.start_worker(pipeline.worker_config(node))
    # Long enough that the other node takes the next request while one is busy.
    spec = tiny_spec(pipeline.bank.put_corpus(tmp_path), max_steps=40)
    runs = [pipeline.train(spec) for _ in range(4)]

    trained_by: dict[str, str] = {}
    for run_id in runs:
        assert pipeline.wait_final(f"/runs/{run_id}")["status"] == "completed"
        [completed] = events_of(pipeline.log, run_id, TrainingCompleted)
        [uploaded] = events_of(pipeline.log, run_id, ArtifactUploaded)
        trained_by[run_id] = completed.payload.node_id
        assert uploaded.payload.node_id == completed.payload.node_id
        other = next(node for node in nodes if node != completed.payload.node_id)
        assert (tmp_path / completed.payload.node_id / "models" / run_id).is_dir()
        assert not (tmp_path / other / "models" / run_id).exists()
    assert set(trained_by.values()) == set(nodes)


def test_a_cancel_during_training_ends_cancelled_with_nothing_uploaded(
    pipeline: Pipeline, tmp_path: Path
) -> None:
    pipeline.start_worker(pipeline.worker_config("node-a"))
    run_id = pipeline.train(tiny_spec(pipeline.bank.put_corpus(tmp_path), max_steps=100_000))
    stream = names.run_logs_stream(run_id)
    wait_until(
        lambda: any(e.fields[b"kind"] == b"progress" for e in pipeline.log.read_range(stream)),
        timeout=30,
        what="training progress",
    )

    answer = pipeline.api.post(f"/runs/{run_id}/cancel", content=b"{}")
    assert answer.status_code == 202, answer.text

    assert pipeline.wait_final(f"/runs/{run_id}")["status"] == "cancelled"
    assert pipeline.api.get(f"/runs/{run_id}/artifact").status_code == 404
    assert not any(kind.startswith("artifact.") for kind in types_of(pipeline.log, run_id))
    assert not list((tmp_path / "node-a" / "models").iterdir())
    assert len(pipeline.bank.faults.requests("POST", "/files")) == 1  # the corpus, nothing else


def test_an_unknown_corpus_fails_with_a_message_that_says_so(pipeline: Pipeline) -> None:
    pipeline.start_worker(pipeline.worker_config("node-a"))
    missing = "ab" * 32
    run_id = pipeline.train(tiny_spec(missing))

    record = pipeline.wait_final(f"/runs/{run_id}")

    assert record["status"] == "failed"
    assert record["message"] == f"corpus {missing} not found in Data Bank: upload it first"
