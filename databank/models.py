"""What crosses the wire, as pydantic models: file metadata, HEAD answers, error bodies."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from databank.ids import FileId


class FileInfo(BaseModel):
    """The answer to `POST /files` and `GET /files/{id}/info`; also the server's metadata record."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    file_id: FileId
    size: int = Field(ge=0)
    sha256: str
    content_type: str
    created_at: datetime | None = None
    """When it was stored; the deployed service sends `null` for files stored before it kept
    metadata (the local server always records it)."""


class FileHead(BaseModel):
    """What `HEAD /files/{id}` says; `etag` without quotes (the deployed service sends none)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    file_id: FileId
    size: int = Field(ge=0)
    content_type: str
    etag: str | None


class ErrorBody(BaseModel):
    """An error answer as the client reads it, tolerantly: the deployed service may send a null
    `request_id` and codes the protocol does not name; the local server adds an `errors` list,
    which is ignored (its `message` summarizes it). A body without `code` (FastAPI's
    `{"detail": ...}`) does not parse, and the client quotes it instead."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    code: str
    message: str = ""
    request_id: str | None = None
