"""The local server's settings, passed to `create_app`; only the composition root reads the env."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, SecretStr


class DataBankServerSettings(BaseModel):
    """Where files live, who may do what, and the limits the protocol names."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    data_dir: Path
    upload_keys: tuple[SecretStr, ...] = Field(min_length=1, description="API_UPLOAD_KEYS")
    read_keys: tuple[SecretStr, ...] | None = Field(
        default=None, description="API_READ_KEYS; unset: the upload keys"
    )
    delete_keys: tuple[SecretStr, ...] | None = Field(
        default=None, description="API_DELETE_KEYS; unset: the upload keys"
    )
    max_file_bytes: int = Field(default=0, ge=0, description="MAX_FILE_BYTES; 0: unlimited")
    min_free_gb: float = Field(default=1.0, ge=0, description="MIN_FREE_GB, in GiB")
    body_idle_timeout_s: float = Field(
        default=30.0, gt=0, description="BODY_IDLE_TIMEOUT_S: longest wait for the next body bytes"
    )
    strict_delete: bool = Field(default=False, description="DELETE of a missing file answers 404")

    @property
    def min_free_bytes(self) -> int:
        """`min_free_gb` in bytes."""
        return int(self.min_free_gb * (1 << 30))
