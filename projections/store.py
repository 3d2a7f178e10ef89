"""The read model in the engine: its key layout and the apply script that writes it.

`apply.lua` (see `projections/lua/`) applies one event's fact and advances the checkpoint in
one atomic step, with the derivation rules of `projections.projection` embedded so the engine
and the in-memory model evaluate one table. It refuses (returns 0) while `projector:lock` is
held, which is how a rebuild pauses the live projector without a race: the check and the
write are one step.

The checkpoint only moves forward (max of entry ids): an entry older than it is still applied,
because a reclaimed entry can arrive after newer ones; facts make that harmless.
"""

from __future__ import annotations

import json

from events import lua_source, names
from projections.projection import GROUPS, POINTER, RULES, Fact, Kind

_RULES_JSON = json.dumps(
    {
        kind: {
            "status": [
                [r.status, r.fact, r.message, r.at, list(r.superseded_by)] for r in rules.status
            ],
            "node": list(rules.node),
            "fallback": rules.fallback,
            "pointer": POINTER[kind],
        }
        for kind, rules in RULES.items()
    }
)

APPLY = lua_source("projections", "apply", rules=_RULES_JSON)
"""Apply one fact (if it wins its slot), re-derive the record, advance the checkpoint."""


_STATUS_KEYS = {
    "run": names.run_status_key,
    "tokenizer": names.tokenizer_status_key,
    "alias": names.alias_status_key,
}
_POINTER_KEYS = {
    "run": names.run_artifact_key,
    "tokenizer": names.tokenizer_artifact_key,
    "alias": names.alias_run_key,
}


def status_key(kind: Kind, subject: str) -> str:
    """The hash holding the record of a run, a tokenizer or an alias."""
    return _STATUS_KEYS[kind](subject)


def artifact_key(kind: Kind, subject: str) -> str:
    """The pointer key of a run's or a tokenizer's artifact, or the run key of an alias."""
    return _POINTER_KEYS[kind](subject)


def keys(fact: Fact, stream: str) -> list[str]:
    """The apply script's KEYS for `fact` read from `stream`."""
    return [
        names.PROJECTOR_LOCK,
        names.checkpoint_key(names.PROJECTOR_GROUP, stream),
        status_key(fact.kind, fact.subject),
        artifact_key(fact.kind, fact.subject),
        names.RUN_INDEX,
    ]


def payload(fact: Fact) -> str:
    """The apply script's fact argument: set fields as a flat list, cleared fields by name."""
    fields = GROUPS[fact.kind][fact.group]
    flat: list[str] = []
    clear: list[str] = []
    for name, value in zip(fields, fact.values, strict=True):
        if value is None:
            clear.append(name)
        else:
            flat.extend((name, value))
    doc: dict[str, str | list[str]] = {
        "kind": fact.kind,
        "subject": fact.subject,
        "group": fact.group,
        "at": fact.at,
        "event": fact.event_id,
        "set": flat,
        "clear": clear,
    }
    if fact.score is not None:
        doc["score"] = str(fact.score)
    return json.dumps(doc)
