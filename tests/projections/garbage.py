"""Generated bad stream entries: what a buggy or hostile writer could XADD to a stream.

Seeded and cheap (tens of thousands in well under a second), each kind chosen so that no
current decoder could accept it: no `event` field, bytes that are not JSON, JSON that is not
an object, an unknown type, a schema version that is too new or not an integer, a real event
with one field broken or one field too many, an old schema whose upcaster cannot lift it.
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable, Iterator

from pydantic import JsonValue

from events import FIELD, Event
from tests.projections.factories import run_events, tokenizer_events

Fields = dict[bytes, bytes]
Doc = dict[str, JsonValue]


def _templates() -> list[Doc]:
    """One valid envelope of every event type, as JSON objects to break."""
    built: list[Event] = [make() for make in run_events("g").values()]
    built += [make() for make in tokenizer_events("g").values()]
    docs: list[Doc] = [json.loads(event.model_dump_json()) for event in built]
    return docs


TEMPLATES = _templates()
NOT_AN_OBJECT: list[JsonValue] = [None, 0, -1.5, True, "event", [], [1, "a"], [{}]]
WRONG_VALUES: dict[str, list[JsonValue]] = {
    "payload": [None, 7, [], "payload"],
    "correlation_id": [None, 7, [], {"x": 1}, ""],
    "occurred_at": [None, [], {"x": 1}, "", "not a time"],
    "event_id": [None, 7, [], {"x": 1}],
}
"""Values each envelope field refuses (a number would be a valid time: seconds since 1970)."""


def _entry(doc: JsonValue) -> Fields:
    return {FIELD: json.dumps(doc).encode()}


def _word(rng: random.Random) -> str:
    return "".join(rng.choice("abcdefghijklmnopqrstuvwxyz_.") for _ in range(rng.randint(1, 12)))


def _template(rng: random.Random) -> Doc:
    return dict(rng.choice(TEMPLATES))


def no_event_field(rng: random.Random) -> Fields:
    """Random fields, none of them `event`."""
    return {
        b"x" + _word(rng).encode(): rng.randbytes(rng.randint(0, 40))
        for _ in range(rng.randint(1, 4))
    }


def not_json(rng: random.Random) -> Fields:
    """Random bytes (often not UTF-8), or a real event cut short."""
    if rng.random() < 0.5:
        return {FIELD: b"\xff" + rng.randbytes(rng.randint(0, 200))}
    whole = json.dumps(_template(rng)).encode()
    return {FIELD: whole[: rng.randint(0, len(whole) - 1)]}


def not_an_object(rng: random.Random) -> Fields:
    """JSON, but a scalar or an array."""
    return _entry(rng.choice(NOT_AN_OBJECT))


def unknown_type(rng: random.Random) -> Fields:
    """A real envelope whose type no code knows."""
    return _entry({**_template(rng), "type": "x." + _word(rng)})


def bad_version(rng: random.Random) -> Fields:
    """A known type at a version from the future, or one that is not an integer."""
    doc = _template(rng)
    # not "1" or true: validation coerces those to 1, a current version of most types
    versions: list[JsonValue] = [rng.randint(3, 10**6), "one", 1.5, [], None, -rng.randint(0, 9)]
    return _entry({**doc, "schema_version": rng.choice(versions)})


def broken_field(rng: random.Random) -> Fields:
    """A real event with one required field of the wrong kind, or one unknown field more."""
    doc = _template(rng)
    if rng.random() < 0.25:
        return _entry({**doc, "x_" + _word(rng): rng.randint(0, 9)})
    name = rng.choice(sorted(WRONG_VALUES))
    return _entry({**doc, name: rng.choice(WRONG_VALUES[name])})


def old_version_unliftable(rng: random.Random) -> Fields:
    """A v1 `artifact.pointer_set` without the `file_id` its upcaster needs."""
    doc = next(d for d in TEMPLATES if d["type"] == "artifact.pointer_set")
    return _entry({**doc, "schema_version": 1, "payload": {"subject": "run"}})


KINDS: tuple[Callable[[random.Random], Fields], ...] = (
    no_event_field,
    not_json,
    not_an_object,
    unknown_type,
    bad_version,
    broken_field,
    old_version_unliftable,
)


def bad_entries(seed: int) -> Iterator[Fields]:
    """An endless, reproducible stream of bad entries of every kind."""
    rng = random.Random(seed)
    while True:
        yield rng.choice(KINDS)(rng)
