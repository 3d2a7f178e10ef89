"""Score text: each token's surprisal under the model, their mean (the loss) and perplexity.

The text is scored after the end-of-text token, so its first token is predicted too and a
one-token text has a score. It must fit the context with that token: a longer text is refused
(`ContextOverflowError`) rather than scored in windows that would change its loss.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as functional

from inference.completion import decode
from inference.loading import Loaded


class ContextOverflowError(ValueError):
    """The text has more tokens than the model's context holds."""


@dataclass(frozen=True)
class Score:
    """A text's tokens and their surprisal (nats)."""

    tokens: list[str]
    surprisals: list[float]

    @property
    def loss(self) -> float:
        """Mean surprisal per token."""
        return sum(self.surprisals) / len(self.surprisals)

    @property
    def perplexity(self) -> float:
        """exp(loss)."""
        return math.exp(self.loss)


def score(loaded: Loaded, text: str) -> Score:
    """The surprisal of every token of `text` given those before it (and end of text)."""
    encoded = loaded.tokenizer(text)["input_ids"]
    assert isinstance(encoded, list)  # one string encodes to one list of ids
    ids = [loaded.end_of_text, *(int(token) for token in encoded)]
    if len(ids) > loaded.context:
        raise ContextOverflowError(
            f"text is {len(ids) - 1} tokens; this model scores at most {loaded.context - 1}"
        )
    inputs = torch.tensor([ids], dtype=torch.long)
    with torch.inference_mode():
        logits = loaded.model(input_ids=inputs, attention_mask=torch.ones_like(inputs)).logits
        assert isinstance(logits, torch.Tensor)
        surprisal = functional.cross_entropy(
            logits[0, :-1].float(), inputs[0, 1:], reduction="none"
        )
    return Score(
        tokens=[decode(loaded.tokenizer, [token]) for token in ids[1:]],
        surprisals=[float(value) for value in surprisal],
    )
