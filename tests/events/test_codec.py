"""The codec: every event round-trips; anything else is a typed `DecodeError`."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import JsonValue

from events import ArtifactPointerSet, DecodeError, Event, TrainingStarted, decode, encode, upcast
from events.codec import CURRENT_VERSIONS, JsonObject
from tests.events.strategies import events

json_values: st.SearchStrategy[JsonValue] = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda children: st.lists(children) | st.dictionaries(st.text(), children),
    max_leaves=20,
)


@given(events)
def test_every_event_round_trips(event: Event) -> None:
    assert decode(encode(event)) == event


@given(st.dictionaries(st.binary(), st.binary()))
def test_arbitrary_fields_raise_only_decode_error(fields: dict[bytes, bytes]) -> None:
    with pytest.raises(DecodeError):
        decode(fields)


@given(st.binary())
def test_arbitrary_bytes_raise_only_decode_error(payload: bytes) -> None:
    with pytest.raises(DecodeError):
        decode({b"event": payload})


@settings(max_examples=200)
@given(st.dictionaries(st.sampled_from(["type", "schema_version", "payload", "x"]), json_values))
def test_arbitrary_json_objects_raise_only_decode_error(doc: dict[str, JsonValue]) -> None:
    try:
        decode({b"event": json.dumps(doc).encode()})
    except DecodeError:
        return
    pytest.fail(f"{doc} decoded")  # pragma: no cover - only reached on a codec bug


@given(events, st.sampled_from(["payload", "correlation_id", "event_id"]))
def test_a_valid_event_with_a_field_broken_is_rejected(event: Event, field: str) -> None:
    doc = json.loads(event.model_dump_json())
    doc[field] = [1, 2]
    with pytest.raises(DecodeError, match=field):
        decode({b"event": json.dumps(doc).encode()})


def _v1_pointer(**payload: JsonValue) -> JsonObject:
    return {
        "event_id": "e1",
        "schema_version": 1,
        "occurred_at": "2026-01-01T00:00:00Z",
        "correlation_id": "run-1",
        "type": "artifact.pointer_set",
        "payload": payload,
    }


def test_an_old_pointer_event_is_upcast_on_read() -> None:
    doc = _v1_pointer(subject="tokenizer", file_id="b" * 64)
    event = decode({b"event": json.dumps(doc).encode()})
    assert isinstance(event, ArtifactPointerSet)
    assert event.schema_version == CURRENT_VERSIONS["artifact.pointer_set"] == 2
    assert event.payload.subject == "tokenizer"
    assert event.payload.pointer.file_id == "b" * 64


def test_an_old_pointer_event_without_subject_is_a_run_pointer() -> None:
    event = decode({b"event": json.dumps(_v1_pointer(file_id="c" * 64)).encode()})
    assert isinstance(event, ArtifactPointerSet)
    assert event.payload.subject == "run"


@pytest.mark.parametrize(
    ("doc", "message"),
    [
        (_v1_pointer(subject="run"), "without payload.file_id"),
        ({**_v1_pointer(), "payload": "x"}, "without payload.file_id"),
        ({"type": "nope"}, "unknown event type"),
        ({"type": 3}, "unknown event type"),
        ({"type": "training.started", "schema_version": "1"}, "must be an integer"),
        ({"type": "training.started", "schema_version": True}, "must be an integer"),
        ({"type": "training.started", "schema_version": 2}, "newer than this code"),
    ],
)
def test_wrong_schemas_are_decode_errors(doc: JsonObject, message: str) -> None:
    with pytest.raises(DecodeError, match=message):
        decode({b"event": json.dumps(doc).encode()})


def test_a_missing_upcaster_is_a_decode_error() -> None:
    with pytest.raises(DecodeError, match=r"no upcaster for artifact\.pointer_set v1"):
        upcast(_v1_pointer(file_id="a" * 64), upcasters={})


def test_an_entry_without_the_event_field_is_a_decode_error() -> None:
    with pytest.raises(DecodeError, match="no 'event' field"):
        decode({b"other": b"{}"})


def test_a_complete_event_of_an_unknown_old_version_is_a_decode_error() -> None:
    doc = json.loads(
        TrainingStarted(correlation_id="r", payload={"node_id": "n"}).model_dump_json()
    )
    with pytest.raises(DecodeError, match="no upcaster for training"):
        decode({b"event": json.dumps({**doc, "schema_version": 0}).encode()})
