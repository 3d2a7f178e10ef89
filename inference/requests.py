"""What the inference service accepts and answers: pydantic models at the HTTP boundary.

Every request names its model one way: `run_id`, or `model` as `name@alias` (an alias the
API's `PUT /models/{name}/aliases/{alias}` set). Every answer names the run and file id it
used, so a client knows what an alias meant at that moment.
"""

from __future__ import annotations

from typing import Annotated, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, model_validator

NAME = r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}"
"""A model's name or alias (`events.ModelName`)."""
MODEL_REF = rf"^{NAME}@{NAME}$"
MAX_SEQUENCES = 8
"""Sequences one request may ask for (`num_return_sequences`): one batch holds them all."""
MAX_STOPS = 4
MAX_STOP_CHARS = 64
MAX_SCORE_CHARS = 8000

FinishReason = Literal["length", "stop", "eos", "cancelled"]
"""Why a sequence ended: its token budget, a stop sequence, the end-of-text token, or its
stream's client left."""


class ModelRequest(BaseModel):
    """A request for one model, named by run or by alias (exactly one of them)."""

    model_config = ConfigDict(extra="forbid")

    run_id: str | None = Field(default=None, min_length=1, max_length=128)
    model: str | None = Field(
        default=None,
        pattern=MODEL_REF,
        description="`name@alias`: the run the alias points at when the request arrives",
        examples=["tiny@production"],
    )

    @model_validator(mode="after")
    def _one_model(self) -> Self:
        if (self.run_id is None) == (self.model is None):
            raise ValueError("give exactly one of run_id and model")
        return self


class GenerateRequest(ModelRequest):
    """What to generate, and how."""

    prompt: str = Field(min_length=1, max_length=4000)
    max_new_tokens: int = Field(default=40, ge=1, le=512)
    temperature: float = Field(default=0.0, ge=0, le=5, description="0: greedy decoding")
    top_k: int = Field(default=50, ge=1, le=1000)
    top_p: float = Field(default=1.0, gt=0, le=1, description="nucleus sampling; 1: off")
    seed: int = Field(default=0, ge=0, le=2**32 - 1)
    stop: list[Annotated[str, Field(min_length=1, max_length=MAX_STOP_CHARS)]] = Field(
        default=[],
        max_length=MAX_STOPS,
        description="the generated text ends before the first of these",
    )
    num_return_sequences: int = Field(default=1, ge=1, le=MAX_SEQUENCES)
    stream: bool = Field(
        default=False, description="answer Server-Sent Events: text as it comes, then the answer"
    )

    @model_validator(mode="after")
    def _sane_options(self) -> Self:
        if self.num_return_sequences > 1 and self.temperature == 0:
            raise ValueError("num_return_sequences > 1 needs sampling (temperature > 0)")
        return self


class ScoreRequest(ModelRequest):
    """Text to score: how surprised the model is by each of its tokens."""

    text: str = Field(min_length=1, max_length=MAX_SCORE_CHARS)
    per_token: bool = Field(default=False, description="list each token's surprisal")


class Timings(BaseModel):
    """Where a request's time went, in seconds."""

    resolve_s: float
    """Alias and pointer lookups in the read model."""
    fetch_s: float
    """Download, verification and extraction (0 when the model was in memory or on disk)."""
    load_s: float
    """Loading into memory, or waiting for the request that loads it (0 when in memory)."""
    run_s: float
    """Generation or scoring, the wait for a batch included."""


class Served(BaseModel):
    """What every answer carries: the model it used, and where the time went."""

    run_id: str
    file_id: str
    model: str | None = None
    """The `name@alias` asked for (None when the request named the run)."""
    timings: Timings


class Usage(BaseModel):
    """Token counts of a generation."""

    prompt_tokens: int
    """Prompt tokens the model saw (a long prompt keeps its end)."""
    generated_tokens: int
    """New tokens, over every sequence."""


class GenerateResponse(Served):
    """Generated text: `text` is the first sequence, `texts` all of them (prompt included)."""

    text: str
    texts: list[str]
    completions: list[str]
    """The generated part of each text."""
    finish_reasons: list[FinishReason]
    usage: Usage


class TokenSurprisal(BaseModel):
    """One token of a scored text and its surprisal."""

    token: str
    surprisal: float
    """-ln p(token | the tokens before it), in nats."""


class ScoreResponse(Served):
    """The model's mean loss on a text, its perplexity, and per token surprisal when asked."""

    tokens: int
    loss: float
    """Mean cross-entropy per token, in nats (each token predicted from those before it,
    the first from the end-of-text token)."""
    perplexity: float
    per_token: list[TokenSurprisal] | None = None


class StreamPiece(BaseModel):
    """One `token` event of a stream: new text of sequence `index`."""

    index: int
    text: str
