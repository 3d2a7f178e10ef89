"""Settings, read once at process start from the environment and passed down explicitly.

Nested names use `__`: `REDIS__URL`, `APP__DATA_BANK_API_URL`, `SECURITY__API_KEY`, ...
Relative paths are resolved against the current directory here, once, so every engine and
service is handed an absolute path (valkey, for one, changes into its `--dir` first).
"""

from __future__ import annotations

import os
import socket
from pathlib import Path
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from events import ConnectionPolicy, Durability


def _absolute(path: Path) -> Path:
    return path.resolve()


AbsolutePath = Annotated[Path, AfterValidator(_absolute)]
"""A path made absolute against the current directory when the settings are read."""


class RedisSettings(BaseModel):
    """Where the stream engine is (without a URL a private engine is started in `data_dir`),
    how every client connects to it, and how many replicas must hold an append before it is
    acknowledged."""

    model_config = ConfigDict(extra="forbid", validate_default=True)

    url: str | None = None
    data_dir: AbsolutePath = Path("var/engine")
    connect_timeout_s: float = Field(default=5.0, gt=0)
    socket_timeout_s: float = Field(default=10.0, gt=0)
    retries: int = Field(default=3, ge=0, le=20)
    wait_replicas: int = Field(default=0, ge=0, le=16)
    wait_timeout_ms: int = Field(default=1000, ge=1)

    def policy(self) -> ConnectionPolicy:
        """The connection policy of every client of this process."""
        return ConnectionPolicy(
            connect_timeout_s=self.connect_timeout_s,
            socket_timeout_s=self.socket_timeout_s,
            retries=self.retries,
        )

    def durability(self) -> Durability:
        """What an append waits for before it counts as done."""
        return Durability(replicas=self.wait_replicas, timeout_ms=self.wait_timeout_ms)


class AppSettings(BaseModel):
    """The worker's identity, its artifacts root, how to reach Data Bank, and the keys that
    sign and verify artifact pointers."""

    model_config = ConfigDict(extra="forbid", validate_default=True)

    node_id: str = Field(default_factory=socket.gethostname)
    artifacts_root: AbsolutePath = Path("var/artifacts")
    data_bank_api_url: str | None = None
    data_bank_api_key: str | None = None
    signing_key: SecretStr | None = None
    """Signs the pointers workers publish; the projector, rebuild and inference verify with it."""
    signing_keys_previous: Annotated[tuple[SecretStr, ...], NoDecode] = ()
    """Keys that still verify (comma-separated): the ones rotated out, until no pointer needs them."""

    @field_validator("signing_keys_previous", mode="before")
    @classmethod
    def _split(cls, value: object) -> object:
        """A comma-separated list, as `DATABANK__API_UPLOAD_KEYS`."""
        if isinstance(value, str):
            return tuple(key.strip() for key in value.split(",") if key.strip())
        return value

    def secrets(self) -> list[str]:
        """Every key in these settings, for the logs to mask."""
        keys = (self.signing_key, *self.signing_keys_previous)
        return [key.get_secret_value() for key in keys if key is not None]


class SecuritySettings(BaseModel):
    """When `api_key` is set, write endpoints require it in `X-API-Key`."""

    model_config = ConfigDict(extra="forbid")

    api_key: str | None = None


class ApiSettings(BaseModel):
    """Where `trainledger api` listens, its read-your-writes and SSE bounds, and the largest
    training spec it accepts."""

    model_config = ConfigDict(extra="forbid")

    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=0, le=65535)
    read_your_writes_timeout_s: float = Field(default=5.0, ge=0, le=60)
    sse_max_s: float = Field(default=300.0, gt=0)
    max_n_layer: int = Field(default=12, ge=1, le=48)
    max_n_embd: int = Field(default=1024, ge=8, le=4096)
    max_batch_size: int = Field(default=256, ge=1, le=1024)
    max_sequence_length: int = Field(default=1024, ge=8, le=4096)
    max_processes: int = Field(default=8, ge=1, le=64)
    """The largest training `POST /runs/train` accepts (422 beyond); at most the spec's own."""


class InferenceSettings(BaseModel):
    """Where `trainledger inference` listens, where it caches artifacts, how many models it keeps."""

    model_config = ConfigDict(extra="forbid", validate_default=True)

    host: str = "127.0.0.1"
    port: int = Field(default=8020, ge=0, le=65535)
    cache_dir: AbsolutePath = Path("var/inference")
    cache_max_bytes: int = Field(default=10 * 2**30, ge=0)
    """Bytes of extracted artifacts kept on disk; least recently used go first, never one in use."""
    max_models: int = Field(default=4, ge=1, le=64)
    max_parameters: int = Field(default=250_000_000, ge=1)
    """The largest model loaded; an artifact naming a larger one is refused (502)."""


class WorkerSettings(BaseModel):
    """How `trainledger worker` paces its stages (`WORKER__*`); tests shorten the timeout."""

    model_config = ConfigDict(extra="forbid")

    progress_interval_s: float = Field(default=5.0, ge=0)
    metrics_interval_s: float = Field(default=30.0, ge=0)
    checkpoint_interval_s: float = Field(default=300.0, gt=0)
    cancel_check_s: float = Field(default=0.5, ge=0)
    visibility_timeout_ms: int = Field(default=30_000, ge=100)
    upload_retry_window_s: float = Field(default=3600, ge=0)
    """How long an upload is tried again while Data Bank fails transiently."""
    torch_threads: int | None = Field(default=None, ge=1, le=4096)
    """Torch's threads per worker; by default the cores split between the workers."""

    def threads(self, workers: int = 1) -> int:
        """Torch's threads for each of `workers` workers on this machine: the setting, else
        `OMP_NUM_THREADS` (torch's own default) when set, else the cores this process may run
        on split evenly (at least one), so they do not oversubscribe."""
        openmp = os.environ.get("OMP_NUM_THREADS", "")
        if self.torch_threads is None and openmp.isdigit() and int(openmp) > 0:
            return int(openmp)
        return self.torch_threads or max(1, len(os.sched_getaffinity(0)) // workers)


class Settings(BaseSettings):
    """Every setting of every trainledger process."""

    model_config = SettingsConfigDict(env_nested_delimiter="__", extra="ignore")

    # factories: defaults are built (and their paths resolved) when the settings are read
    redis: RedisSettings = Field(default_factory=RedisSettings)
    app: AppSettings = Field(default_factory=AppSettings)
    security: SecuritySettings = SecuritySettings()
    api: ApiSettings = ApiSettings()
    inference: InferenceSettings = Field(default_factory=InferenceSettings)
    worker: WorkerSettings = WorkerSettings()
