"""Which run serves a request, through aliases set by real events, and why none does."""

from __future__ import annotations

import pytest
import redis

from events import names
from inference.requests import ModelRequest
from inference.resolution import resolve
from projections import ReadModel, SignedArtifact
from tests.inference.conftest import Service
from tests.projections.factories import SIGNING_KEYS

ENDPOINTS = [
    ("/generate", {"prompt": "The", "max_new_tokens": 2}),
    ("/score", {"text": "The"}),
]


@pytest.fixture(params=ENDPOINTS, ids=["generate", "score"])
def endpoint(request: pytest.FixtureRequest) -> tuple[str, dict[str, object]]:
    path, body = request.param
    assert isinstance(path, str)
    assert isinstance(body, dict)
    return path, body


def test_an_alias_is_served_and_moves_with_the_next_request(
    service: Service,
    artifact: bytes,
    other_artifact: bytes,
    endpoint: tuple[str, dict[str, object]],
) -> None:
    path, body = endpoint
    first = service.publish("r1", artifact)
    second = service.publish("r2", other_artifact)
    service.alias("tiny", "production", "r1")

    def served() -> tuple[object, object, object]:
        answer = service.ok(path, model="tiny@production", **body)
        return answer["run_id"], answer["file_id"], answer["model"]

    assert served() == ("r1", first, "tiny@production")
    service.alias("tiny", "production", "r2")
    assert served() == ("r2", second, "tiny@production")
    service.alias("tiny", "production", "r1")  # rolling back: the alias points back
    assert served() == ("r1", first, "tiny@production")
    service.alias("tiny", "production", None)
    gone = service.client.post(path, json={"model": "tiny@production", **body})
    assert gone.status_code == 404
    assert gone.json()["code"] == "NOT_FOUND"
    assert gone.json()["message"] == "model 'tiny@production' is unknown (no such alias)"


def test_unknown_runs_are_404(service: Service, endpoint: tuple[str, dict[str, object]]) -> None:
    path, body = endpoint
    answer = service.client.post(
        path, json={"run_id": "nope", **body}, headers={"X-Request-ID": "r1"}
    )
    assert answer.status_code == 404
    assert answer.json() == {
        "code": "NOT_FOUND",
        "message": "run 'nope' is unknown",
        "request_id": "r1",
        "errors": [],
    }
    assert answer.headers["x-request-id"] == "r1"


@pytest.mark.parametrize(
    ("kinds", "status"),
    [
        (("training.requested",), "queued"),
        (("training.requested", "training.started"), "running"),
        (("training.requested", "training.started", "training.completed"), "trained"),
        (
            ("training.requested", "training.started", "training.completed", "artifact.uploaded"),
            "uploading",
        ),
    ],
)
def test_a_run_that_may_still_get_its_artifact_is_404_not_yet(
    service: Service, kinds: tuple[str, ...], status: str, endpoint: tuple[str, dict[str, object]]
) -> None:
    path, body = endpoint
    service.run("r1", *kinds)
    answer = service.client.post(path, json={"run_id": "r1", **body})
    assert answer.status_code == 404
    assert answer.json()["code"] == "NO_ARTIFACT_YET"
    assert answer.json()["message"] == f"run 'r1' is {status}: no artifact yet"


@pytest.mark.parametrize(
    ("kinds", "message"),
    [
        (("training.requested", "training.failed"), "run 'r1' is failed (out of memory)"),
        (
            ("training.requested", "training.cancel_requested", "training.cancelled"),
            "run 'r1' is cancelled (no longer needed)",
        ),
        (
            ("training.requested", "training.completed", "artifact.upload_failed"),
            "run 'r1' is failed (artifact upload failed)",
        ),
    ],
)
def test_a_run_that_never_will_is_409(
    service: Service, kinds: tuple[str, ...], message: str, endpoint: tuple[str, dict[str, object]]
) -> None:
    path, body = endpoint
    service.run("r1", *kinds)
    answer = service.client.post(path, json={"run_id": "r1", **body})
    assert answer.status_code == 409
    assert answer.json()["code"] == "RUN_NOT_SERVABLE"
    assert answer.json()["message"] == message


def test_a_deleted_or_revoked_run_is_409(service: Service, artifact: bytes) -> None:
    service.publish("gone", artifact)
    service.publish("revoked", artifact)
    service.alias("tiny", "old", "gone")
    assert service.ok("/generate", model="tiny@old", prompt="x", max_new_tokens=1)
    service.run("gone", "run.deleted")
    service.run("revoked", "artifact.pointer_revoked")
    deleted = service.client.post("/generate", json={"model": "tiny@old", "prompt": "x"})
    assert deleted.status_code == 409
    assert deleted.json()["message"] == (
        "run 'gone' (model 'tiny@old') is deleted (deleted: no longer needed)"
    )
    revoked = service.client.post("/score", json={"run_id": "revoked", "text": "x"})
    assert revoked.status_code == 409
    assert revoked.json()["message"] == (
        "run 'revoked' is completed (artifact pointer revoked: bad weights)"
    )


class LateReadModel(ReadModel):
    """A read model whose first pointer read comes just before the pointer lands."""

    def __init__(self, client: redis.Redis, run_id: str, file_id: str) -> None:
        super().__init__(client)
        self.landing = (run_id, file_id)
        self.reads = 0

    def signed_run_artifact(self, run_id: str) -> SignedArtifact | None:
        found = super().signed_run_artifact(run_id)
        self.reads += 1
        if self.reads == 1:
            self.client.set(names.run_artifact_key(self.landing[0]), self.landing[1])
        return found


def test_a_pointer_landing_between_two_reads_is_served(service: Service, artifact: bytes) -> None:
    file_id = service.publish("r1", artifact)
    service.engine.delete(names.run_artifact_key("r1"))
    read_model = LateReadModel(service.engine, "r1", file_id)
    target = resolve(read_model, ModelRequest(run_id="r1"), SIGNING_KEYS)
    assert (target.run_id, target.file_id, read_model.reads) == ("r1", file_id, 2)
