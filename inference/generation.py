"""Load extracted artifacts with transformers and generate text from them.

Loaded models are kept in a small LRU keyed by directory (one directory per file id, so
content never changes under a key). Generation is serialized by a lock: torch runs one
request at a time on its threads, which is faster than many fighting for the cores.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

import torch
from pydantic import BaseModel, ConfigDict, Field
from transformers import (
    AutoModelForCausalLM,
    AutoTokenizer,
    GenerationMixin,
    PreTrainedModel,
    PreTrainedTokenizerBase,
)


class GenerateRequest(BaseModel):
    """What to generate from a run's model."""

    model_config = ConfigDict(extra="forbid")

    run_id: str = Field(min_length=1, max_length=128)
    prompt: str = Field(min_length=1, max_length=4000)
    max_new_tokens: int = Field(default=40, ge=1, le=512)
    temperature: float = Field(default=0.0, ge=0, le=5, description="0: greedy decoding")
    top_k: int = Field(default=50, ge=1, le=1000)
    seed: int = Field(default=0, ge=0, le=2**32 - 1)


@dataclass(frozen=True)
class Loaded:
    """A model and its tokenizer, ready to generate."""

    model: GenerationMixin
    tokenizer: PreTrainedTokenizerBase
    context: int
    """Positions the model can attend to: prompt and new tokens must fit in them."""


class Generator:
    """Generate text with the models of extracted artifact directories."""

    def __init__(self, max_models: int = 4) -> None:
        self.max_models = max_models
        self._loaded: OrderedDict[Path, Loaded] = OrderedDict()
        self._lock = threading.Lock()

    def load(self, directory: Path) -> Loaded:
        """The model of `directory`, loaded once (safetensors only) and kept in the LRU."""
        if directory in self._loaded:
            self._loaded.move_to_end(directory)
            return self._loaded[directory]
        model = AutoModelForCausalLM.from_pretrained(directory, use_safetensors=True)
        assert isinstance(model, PreTrainedModel)  # AutoModelForCausalLM builds only these
        assert isinstance(model, GenerationMixin)
        model.train(False)
        context = int(getattr(model.config, "n_positions", 1024))
        loaded = Loaded(model, AutoTokenizer.from_pretrained(directory), context)
        self._loaded[directory] = loaded
        while len(self._loaded) > self.max_models:
            self._loaded.popitem(last=False)
        return loaded

    def generate(self, directory: Path, request: GenerateRequest) -> str:
        """The prompt continued by the model of `directory` (the prompt included).

        Prompt and continuation must fit the model's context: a long prompt keeps its end
        (at least half the context), and new tokens are capped to the room left.
        """
        with self._lock:
            loaded = self.load(directory)
            encoded = loaded.tokenizer(request.prompt, return_tensors="pt")
            # Prompt tail + new tokens must fit the context; the prompt keeps at least half.
            prompt_tokens = int(encoded["input_ids"].shape[1])
            room = max(loaded.context - request.max_new_tokens, loaded.context // 2)
            kept = min(prompt_tokens, room)
            new_tokens = min(request.max_new_tokens, loaded.context - kept)
            inputs = {name: tensor[:, -kept:] for name, tensor in encoded.items()}
            torch.manual_seed(request.seed)
            sampling = request.temperature > 0
            with torch.no_grad():
                output = loaded.model.generate(
                    **inputs,
                    max_new_tokens=new_tokens,
                    do_sample=sampling,
                    temperature=request.temperature if sampling else None,
                    top_k=request.top_k if sampling else None,
                    pad_token_id=loaded.tokenizer.eos_token_id,
                )
            texts: list[str] = loaded.tokenizer.batch_decode(output, skip_special_tokens=True)
            return texts[0]
