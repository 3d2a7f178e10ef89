"""Inference serves only pointers this deployment's workers signed. A forged pointer appended
to the log never reaches the read model (the projector dead-letters it); one written straight
into the read model is refused when the run is resolved: a 502 with the refusal's code, and
its file is never downloaded."""

from __future__ import annotations

import pytest
import redis
from fastapi.testclient import TestClient

from events import ArtifactPointer, ArtifactPointerSet, PointerSetPayload, SigningKeys, names
from inference import Generator, create_app
from projections import ReadModel
from tests.inference.conftest import Service
from tests.projections.factories import SIGNING_KEYS, signed_pointer

OTHER_KEYS = SigningKeys(current="someone-elses-key-" + "9" * 32)
BODY = {"prompt": "The", "max_new_tokens": 2}


def nothing_downloaded(service: Service) -> bool:
    stats = service.fetcher.stats()
    return (stats.misses, stats.download_bytes) == (0, 0)


def refused(service: Service, run_id: str, code: str) -> str:
    """Ask for `run_id`: a 502 `code` in the one JSON shape; its message."""
    answer = service.client.post("/generate", json={"run_id": run_id, **BODY})
    assert answer.status_code == 502, answer.text
    body = answer.json()
    assert (body["code"], body["request_id"]) == (code, answer.headers["X-Request-ID"])
    message = body["message"]
    assert isinstance(message, str)
    assert message.endswith(": not served")
    return message


@pytest.mark.parametrize("keys", [None, OTHER_KEYS], ids=["unsigned", "other key"])
def test_a_forged_pointer_in_the_log_is_never_served(
    service: Service, other_artifact: bytes, keys: SigningKeys | None
) -> None:
    file_id = service.bank.put(other_artifact)
    service.run("r1", "training.requested", "training.started", "training.completed")
    if keys is None:
        payload = PointerSetPayload(subject="run", pointer=ArtifactPointer(file_id=file_id))
        forged = ArtifactPointerSet(correlation_id="r1", payload=payload)
    else:
        forged = signed_pointer("run", {"correlation_id": "r1"}, file_id, keys=keys)
    service.project(forged)  # dead-lettered by the projector
    answer = service.client.post("/generate", json={"run_id": "r1", **BODY})
    assert (answer.status_code, answer.json()["code"]) == (404, "NO_ARTIFACT_YET")
    assert nothing_downloaded(service)


def test_a_pointer_changed_in_the_read_model_is_refused(
    service: Service, artifact: bytes, other_artifact: bytes
) -> None:
    service.publish("r1", artifact)
    hostile = service.bank.put(other_artifact)
    service.engine.set(names.run_artifact_key("r1"), hostile)  # the signature is of the first
    message = refused(service, "r1", "POINTER_SIGNATURE_INVALID")
    assert message.startswith(f"the artifact pointer of run 'r1' to file {hostile}")
    assert nothing_downloaded(service)


@pytest.mark.parametrize(
    ("change", "code"),
    [
        ({"key_id": None, "signature": None}, "POINTER_UNSIGNED"),
        ({"key_id": "0badc0de"}, "POINTER_KEY_UNKNOWN"),
        ({"signature": "0" * 64}, "POINTER_SIGNATURE_INVALID"),
        ({"pointer_size": "1"}, "POINTER_SIGNATURE_INVALID"),
        ({"pointer_size": "many"}, "POINTER_SIGNATURE_INVALID"),
        ({"key_id": "not hex"}, "POINTER_SIGNATURE_INVALID"),
    ],
    ids=["unsigned", "unknown key", "other signature", "other size", "bad size", "bad key id"],
)
def test_a_signature_changed_in_the_read_model_is_refused(
    service: Service, artifact: bytes, change: dict[str, str | None], code: str
) -> None:
    service.publish("r1", artifact)
    record = names.run_status_key("r1")
    for field, value in change.items():
        if value is None:
            service.engine.hdel(record, field)
        else:
            service.engine.hset(record, field, value)
    refused(service, "r1", code)
    assert nothing_downloaded(service)


def test_a_run_written_whole_into_the_read_model_is_refused(
    service: Service, other_artifact: bytes
) -> None:
    hostile = service.bank.put(other_artifact)
    pointer = signed_pointer("run", {"correlation_id": "evil"}, hostile, keys=OTHER_KEYS)
    assert pointer.payload.signature is not None
    service.engine.set(names.run_artifact_key("evil"), hostile)
    service.engine.hset(
        names.run_status_key("evil"),
        mapping={
            "status": "completed",
            "pointer_size": "10",
            "key_id": pointer.payload.signature.key_id,
            "signature": pointer.payload.signature.hmac,
        },
    )
    refused(service, "evil", "POINTER_KEY_UNKNOWN")
    assert nothing_downloaded(service)


def test_a_pointer_signed_by_a_previous_key_is_served_after_a_rotation(
    service: Service, redis_client: redis.Redis, generator: Generator, artifact: bytes
) -> None:
    file_id = service.publish("r1", artifact)  # signed by the tests' key
    rotated = SigningKeys(
        current="the-new-signing-key-" + "4" * 32, previous=(SIGNING_KEYS.current,)
    )
    app = create_app(ReadModel(redis_client), service.fetcher, generator, signing_keys=rotated)
    with TestClient(app) as client:
        answer = client.post("/generate", json={"run_id": "r1", **BODY})
    assert answer.status_code == 200, answer.text
    assert answer.json()["file_id"] == file_id
    app = create_app(ReadModel(redis_client), service.fetcher, generator, signing_keys=OTHER_KEYS)
    with TestClient(app) as client:
        answer = client.post("/generate", json={"run_id": "r1", **BODY})
    assert (answer.status_code, answer.json()["code"]) == (502, "POINTER_KEY_UNKNOWN")
