"""Settings, read once at process start from the environment and passed down explicitly.

Nested names use `__`: `REDIS__URL`, `APP__DATA_BANK_API_URL`, `SECURITY__API_KEY`, ...
"""

from __future__ import annotations

import socket
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class RedisSettings(BaseModel):
    """Where the stream engine is; without a URL a private engine is started in `data_dir`."""

    model_config = ConfigDict(extra="forbid")

    url: str | None = None
    data_dir: Path = Path("var/engine")


class AppSettings(BaseModel):
    """The worker's identity, its artifacts root, and how to reach Data Bank."""

    model_config = ConfigDict(extra="forbid")

    node_id: str = Field(default_factory=socket.gethostname)
    artifacts_root: Path = Path("var/artifacts")
    data_bank_api_url: str | None = None
    data_bank_api_key: str | None = None


class SecuritySettings(BaseModel):
    """When `api_key` is set, write endpoints require it in `X-API-Key`."""

    model_config = ConfigDict(extra="forbid")

    api_key: str | None = None


class Settings(BaseSettings):
    """Every setting of every trainledger process."""

    model_config = SettingsConfigDict(env_nested_delimiter="__", extra="ignore")

    redis: RedisSettings = RedisSettings()
    app: AppSettings = AppSettings()
    security: SecuritySettings = SecuritySettings()
