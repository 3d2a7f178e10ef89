"""`WorkerConfig`: everything a worker node's stages need, handed in by the composition root."""

from __future__ import annotations

import math
from dataclasses import replace
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from consumers.layout import ArtifactsLayout
from events import PRIMARY_ONLY, Durability, RuntimeConfig, SigningKeys


class WorkerConfig(BaseModel):
    """A node's identity, its artifacts root, and the stages' rates and timings."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    node_id: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
    """Names the node in `training.completed`; its upload group is `upload:<node_id>`."""
    artifacts_root: Path
    signing_keys: SigningKeys
    """Signs the pointers this node publishes, verifies those it reads (`events.signing`)."""
    progress_interval_s: float = Field(default=5.0, ge=0)
    """At most one progress line per this many seconds (and one after the last step)."""
    metrics_interval_s: float = Field(default=30.0, ge=0)
    """At most one `training.progress` event (loss curves) per this many seconds, plus the
    last step's."""
    checkpoint_interval_s: float = Field(default=300.0, gt=0)
    """A checkpoint of a running training at least this often (and every
    `training.checkpoint_every_steps` steps when a spec says so)."""
    cancel_check_s: float = Field(default=0.5, ge=0)
    """How often a running training asks the log whether it was cancelled."""
    log_lines: int = Field(default=1000, ge=1)
    """About how many lines each run's log stream keeps."""
    block_ms: int = Field(default=1000, ge=1)
    visibility_timeout_ms: int = Field(default=30_000, ge=100)
    """How long a dead worker's entries wait before another worker reclaims them."""
    max_deliveries: int = Field(default=5, ge=1)
    upload_retry_window_s: float = Field(default=3600, ge=0)
    """How long an upload keeps being tried again while Data Bank fails transiently."""
    durability: Durability = PRIMARY_ONLY
    """What the stages' appends wait for (replicas of a replicated engine)."""
    trainledger_version: str = "0+unknown"
    """The trainledger this node runs, recorded in each manifest (the composition root knows it)."""

    @property
    def layout(self) -> ArtifactsLayout:
        """The node's directories."""
        return ArtifactsLayout(self.artifacts_root)

    def runtime(self) -> RuntimeConfig:
        """The consumer runtime's settings."""
        return RuntimeConfig(
            block_ms=self.block_ms,
            visibility_timeout_ms=self.visibility_timeout_ms,
            max_deliveries=self.max_deliveries,
        )

    def upload_runtime(self) -> RuntimeConfig:
        """The upload group's settings: the retry window, not the delivery count, ends a
        deferred upload. A retry is a redelivery once the entry has been idle for the
        visibility timeout, counted from its last heartbeat (a third of the timeout apart), so
        retries come at least two thirds of a timeout apart; the group allows as many as the
        window holds on top of the usual `max_deliveries` for handlers that crash."""
        retries = math.ceil(1.5 * self.upload_retry_window_s * 1000 / self.visibility_timeout_ms)
        retries += 1
        return replace(self.runtime(), max_deliveries=self.max_deliveries + retries)
