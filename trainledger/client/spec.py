"""The training spec `train` sends: a TOML file (`--config`, the API's body in TOML), the
options on top, validated by `events.TrainingSpec` before any request.

An option replaces what the file says, including what it excludes: `--model-size` drops the
file's explicit dimensions, `--n-layer` its size; likewise a tokenizer id and tokenizer
parameters, and epochs and max steps.
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from pathlib import Path

from pydantic import JsonValue, ValidationError

from events import TrainingSpec
from trainledger.client.errors import ClientError

Section = dict[str, JsonValue]
PLACEHOLDER_FILE_ID = "0" * 64
"""Stands for a corpus not uploaded yet, so the spec is checked before the upload."""
SUMMARIZED = 5

_ALTERNATIVES: dict[str, tuple[frozenset[str], frozenset[str]]] = {
    "tokenizer": (frozenset({"tokenizer_id"}), frozenset({"vocab_size", "min_frequency"})),
    "model": (frozenset({"size"}), frozenset({"n_layer", "n_head", "n_embd"})),
    "training": (frozenset({"epochs"}), frozenset({"max_steps"})),
}
"""Per table, two sets of keys that exclude each other."""


def load(path: Path | None) -> Section:
    """The TOML file's table ({} without a file)."""
    if path is None:
        return {}
    try:
        loaded: Section = tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as error:
        raise ClientError(f"{path}: not a TOML file: {error}") from None
    return loaded


def merge(config: Section, options: Mapping[str, Mapping[str, JsonValue]]) -> Section:
    """`config` with every option that was given (not None) on top; `options` maps a table
    (`tokenizer`, `model`, `training`, `tags`; "" for top-level keys) to its values."""
    merged = dict(config)
    for section, values in options.items():
        given: Section = {key: value for key, value in values.items() if value is not None}
        if not section:
            merged.update(given)
        elif given:
            table = merged.get(section, {})
            if not isinstance(table, dict):
                raise ClientError(f"config: {section} must be a table ([{section}])")
            merged[section] = _without_alternatives(section, table, set(given)) | given
    return merged


def _without_alternatives(section: str, table: Section, given: set[str]) -> Section:
    one, other = _ALTERNATIVES.get(section, (frozenset(), frozenset()))
    dropped = (other if given & one else frozenset()) | (one if given & other else frozenset())
    return {key: value for key, value in table.items() if key not in dropped}


def validated(body: Section) -> TrainingSpec:
    """`body` as a `TrainingSpec`; one line naming the first few problems otherwise."""
    try:
        return TrainingSpec.model_validate(body)
    except ValidationError as error:
        problems = [
            f"{'.'.join(str(part) for part in item['loc']) or 'spec'}: {item['msg']}"
            for item in error.errors()[:SUMMARIZED]
        ]
        raise ClientError(f"invalid training spec: {'; '.join(problems)}") from None
