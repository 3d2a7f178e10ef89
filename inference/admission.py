"""What an artifact must be before its model is built: a GPT-2 of bounded size whose
safetensors file holds every weight it needs, in the shapes it needs, and whose config names
no code of its own (`auto_map`: transformers ignores it unless told to trust it; refused here).

An artifact's `config.json` says how large a model to allocate, and transformers initializes
any weight its file lacks at random. Both are checked from metadata only (the config, read
with a bound, and the safetensors header), so a small hostile artifact cannot make the service
allocate a model it did not ship, nor serve random weights.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from safetensors import SafetensorError, safe_open
from transformers import GPT2Config, GPT2LMHeadModel

MAX_PARAMETERS = 250_000_000
"""The default bound: above the largest model the API trains with its default bounds
(12 layers of 1024 over a 65,536-token vocabulary and 1,024 positions: about 219 million)."""

MAX_CONFIG_BYTES = 1 << 20
"""A GPT-2 `config.json` is about a kilobyte."""

WEIGHTS = "model.safetensors"


class LoadError(Exception):
    """The artifact's files are not a model transformers can load."""


class TooLargeError(LoadError):
    """The artifact's model has more parameters than this service loads."""


class Gpt2Shape(BaseModel):
    """The sizes of a GPT-2 `config.json` (with sanity bounds: the parameter count is the
    real one)."""

    model_config = ConfigDict(extra="ignore")

    model_type: str
    n_layer: int = Field(ge=1, le=256)
    n_embd: int = Field(ge=1, le=65_536)
    n_positions: int = Field(ge=1, le=1 << 20)
    vocab_size: int = Field(ge=1, le=1 << 24)
    n_inner: int | None = Field(default=None, ge=1, le=1 << 20)
    n_head: int = Field(default=12, ge=1)
    tie_word_embeddings: bool = True
    raw: dict[str, object] = Field(default_factory=dict, exclude=True)
    """The whole config, for building the model."""

    def parameters(self) -> int:
        """The model's parameters (tied embeddings counted once), as GPT2LMHeadModel has them."""
        embd, inner = self.n_embd, self.n_inner or 4 * self.n_embd
        attention = 3 * embd * embd + 3 * embd + embd * embd + embd
        mlp = embd * inner + inner + inner * embd + embd
        layer = 4 * embd + attention + mlp  # two layer norms
        head = 0 if self.tie_word_embeddings else self.vocab_size * embd
        embeddings = (self.vocab_size + self.n_positions) * embd
        return embeddings + self.n_layer * layer + 2 * embd + head


def admit(directory: Path, max_parameters: int) -> None:
    """Refuse `directory` unless it holds a GPT-2 of at most `max_parameters` parameters
    with every weight it needs in its safetensors file."""
    config = _config(directory)
    count = config.parameters()
    if count > max_parameters:
        raise TooLargeError(
            f"config.json names a model of {count:,} parameters; this service loads at most "
            f"{max_parameters:,}"
        )
    expected = _expected(config)
    found = _stored(directory / WEIGHTS)
    missing = sorted(set(expected) - set(found))
    if missing:
        listed = ", ".join(missing[:3]) + (", ..." if len(missing) > 3 else "")
        raise LoadError(f"{WEIGHTS} lacks {len(missing)} of the model's weights: {listed}")
    for name, wanted in expected.items():
        if found[name] != wanted:
            raise LoadError(f"{WEIGHTS}: {name} has shape {found[name]}, the model needs {wanted}")


def _config(directory: Path) -> Gpt2Shape:
    try:
        with (directory / "config.json").open("rb") as file:
            raw = file.read(MAX_CONFIG_BYTES + 1)
    except OSError as error:
        raise LoadError(f"no config.json: {error}") from error
    if len(raw) > MAX_CONFIG_BYTES:
        raise LoadError(f"config.json is larger than {MAX_CONFIG_BYTES} bytes")
    try:
        data = json.loads(raw)
        model_type = data.get("model_type") if isinstance(data, dict) else None
        if model_type != "gpt2":
            raise LoadError(f"config.json: model type {model_type!r} is not served (gpt2 only)")
        if "auto_map" in data:  # never run: refused so no loader's default can change that
            raise LoadError("config.json: auto_map names code shipped in the artifact; none is run")
        return Gpt2Shape.model_validate({**data, "raw": data})
    except (ValueError, ValidationError) as error:  # JSON errors are ValueErrors
        raise LoadError(f"config.json: {error}") from error


def _expected(config: Gpt2Shape) -> dict[str, tuple[int, ...]]:
    """The weights the model needs and their shapes, from a model built without memory."""
    try:
        with torch.device("meta"):
            model = GPT2LMHeadModel(GPT2Config.from_dict(config.raw))
    except (ValueError, TypeError, ArithmeticError) as error:
        raise LoadError(f"config.json: {error}") from error
    needed: dict[str, tuple[int, ...]] = {}
    seen: set[int] = set()
    for name, tensor in model.state_dict(keep_vars=True).items():
        if id(tensor) not in seen:  # a tied weight is stored once, under its first name
            seen.add(id(tensor))
            needed[name] = tuple(tensor.shape)
    return needed


def _stored(path: Path) -> dict[str, tuple[int, ...]]:
    """The tensors of a safetensors file and their shapes, from its header only."""
    try:
        with safe_open(path, framework="pt") as weights:
            names: list[str] = weights.keys()  # a safetensors file does not iterate
            return {name: tuple(weights.get_slice(name).get_shape()) for name in names}
    except (OSError, SafetensorError) as error:
        raise LoadError(f"{WEIGHTS}: {error}") from error
