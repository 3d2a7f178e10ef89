"""The error body every service answers: `{"code", "message", "request_id", "errors"}`."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class FieldError(BaseModel):
    """One validation failure: where (dotted, e.g. `body.training.max_steps`) and why."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    field: str
    message: str


class ErrorBody(BaseModel):
    """Every error response's body: an UPPER_SNAKE code, a message for people, the request id,
    and every validation failure (empty for other errors)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    code: str
    message: str
    request_id: str | None
    errors: list[FieldError] = []
