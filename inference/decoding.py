"""Batched decoding: the sequences of several requests advance together, one token per step.

Prompts are left-padded to one length, with an attention mask over the padding and position
ids counted from each row's first real token, so a row sees exactly what it would see alone.
Each row samples with its own generator seeded from its request, so a seeded or greedy row
gives the same tokens in a batch as alone. One forward pass per step over the key/value cache;
rows that finished ride along (their tokens ignored) until every row is done.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from transformers import Cache

from inference.completion import Completion
from inference.loading import Loaded
from inference.requests import FinishReason

SEED_STRIDE = 8
"""Row `i` of a request seeded `s` samples from seed `s * SEED_STRIDE + i` (i < 8): distinct
for every (seed, row), and row 0 is the same as a one-sequence request's."""


@dataclass(frozen=True)
class Sampling:
    """How a row picks its next token: greedy at temperature 0, else sampled."""

    temperature: float = 0.0
    top_k: int = 50
    top_p: float = 1.0


@dataclass
class Row:
    """One sequence being generated."""

    prompt: list[int]
    budget: int
    """New tokens it may take (its request's, capped by the room left in the context)."""
    completion: Completion
    sampling: Sampling = Sampling()
    seed: int = 0
    finish: FinishReason | None = None
    cancelled: bool = False
    """Set from another thread when nobody waits for the row any more."""
    rng: torch.Generator = field(init=False)

    def __post_init__(self) -> None:
        self.rng = torch.Generator().manual_seed(self.seed)

    @property
    def generated(self) -> int:
        """Tokens generated so far."""
        return len(self.completion.ids)

    def step(self, logits: torch.Tensor, end_of_text: int) -> int:
        """Pick this row's next token from its logits; the token fed back (end of text once
        the row is done)."""
        if self.finish is not None:
            return end_of_text
        if self.cancelled:
            self.finish = "cancelled"
            return end_of_text
        token = choose(logits, self.sampling, self.rng)
        if token == end_of_text:
            self.finish = "eos"
        elif self.completion.add(token):
            self.finish = "stop"
        elif self.generated >= self.budget:
            self.finish = "length"
        return token


def choose(logits: torch.Tensor, sampling: Sampling, rng: torch.Generator) -> int:
    """The next token: the most likely, or sampled after temperature, top-k and top-p."""
    if sampling.temperature == 0:
        return int(logits.argmax())
    scores = logits.float() / sampling.temperature
    values, indices = torch.topk(scores, min(sampling.top_k, scores.numel()))
    probs = torch.softmax(values, dim=-1)
    if sampling.top_p < 1:
        # Keep the most likely tokens until their mass reaches top_p (the first always).
        probs = probs * ((probs.cumsum(-1) - probs) < sampling.top_p)
    return int(indices[torch.multinomial(probs, 1, generator=rng)])


def _forward(
    loaded: Loaded,
    ids: torch.Tensor,
    mask: torch.Tensor,
    positions: torch.Tensor,
    cache: Cache | None,
) -> tuple[torch.Tensor, Cache]:
    output = loaded.model(
        input_ids=ids, attention_mask=mask, position_ids=positions, cache=cache, use_cache=True
    )
    logits, new_cache = output.logits, output.cache
    assert isinstance(logits, torch.Tensor)
    assert isinstance(new_cache, Cache)
    return logits[:, -1, :], new_cache


def left_padded(rows: list[Row], pad: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Input ids, attention mask and position ids of the rows' prompts, padded on the left."""
    width = max(len(row.prompt) for row in rows)
    ids = torch.full((len(rows), width), pad, dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    for index, row in enumerate(rows):
        ids[index, width - len(row.prompt) :] = torch.tensor(row.prompt, dtype=torch.long)
        mask[index, width - len(row.prompt) :] = 1
    positions = (mask.cumsum(-1) - 1).clamp(min=0)
    return ids, mask, positions


def decode_batch(loaded: Loaded, rows: list[Row]) -> None:
    """Generate every row to its end (budget, end of text, stop sequence or cancellation)."""
    ids, mask, positions = left_padded(rows, loaded.end_of_text)
    with torch.inference_mode():
        logits, cache = _forward(loaded, ids, mask, positions, None)
        while True:
            chosen = [row.step(logits[i], loaded.end_of_text) for i, row in enumerate(rows)]
            if all(row.finish is not None for row in rows):
                return
            mask = torch.cat([mask, torch.ones((len(rows), 1), dtype=torch.long)], dim=1)
            # A finished row keeps its last position (its own would run past the context).
            positions = (positions[:, -1:] + 1).clamp(max=loaded.context - 1)
            fed = torch.tensor(chosen, dtype=torch.long)[:, None]
            logits, cache = _forward(loaded, fed, mask, positions, cache)
