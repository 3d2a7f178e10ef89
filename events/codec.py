"""Stream entry <-> typed event, with the upcaster chain old entries pass through on read.

An entry holds one field, `event`: the envelope as JSON. Anything that cannot become a
current, valid event raises `DecodeError` (and nothing else), so a consumer can dead-letter
it at once.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from pydantic import JsonValue, TypeAdapter, ValidationError

from events.envelope import EVENT_ADAPTER, EVENT_CLASSES, Event

FIELD = b"event"
"""The one field of a stream entry: the envelope as JSON."""
JsonObject = dict[str, JsonValue]
Upcaster = Callable[[JsonObject], JsonObject]

_OBJECT = TypeAdapter(JsonObject)
CURRENT_VERSIONS: dict[str, int] = {
    str(cls.model_fields["type"].default): cls.SCHEMA_VERSION for cls in EVENT_CLASSES
}


class DecodeError(ValueError):
    """A stream entry that is not a valid event of a known type and schema."""


def _pointer_set_v1_to_v2(doc: JsonObject) -> JsonObject:
    """v1 carried a bare `file_id`; v2 nests it in an `ArtifactPointer`."""
    payload = doc.get("payload")
    if not isinstance(payload, dict) or "file_id" not in payload:
        raise DecodeError("artifact.pointer_set v1 without payload.file_id")
    pointer: JsonObject = {"storage": "data-bank", "file_id": payload["file_id"]}
    upgraded: JsonObject = {"subject": payload.get("subject", "run"), "pointer": pointer}
    return {**doc, "schema_version": 2, "payload": upgraded}


UPCASTERS: dict[tuple[str, int], Upcaster] = {
    ("artifact.pointer_set", 1): _pointer_set_v1_to_v2,
}
"""(type, version) -> the function that lifts an entry of that version by one."""


def encode(event: Event) -> dict[bytes, bytes]:
    """The stream entry fields of `event`."""
    return {FIELD: event.model_dump_json().encode()}


def upcast(
    doc: JsonObject, upcasters: Mapping[tuple[str, int], Upcaster] = UPCASTERS
) -> JsonObject:
    """Lift `doc` through the upcaster chain to its type's current schema version."""
    kind, version = doc.get("type"), doc.get("schema_version", 1)
    if not isinstance(kind, str) or kind not in CURRENT_VERSIONS:
        raise DecodeError(f"unknown event type {kind!r}")
    if not isinstance(version, int) or isinstance(version, bool):
        raise DecodeError(f"schema_version must be an integer, not {version!r}")
    while version < CURRENT_VERSIONS[kind]:
        step = upcasters.get((kind, version))
        if step is None:
            raise DecodeError(f"no upcaster for {kind} v{version}")
        doc, version = step(doc), version + 1
    if version != CURRENT_VERSIONS[kind]:
        raise DecodeError(f"{kind} v{version} is newer than this code (v{CURRENT_VERSIONS[kind]})")
    return doc


def decode(fields: Mapping[bytes, bytes]) -> Event:
    """The typed event in a stream entry; `DecodeError` for anything else.

    Current entries validate straight from JSON (the fast path); anything else is parsed,
    upcast, and validated again, so an old entry costs more but decodes the same.
    """
    raw = fields.get(FIELD)
    if raw is None:
        raise DecodeError(f"entry has no {FIELD.decode()!r} field")
    try:
        event = EVENT_ADAPTER.validate_json(raw)
    except ValidationError:
        pass  # maybe an older schema: take the upcasting path below
    else:
        if event.schema_version == CURRENT_VERSIONS[event.type]:
            return event
    try:
        doc = upcast(_OBJECT.validate_json(raw))
        return EVENT_ADAPTER.validate_python(doc)
    except ValidationError as error:
        raise DecodeError(f"invalid event: {_summary(error)}") from error


def _summary(error: ValidationError) -> str:
    first = error.errors()[0]
    location = ".".join(str(part) for part in first["loc"]) or "entry"
    return f"{location}: {first['msg']} ({error.error_count()} error(s))"
