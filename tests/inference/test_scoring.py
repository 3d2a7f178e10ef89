"""`POST /score` against the same loss computed by transformers directly.

Tolerance: 1e-5 absolute on the loss (the service sums float32 surprisals in float64; the
direct computation is transformers' own float32 mean cross-entropy).
"""

from __future__ import annotations

import math

import torch

from inference import Loaded
from tests.inference.conftest import Service

TOLERANCE = 1e-5
TEXT = "The quick brown fox jumps over the lazy dog."


def direct_loss(reference: Loaded, text: str) -> float:
    """transformers' causal LM loss of `text` after the end-of-text token."""
    ids = torch.tensor([[reference.end_of_text, *reference.tokenizer(text)["input_ids"]]])
    with torch.inference_mode():
        loss = reference.model(input_ids=ids, attention_mask=torch.ones_like(ids), labels=ids).loss
    assert isinstance(loss, torch.Tensor)
    return float(loss)


def test_score_equals_transformers_loss(
    service: Service, artifact: bytes, reference: Loaded
) -> None:
    file_id = service.publish("run-1", artifact)
    body = service.ok("/score", run_id="run-1", text=TEXT, per_token=True)
    assert (body["run_id"], body["file_id"]) == ("run-1", file_id)
    loss = body["loss"]
    assert isinstance(loss, float)
    assert abs(loss - direct_loss(reference, TEXT)) < TOLERANCE
    assert body["perplexity"] == math.exp(loss)
    per_token = body["per_token"]
    assert isinstance(per_token, list)
    assert body["tokens"] == len(per_token) == len(reference.tokenizer(TEXT)["input_ids"])
    assert "".join(str(item["token"]) for item in per_token) == TEXT
    surprisals = [float(item["surprisal"]) for item in per_token]
    assert all(value > 0 for value in surprisals)
    assert abs(sum(surprisals) / len(surprisals) - loss) < TOLERANCE


def test_per_token_is_left_out_unless_asked(service: Service, artifact: bytes) -> None:
    service.publish("run-1", artifact)
    body = service.ok("/score", run_id="run-1", text="A")
    assert body["per_token"] is None
    assert body["tokens"] == 1


def test_a_text_longer_than_the_context_is_422(service: Service, artifact: bytes) -> None:
    service.publish("run-1", artifact)
    answer = service.client.post("/score", json={"run_id": "run-1", "text": "the quick fox " * 20})
    assert answer.status_code == 422
    assert answer.json()["code"] == "TEXT_TOO_LONG"
    assert answer.json()["message"].endswith("this model scores at most 31")


def test_score_input_is_bounded(service: Service) -> None:
    answer = service.client.post("/score", json={"run_id": "r", "text": "x" * 8001, "extra": True})
    assert answer.status_code == 422
    assert [e["field"] for e in answer.json()["errors"]] == ["body.text", "body.extra"]
