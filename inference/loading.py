"""Models in memory: loaded from extracted artifacts, kept in a small LRU, loaded once.

The LRU is keyed by file id (content-addressed: what a key holds never changes). Loading is
single-flight: concurrent first requests for one key wait for the one that loads, instead of
each loading a copy (a failed load is not shared: the next waiter tries again).
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from transformers import (
    AutoModelForCausalLM,
    AutoTokenizer,
    GenerationMixin,
    PreTrainedModel,
    PreTrainedTokenizerBase,
)

from inference.admission import MAX_PARAMETERS, admit
from inference.admission import LoadError as LoadError  # where callers have found it


@dataclass(frozen=True)
class Loaded:
    """A model and its tokenizer, ready to generate and score."""

    model: PreTrainedModel
    tokenizer: PreTrainedTokenizerBase
    context: int
    """Positions the model can attend to: prompt and new tokens must fit in them."""
    end_of_text: int
    """The end-of-text token: generation stops on it, padding and scoring start from it."""


def load_model(directory: Path, max_parameters: int = MAX_PARAMETERS) -> Loaded:
    """The model of `directory` (safetensors only: pickled weights are never loaded), once
    `admit` found it within `max_parameters` and its weights all there: nothing is
    initialized at random, nothing larger is allocated."""
    admit(directory, max_parameters)
    try:
        model = AutoModelForCausalLM.from_pretrained(directory, use_safetensors=True)
        tokenizer = AutoTokenizer.from_pretrained(directory)
    except (OSError, ValueError) as error:
        raise LoadError(f"{directory.name}: {error}") from error
    assert isinstance(model, PreTrainedModel)  # AutoModelForCausalLM builds only these
    assert isinstance(model, GenerationMixin)
    model.train(False)
    end = tokenizer.eos_token_id
    if not isinstance(end, int):
        raise LoadError(f"{directory.name}: the tokenizer has no end-of-text token")
    context = int(getattr(model.config, "n_positions", 1024))
    return Loaded(model, tokenizer, context, end)


class ModelCache:
    """Loaded models by key: at most `max_models`, least recently used out first."""

    def __init__(self, max_models: int) -> None:
        self.max_models = max_models
        self._loaded: OrderedDict[str, Loaded] = OrderedDict()
        self._guard = threading.Lock()
        self._flights: dict[str, threading.Lock] = {}
        self.loads = 0
        """Models loaded since this cache was made."""

    def peek(self, key: str) -> Loaded | None:
        """The model under `key` if it is in memory (marked as just used)."""
        with self._guard:
            loaded = self._loaded.get(key)
            if loaded is not None:
                self._loaded.move_to_end(key)
            return loaded

    def get(self, key: str, load: Callable[[], Loaded]) -> tuple[Loaded, bool]:
        """The model under `key`, loaded by `load` unless in memory; and whether it was."""
        found = self.peek(key)
        if found is not None:
            return found, True
        with self._guard:
            flight = self._flights.setdefault(key, threading.Lock())
        with flight:
            found = self.peek(key)
            if found is not None:  # loaded by the request this one waited for
                return found, True
            loaded = load()
            with self._guard:
                self.loads += 1
                self._loaded[key] = loaded
                while len(self._loaded) > self.max_models:
                    evicted, _ = self._loaded.popitem(last=False)
                    self._flights.pop(evicted, None)
            return loaded, False
