"""The answers of the HTTP APIs as this client reads them.

Unknown fields are kept (`extra="allow"`): a newer server may add fields without breaking an
older client, and `--json` passes them on. The requests the client sends are the services'
own models (`events.TrainingSpec`), validated before anything is sent.
"""

from __future__ import annotations

from pydantic import AwareDatetime, BaseModel, ConfigDict, JsonValue

Number = int | float


class Wire(BaseModel):
    """Base of every answer model."""

    model_config = ConfigDict(extra="allow", frozen=True)


class ErrorAnswer(Wire):
    """Every service's error body (`httpservice.ErrorBody`): the parts a user is shown."""

    code: str
    message: str


class Pointer(Wire):
    """Where an artifact lives in Data Bank."""

    storage: str = "data-bank"
    file_id: str


class Progress(Wire):
    """How far a running run is."""

    step: int
    total_steps: int
    train_loss: float | None = None
    val_loss: float | None = None


class Difference(Wire):
    """An input that differed between a run and its reproduction."""

    name: str
    original: str | None = None
    reproduction: str | None = None


class Reproduction(Wire):
    """What a reproduction reproduces and, once trained, how its weights compare."""

    of: str
    identical: bool | None = None
    differences: list[Difference] = []


class Run(Wire):
    """A run's status record (`GET /runs/{run_id}`)."""

    run_id: str
    status: str
    message: str | None = None
    node: str | None = None
    name: str | None = None
    tags: dict[str, str] = {}
    progress: Progress | None = None
    requested_at: AwareDatetime | None = None
    started_at: AwareDatetime | None = None
    attempt: int | None = None
    resumed_at_step: int | None = None
    completed_at: AwareDatetime | None = None
    failed_at: AwareDatetime | None = None
    cancelled_at: AwareDatetime | None = None
    metrics: dict[str, Number | None] | None = None
    artifact: Pointer | None = None
    reproduction: Reproduction | None = None


class RunPage(Wire):
    """One page of runs, newest first."""

    items: list[Run]
    total: int
    offset: int
    limit: int
    next_offset: int | None = None


class Tokenizer(Wire):
    """A tokenizer's status record."""

    tokenizer_id: str
    status: str
    message: str | None = None
    node: str | None = None
    requested_at: AwareDatetime | None = None
    completed_at: AwareDatetime | None = None
    vocab_size: int | None = None
    artifact: Pointer | None = None


class TokenizerPage(Wire):
    """One page of tokenizers."""

    items: list[Tokenizer]
    total: int
    offset: int
    limit: int
    next_offset: int | None = None


class Accepted(Wire):
    """A command the API accepted: the entry it appended, and the run it is about."""

    entry_id: str
    run_id: str


class Event(Wire):
    """One event of a run's history: its type and payload, read generically."""

    type: str
    payload: JsonValue = None


class HistoryEntry(Wire):
    """One entry of `GET /runs/{run_id}/events`."""

    entry_id: str
    event: Event | None = None


class History(Wire):
    """Every event about one run, in append order."""

    run_id: str
    entries: list[HistoryEntry]


class Generated(Wire):
    """What the inference service generated."""

    run_id: str
    file_id: str
    text: str


class LogLine(Wire):
    """One line of a run's log stream (an SSE event's data)."""

    kind: str
    message: str
    step: int | None = None
    total_steps: int | None = None
    loss: float | None = None
    tokens_per_second: float | None = None
    eta_seconds: float | None = None


class End(Wire):
    """The log stream's last event: how the run ended."""

    status: str
    message: str | None = None


class Alias(Wire):
    """One live alias of a model."""

    alias: str
    run_id: str
    since: AwareDatetime


class AliasChange(Wire):
    """One entry of a model's alias history (`run_id` None: removed)."""

    alias: str
    run_id: str | None
    at: AwareDatetime


class Model(Wire):
    """A model's live aliases and, from `GET /models/{name}`, their history."""

    name: str
    aliases: list[Alias]
    history: list[AliasChange] = []


class ModelList(Wire):
    """`GET /models`."""

    items: list[Model]


class AliasAccepted(Wire):
    """An alias change was recorded."""

    model: str
    alias: str
    run_id: str | None
    entry_id: str
