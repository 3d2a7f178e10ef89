"""`POST /runs/{run_id}/reproduce`: a completed run's recorded spec requested again, and the
new run's record (`reproduction`) as its completion fills it."""

from __future__ import annotations

import redis
from fastapi.testclient import TestClient

from events import (
    EventLog,
    Provenance,
    Reproduction,
    TrainingCompleted,
    TrainingCompletedPayload,
    TrainingRequested,
    names,
)
from projections import Projector
from tests.events.appending import append_all
from tests.projections.factories import METRICS, SIGNING_KEYS, completed_run, run_events
from tests.projections.helpers import FAST, drain


def _request_of(redis_client: redis.Redis, entry_id: str) -> TrainingRequested:
    event = EventLog(redis_client).read_range(names.TRAINING_STREAM, entry_id, entry_id)[0].event()
    assert isinstance(event, TrainingRequested)
    return event


def test_a_completed_run_is_requested_again_from_its_recorded_spec(
    api: TestClient, redis_client: redis.Redis
) -> None:
    [original, *rest] = completed_run("r0")
    append_all(redis_client, [original, *rest])

    answer = api.post("/runs/r0/reproduce")

    assert answer.status_code == 202
    body = answer.json()
    assert body["reproduces"] == "r0"
    assert body["run_id"] != "r0"
    request = _request_of(redis_client, body["entry_id"])
    assert (request.correlation_id, request.reproduces) == (body["run_id"], "r0")
    assert isinstance(original, TrainingRequested)
    assert request.payload == original.payload


def test_an_idempotency_key_answers_the_first_reproduction(
    api: TestClient, redis_client: redis.Redis
) -> None:
    append_all(redis_client, completed_run("r0"))
    headers = {"Idempotency-Key": "again"}
    first = api.post("/runs/r0/reproduce", headers=headers)
    assert api.post("/runs/r0/reproduce", headers=headers).json() == first.json()
    assert api.post("/runs/r0/reproduce").json()["run_id"] != first.json()["run_id"]


def test_an_unknown_run_is_404_and_an_unfinished_one_409(
    api: TestClient, redis_client: redis.Redis
) -> None:
    missing = api.post("/runs/nobody/reproduce")
    assert (missing.status_code, missing.json()["code"]) == (404, "NOT_FOUND")
    assert missing.json()["message"] == "no run nobody"
    make = run_events("r1")
    append_all(redis_client, [make["training.requested"](), make["training.completed"]()])
    trained = api.post("/runs/r1/reproduce")
    assert (trained.status_code, trained.json()["code"]) == (409, "CONFLICT")
    assert trained.json()["message"] == (
        "run r1 is trained: only a completed run can be reproduced"
    )
    assert api.post("/runs/bad:id/reproduce").status_code == 422


def test_the_new_run_record_says_what_it_reproduces_and_how_it_compared(
    api: TestClient, redis_client: redis.Redis
) -> None:
    append_all(redis_client, completed_run("r0"))
    accepted = api.post("/runs/r0/reproduce").json()
    new_run = accepted["run_id"]
    drain(Projector(redis_client, SIGNING_KEYS, config=FAST))
    queued = api.get(f"/runs/{new_run}").json()
    assert queued["reproduction"] == {"of": "r0", "identical": None, "differences": []}
    assert api.get("/runs/r0").json()["reproduction"] is None

    provenance = Provenance(
        model_sha256="a" * 64, device="cpu", threads=1, versions={"torch": "2.3.0"}
    )
    compared = Reproduction(of="r0", identical=True)
    payload = TrainingCompletedPayload(
        node_id="n1", metrics=METRICS, provenance=provenance, reproduction=compared
    )
    append_all(redis_client, [TrainingCompleted(correlation_id=new_run, payload=payload)])
    drain(Projector(redis_client, SIGNING_KEYS, config=FAST))

    trained = api.get(f"/runs/{new_run}").json()
    assert trained["status"] == "trained"
    assert trained["reproduction"] == {"of": "r0", "identical": True, "differences": []}
