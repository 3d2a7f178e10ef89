"""`trainledger databank`: serve the Data Bank protocol from a local directory.

Settings come from the environment, read here (the composition root) and nowhere in `databank`:
`DATABANK__DATA_DIR`, `DATABANK__API_UPLOAD_KEYS`, `DATABANK__API_READ_KEYS`,
`DATABANK__API_DELETE_KEYS` (comma-separated), `DATABANK__MAX_FILE_BYTES` (0: unlimited),
`DATABANK__MIN_FREE_GB`, `DATABANK__STRICT_DELETE`, and the bounds on slow or numerous clients
`DATABANK__BODY_IDLE_TIMEOUT_S`, `DATABANK__HEADER_TIMEOUT_S`, `DATABANK__KEEP_ALIVE_S`,
`DATABANK__MAX_CONNECTIONS`. It does not read the other services'
settings (`Settings`), so it logs JSON with its own keys masked.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
import uvicorn
from pydantic import SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from databank.server import DataBankServerSettings, ServingLimits, create_app, server_config
from httpservice import configure_logging

Keys = Annotated[tuple[SecretStr, ...] | None, NoDecode]


class DataBankEnv(BaseSettings):
    """The local server's settings as the environment spells them."""

    model_config = SettingsConfigDict(env_prefix="DATABANK__", extra="ignore")

    data_dir: Path = Path("var/databank")
    api_upload_keys: Keys = None
    api_read_keys: Keys = None
    api_delete_keys: Keys = None
    max_file_bytes: int = 0
    min_free_gb: float = 1.0
    strict_delete: bool = False
    body_idle_timeout_s: float = 30.0
    header_timeout_s: float = 10.0
    keep_alive_s: int = 5
    max_connections: int = 64

    @field_validator("api_upload_keys", "api_read_keys", "api_delete_keys", mode="before")
    @classmethod
    def _split(cls, value: object) -> object:
        """Comma-separated lists; an empty one counts as unset."""
        if isinstance(value, str):
            keys = tuple(key.strip() for key in value.split(",") if key.strip())
            return keys or None
        return value

    def keys(self) -> list[str]:
        """Every key this server accepts: secrets its logs must never show."""
        keys = (self.api_upload_keys or (), self.api_read_keys or (), self.api_delete_keys or ())
        return [key.get_secret_value() for group in keys for key in group]

    def server_settings(self) -> DataBankServerSettings:
        """The settings `create_app` takes; fails without upload keys."""
        return DataBankServerSettings(
            data_dir=self.data_dir,
            upload_keys=self.api_upload_keys or (),
            read_keys=self.api_read_keys,
            delete_keys=self.api_delete_keys,
            max_file_bytes=self.max_file_bytes,
            min_free_gb=self.min_free_gb,
            strict_delete=self.strict_delete,
            body_idle_timeout_s=self.body_idle_timeout_s,
        )

    def serving_limits(self) -> ServingLimits:
        """How long clients may take to send headers, stay idle, and how many may connect."""
        return ServingLimits(
            header_timeout_s=self.header_timeout_s,
            keep_alive_s=self.keep_alive_s,
            max_connections=self.max_connections,
        )


def serve(
    host: Annotated[str, typer.Option(help="address to listen on")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="port to listen on")] = 8010,
    log_level: Annotated[str, typer.Option(help="uvicorn log level")] = "info",
) -> None:
    """Serve the Data Bank protocol locally (settings from DATABANK__* variables)."""
    try:
        env = DataBankEnv()
        settings = env.server_settings()
        limits = env.serving_limits()
    except ValidationError as exc:
        typer.echo(f"invalid Data Bank settings (DATABANK__*): {exc}", err=True)
        raise typer.Exit(code=2) from None
    configure_logging("databank", secrets=env.keys())
    app = create_app(settings)
    uvicorn.Server(server_config(app, limits, host=host, port=port, log_level=log_level)).run()
