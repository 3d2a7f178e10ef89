"""Model aliases over HTTP: set, move, roll back, remove, list and history."""

from __future__ import annotations

import redis
from fastapi.testclient import TestClient

from events import names, text
from projections import Projector, ReadModel
from tests.events.appending import append_all
from tests.producers.conftest import MakeApi
from tests.projections.factories import SIGNING_KEYS, Clock, completed_run, run_events
from tests.projections.helpers import FAST, drain


def _runs(client: redis.Redis) -> None:
    clock = Clock()
    append_all(client, [*completed_run("r0", clock), *completed_run("r1", clock)])
    append_all(client, [run_events("r2", clock)["training.requested"]()])


def test_an_alias_is_set_moved_rolled_back_and_removed(
    api: TestClient, redis_client: redis.Redis
) -> None:
    _runs(redis_client)
    reads = ReadModel(redis_client)
    for run_id in ("r0", "r1", "r0"):
        answer = api.put("/models/gpt/aliases/prod", json={"run_id": run_id})
        assert answer.status_code == 202, answer.text
        assert answer.json()["run_id"] == run_id
        drain(Projector(redis_client, SIGNING_KEYS, config=FAST))
        assert reads.alias_run("gpt", "prod") == run_id
    api.put("/models/gpt/aliases/dev", json={"run_id": "r1"})
    drain(Projector(redis_client, SIGNING_KEYS, config=FAST))
    listed = api.get("/models").json()["items"]
    assert [(m["name"], [a["alias"] for a in m["aliases"]]) for m in listed] == [
        ("gpt", ["dev", "prod"])
    ]

    removed = api.delete("/models/gpt/aliases/prod")
    assert (removed.status_code, removed.json()["run_id"]) == (202, None)
    assert api.delete("/models/gpt/aliases/prod").status_code == 404
    detail = api.get("/models/gpt").json()
    assert [(a["alias"], a["run_id"]) for a in detail["aliases"]] == [("dev", "r1")]
    assert [(h["alias"], h["run_id"]) for h in detail["history"]] == [
        ("prod", "r0"),
        ("prod", "r1"),
        ("prod", "r0"),
        ("dev", "r1"),
        ("prod", None),
    ]
    drain(Projector(redis_client, SIGNING_KEYS, config=FAST))
    assert redis_client.get(names.alias_run_key("gpt@prod")) is None


def test_only_a_completed_run_is_served_and_names_are_checked(
    api: TestClient, redis_client: redis.Redis
) -> None:
    _runs(redis_client)
    unknown = api.put("/models/gpt/aliases/prod", json={"run_id": "nobody"})
    assert (unknown.status_code, unknown.json()["code"]) == (404, "NOT_FOUND")
    queued = api.put("/models/gpt/aliases/prod", json={"run_id": "r2"})
    assert (queued.status_code, queued.json()["code"]) == (409, "CONFLICT")
    assert "only a completed run" in queued.json()["message"]
    assert api.put("/models/g@pt/aliases/prod", json={"run_id": "r0"}).status_code == 422
    assert api.put("/models/gpt/aliases/prod", json={"run": "r0"}).status_code == 422
    assert api.get("/models/nobody").status_code == 404
    assert api.get("/models").json() == {"items": []}


def test_an_idempotent_alias_change_and_the_api_key(
    make_api: MakeApi, redis_client: redis.Redis
) -> None:
    _runs(redis_client)
    api = make_api(api_key="s3cret")
    assert api.put("/models/gpt/aliases/prod", json={"run_id": "r0"}).status_code == 401
    assert api.delete("/models/gpt/aliases/prod").status_code == 401
    headers = {"X-API-Key": "s3cret", "Idempotency-Key": "k1"}
    first = api.put("/models/gpt/aliases/prod", json={"run_id": "r0"}, headers=headers)
    again = api.put("/models/gpt/aliases/prod", json={"run_id": "r0"}, headers=headers)
    assert (first.status_code, again.json()["entry_id"]) == (202, first.json()["entry_id"])
    other = api.put("/models/gpt/aliases/prod", json={"run_id": "r1"}, headers=headers)
    assert (other.status_code, other.json()["code"]) == (422, "IDEMPOTENCY_KEY_REUSED")


def test_the_history_skips_what_is_not_an_alias_change(
    api: TestClient, redis_client: redis.Redis
) -> None:
    _runs(redis_client)
    api.put("/models/gpt/aliases/prod", json={"run_id": "r0"})
    append_all(redis_client, [run_events("gpt")["training.requested"]()])  # a run named alike
    garbage = text(redis_client.xadd(names.TRAINING_STREAM, {b"event": b"garbage"}))
    redis_client.rpush(names.correlation_key("gpt"), f"{names.TRAINING_STREAM} {garbage}")
    detail = api.get("/models/gpt").json()
    assert [(h["alias"], h["run_id"]) for h in detail["history"]] == [("prod", "r0")]
    assert api.delete("/models/gpt/aliases/prod").status_code == 202
