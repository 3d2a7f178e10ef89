"""Every stream, group and key name of the system: nothing else spells them."""

from __future__ import annotations

TRAINING_STREAM = "stream:training"
"""Training and tokenizer lifecycle."""
UPLOAD_STREAM = "stream:upload"
"""Upload lifecycle."""
POINTER_STREAM = "stream:pointer"
"""Artifact pointers set and revoked."""
ALL_STREAMS = (TRAINING_STREAM, UPLOAD_STREAM, POINTER_STREAM)

TRAINING_GROUP = "training"
PROJECTOR_GROUP = "projector"
RETENTION_GROUP = "retention"
RUN_INDEX = "runs:index"
PROJECTOR_LOCK = "projector:lock"
EVENT_IDS = "events:ids"
"""Hash: event id -> `stream entry_id` of every event appended, kept as long as the log, so an
id is never appended twice (see `events.idempotency.EventIdReused`)."""


def upload_group(node_id: str) -> str:
    """The upload stage's group of one node: each node sees every event and keeps its own."""
    return f"upload:{node_id}"


def live_consumers_key(group: str) -> str:
    """Sorted set of the group's live consumers, each scored by when its announcement expires
    (engine time, ms); written by the runtime's heartbeat, read by the API's `/readyz`."""
    return f"consumers:{group}"


def dlq_stream(stream: str, group: str) -> str:
    """Dead letters of `group` reading `stream`."""
    return f"dlq:{stream}:{group}"


def dlq_origin(key: str) -> tuple[str, str]:
    """The (stream, group) a dead-letter stream belongs to: the inverse of `dlq_stream`.

    Stream names are `stream:<name>` (one colon) while group names may hold more
    (`upload:<node>`), so the stream is the first two segments and the group the rest.
    """
    kind, _, rest = key.removeprefix("dlq:").partition(":")
    name, _, group = rest.partition(":")
    return f"{kind}:{name}", group


def failures_key(stream: str, group: str) -> str:
    """Hash of entry id -> last handler error, kept until the entry is acked or dead-lettered."""
    return f"failures:{stream}:{group}"


def idempotency_key(key: str) -> str:
    """Entry id recorded for an idempotency key, so a retried append finds it, and the
    request's fingerprint, so a key reused for another request is caught."""
    return f"idempotency:{key}"


def correlation_key(correlation_id: str) -> str:
    """List of `stream entry_id` of every event about one run or tokenizer, in append order."""
    return f"correlation:{correlation_id}"


def run_logs_stream(run_id: str) -> str:
    """Capped stream of a run's progress and log lines (not domain events)."""
    return f"runs:{run_id}:logs"


def run_artifact_key(run_id: str) -> str:
    """The design's pointer key of a run's artifact."""
    return f"runs:artifact:{run_id}:file_id"


def tokenizer_artifact_key(tokenizer_id: str) -> str:
    """The pointer key of a tokenizer's artifact."""
    return f"tokenizer:{tokenizer_id}:file_id"


def run_status_key(run_id: str) -> str:
    """Hash: a run's status record."""
    return f"runs:{run_id}:status"


def tokenizer_status_key(tokenizer_id: str) -> str:
    """Hash: a tokenizer's status record."""
    return f"tokenizer:{tokenizer_id}:status"


def alias_status_key(model_alias: str) -> str:
    """Hash: the record of one alias, `<model>@<alias>`: its target slot and status."""
    return f"models:{model_alias}:alias"


def alias_run_key(model_alias: str) -> str:
    """The run an alias (`<model>@<alias>`) serves now; absent once removed."""
    return f"models:{model_alias}:run_id"


def checkpoint_key(group: str, stream: str) -> str:
    """Last entry id of `stream` applied by `group` (the projector's checkpoint)."""
    return f"checkpoint:{group}:{stream}"
