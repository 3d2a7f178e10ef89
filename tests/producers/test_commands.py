"""Write endpoints: commands become events; idempotency keys; auth; the error shape."""

from __future__ import annotations

import re

import redis
from fastapi.testclient import TestClient

from events import EventLog, TrainingCancelRequested, TrainingRequested, names, text
from tests.producers.conftest import MakeApi
from tests.projections.factories import FILE_A, run_events

SPEC = {
    "corpus_file_id": FILE_A,
    "tokenizer": {"vocab_size": 512},
    "model": {"family": "gpt2", "n_layer": 2, "n_head": 2, "n_embd": 64},
    "training": {"max_steps": 10, "device": "cpu", "precision": "fp32", "seed": 7},
}


def history(client: redis.Redis, correlation_id: str) -> list[str]:
    return [entry.event().type for entry in EventLog(client).read_correlation(correlation_id)]


def test_train_appends_training_requested(api: TestClient, redis_client: redis.Redis) -> None:
    response = api.post("/runs/train", json=SPEC)
    assert response.status_code == 202
    body = response.json()
    assert re.fullmatch(r"[0-9a-f]{32}", body["run_id"])
    assert re.fullmatch(r"\d+-\d+", body["entry_id"])
    entry = EventLog(redis_client).read_range(
        names.TRAINING_STREAM, body["entry_id"], body["entry_id"]
    )
    event = entry[0].event()
    assert isinstance(event, TrainingRequested)
    assert event.correlation_id == body["run_id"]
    assert event.payload.model.dimensions() == (2, 2, 64)


def test_a_legacy_corpus_path_says_to_upload_to_data_bank(api: TestClient) -> None:
    response = api.post("/runs/train", json={"corpus_path": "/data/corpus.txt"})
    assert response.status_code == 422
    body = response.json()
    assert body["code"] == "LEGACY_CORPUS_PATH"
    assert "Data Bank" in body["message"]
    assert "corpus_file_id" in body["message"]
    assert body["request_id"] == response.headers["x-request-id"]
    assert {"field": "body.corpus_path", "message": "Extra inputs are not permitted"} in body[
        "errors"
    ]


def test_unknown_fields_and_bad_ids_are_rejected(api: TestClient) -> None:
    extra = api.post("/runs/train", json={**SPEC, "epochs": 3})
    assert extra.status_code == 422
    assert extra.json()["code"] == "VALIDATION_ERROR"
    assert "body.epochs" in extra.json()["message"]
    bad = api.post("/runs/train", json={"corpus_file_id": "not-hex"})
    assert bad.status_code == 422
    assert "corpus_file_id" in bad.json()["message"]
    assert api.post("/runs/train", content=b"{oops").status_code == 422


def test_an_idempotency_key_returns_the_first_answer(
    api: TestClient, redis_client: redis.Redis
) -> None:
    headers = {"Idempotency-Key": "order-42"}
    first = api.post("/runs/train", json=SPEC, headers=headers)
    again = api.post("/runs/train", json=SPEC, headers=headers)
    assert (first.status_code, again.status_code) == (202, 202)
    assert again.json() == first.json()
    assert redis_client.xlen(names.TRAINING_STREAM) == 1
    other = api.post("/runs/train", json=SPEC, headers={"Idempotency-Key": "order-43"})
    assert other.json()["run_id"] != first.json()["run_id"]
    tokenizer = api.post("/tokenizers/train", json={"corpus_file_id": FILE_A}, headers=headers)
    assert tokenizer.json()["tokenizer_id"] != first.json()["run_id"]


def test_an_idempotency_key_reused_with_another_body_is_refused(
    api: TestClient, redis_client: redis.Redis
) -> None:
    headers = {"Idempotency-Key": "order-42"}
    first = api.post("/runs/train", json=SPEC, headers=headers)
    reordered = dict(reversed(SPEC.items()))  # the same request, spelled differently
    again = api.post("/runs/train", json=reordered, headers=headers)
    other = SPEC | {"training": {"max_steps": 10, "device": "cpu", "precision": "fp32", "seed": 8}}
    reused = api.post("/runs/train", json=other, headers=headers)

    assert again.json() == first.json()
    assert (reused.status_code, reused.json()["code"]) == (422, "IDEMPOTENCY_KEY_REUSED")
    assert "different request body" in reused.json()["message"]
    assert redis_client.xlen(names.TRAINING_STREAM) == 1
    tokenizer = {"corpus_file_id": FILE_A, "params": {"vocab_size": 1024}}
    assert api.post("/tokenizers/train", json=tokenizer, headers=headers).status_code == 202
    tokenizer["params"] = {"vocab_size": 2048}
    refused = api.post("/tokenizers/train", json=tokenizer, headers=headers)
    assert (refused.status_code, refused.json()["code"]) == (422, "IDEMPOTENCY_KEY_REUSED")


def test_a_cancel_key_reused_with_another_reason_is_refused(
    api: TestClient, redis_client: redis.Redis
) -> None:
    run_id = api.post("/runs/train", json=SPEC).json()["run_id"]
    headers = {"Idempotency-Key": "stop"}
    first = api.post(f"/runs/{run_id}/cancel", json={"reason": "wrong corpus"}, headers=headers)
    again = api.post(f"/runs/{run_id}/cancel", json={"reason": "wrong corpus"}, headers=headers)
    reused = api.post(f"/runs/{run_id}/cancel", json={"reason": "too slow"}, headers=headers)
    bare = api.post(f"/runs/{run_id}/cancel", headers=headers)

    assert (first.status_code, again.json()) == (202, first.json())
    assert (reused.status_code, reused.json()["code"]) == (422, "IDEMPOTENCY_KEY_REUSED")
    assert (bare.status_code, bare.json()["code"]) == (422, "IDEMPOTENCY_KEY_REUSED")
    assert history(redis_client, run_id) == ["training.requested", "training.cancel_requested"]


def test_a_malformed_idempotency_key_is_rejected(api: TestClient) -> None:
    response = api.post("/runs/train", json=SPEC, headers={"Idempotency-Key": "has space"})
    assert response.status_code == 422
    assert "Idempotency-Key" in response.json()["message"]


def test_train_a_tokenizer(api: TestClient, redis_client: redis.Redis) -> None:
    body = {"corpus_file_id": FILE_A, "params": {"vocab_size": 1024}}
    first = api.post("/tokenizers/train", json=body, headers={"Idempotency-Key": "t"})
    again = api.post("/tokenizers/train", json=body, headers={"Idempotency-Key": "t"})
    assert first.status_code == 202
    assert first.json() == again.json()
    assert history(redis_client, first.json()["tokenizer_id"]) == ["tokenizer.requested"]


def test_cancel_a_running_run(api: TestClient, redis_client: redis.Redis) -> None:
    run_id = api.post("/runs/train", json=SPEC).json()["run_id"]
    EventLog(redis_client).append(run_events(run_id)["training.started"]())
    response = api.post(f"/runs/{run_id}/cancel", json={"reason": "wrong corpus"})
    assert response.status_code == 202
    assert response.json()["run_id"] == run_id
    entry_id = response.json()["entry_id"]
    event = EventLog(redis_client).read_range(names.TRAINING_STREAM, entry_id, entry_id)[0].event()
    assert isinstance(event, TrainingCancelRequested)
    assert event.payload.reason == "wrong corpus"
    assert api.post(f"/runs/{run_id}/cancel").status_code == 202


def test_cancel_an_unknown_run_is_404(api: TestClient) -> None:
    response = api.post("/runs/nobody/cancel")
    assert response.status_code == 404
    assert response.json()["code"] == "NOT_FOUND"
    tokenizer_id = api.post("/tokenizers/train", json={"corpus_file_id": FILE_A}).json()
    assert api.post(f"/runs/{tokenizer_id['tokenizer_id']}/cancel").status_code == 404
    assert api.post("/runs/bad:id/cancel").status_code == 422


def test_cancel_a_finished_run_is_409_but_a_retry_gets_its_first_answer(
    api: TestClient, redis_client: redis.Redis
) -> None:
    run_id = api.post("/runs/train", json=SPEC).json()["run_id"]
    headers = {"Idempotency-Key": "stop"}
    first = api.post(f"/runs/{run_id}/cancel", headers=headers)
    assert first.status_code == 202
    EventLog(redis_client).append(run_events(run_id)["training.completed"]())
    garbage = text(redis_client.xadd(names.TRAINING_STREAM, {b"event": b"garbage"}))
    redis_client.rpush(names.correlation_key(run_id), f"{names.TRAINING_STREAM} {garbage}")
    finished = api.post(f"/runs/{run_id}/cancel")
    assert finished.status_code == 409
    assert finished.json()["code"] == "CONFLICT"
    assert "trained" in finished.json()["message"]
    retried = api.post(f"/runs/{run_id}/cancel", headers=headers)
    assert (retried.status_code, retried.json()) == (202, first.json())


def test_writes_need_the_api_key_when_one_is_set(make_api: MakeApi) -> None:
    api = make_api(api_key="s3cret")
    missing = api.post("/runs/train", json=SPEC)
    assert (missing.status_code, missing.json()["code"]) == (401, "UNAUTHORIZED")
    wrong = api.post("/runs/train", json=SPEC, headers={"X-API-Key": "guess"})
    assert (wrong.status_code, wrong.json()["code"]) == (403, "FORBIDDEN")
    right = api.post("/runs/train", json=SPEC, headers={"X-API-Key": "s3cret"})
    assert right.status_code == 202
    assert api.get("/runs").status_code == 200
    cancel = api.post(f"/runs/{right.json()['run_id']}/cancel")
    assert cancel.status_code == 401


def test_delete_a_finished_run_once(api: TestClient, redis_client: redis.Redis) -> None:
    assert api.delete("/runs/nobody").status_code == 404
    run_id = api.post("/runs/train", json=SPEC).json()["run_id"]
    running = api.delete(f"/runs/{run_id}")
    assert (running.status_code, running.json()["code"]) == (409, "CONFLICT")
    assert "cancel it" in running.json()["message"]
    EventLog(redis_client).append(run_events(run_id)["training.failed"]())
    first = api.delete(f"/runs/{run_id}")
    assert (first.status_code, first.json()["run_id"]) == (202, run_id)
    again = api.delete(f"/runs/{run_id}")
    assert (again.status_code, again.json()) == (202, first.json())
    deletions = [kind for kind in history(redis_client, run_id) if kind.endswith("revoked")]
    assert deletions == ["artifact.pointer_revoked"]
