"""The local Data Bank server: the protocol of `docs/databank-protocol.md`, implemented correctly.

`create_app(settings)` builds the FastAPI app; `trainledger databank` serves it with uvicorn.
Uploads are parsed as they arrive and written straight into the data directory (see `ingest`).
Errors take `httpservice`'s one JSON shape with the protocol's codes; a request that fails
validation (a malformed file id) is 400 `INVALID_INPUT`, every failure listed in `errors`.
"""

from __future__ import annotations

from typing import Annotated

import anyio.to_thread
from fastapi import APIRouter, Depends, FastAPI, Header, Request, Response
from fastapi import Path as PathParam
from fastapi.responses import JSONResponse, StreamingResponse
from pydantic import BaseModel, ConfigDict
from starlette.requests import ClientDisconnect

from databank.ids import FILE_ID_PATTERN
from databank.models import FileInfo
from databank.ranges import (
    UnsatisfiableRangeError,
    format_content_range,
    format_unsatisfied_range,
    parse_range,
)
from databank.server.auth import KeyRing, Scope
from databank.server.ingest import (
    DEFAULT_CONTENT_TYPE,
    BodyStalledError,
    MalformedUploadError,
    UploadTooLargeError,
    header_safe,
    multipart_boundary,
    receive_file,
)
from databank.server.settings import DataBankServerSettings
from databank.server.storage import BelowFreeFloorError, FileStore, iter_span
from httpservice import RequestIdMiddleware, ServiceError, install_error_handlers

FileIdParam = Annotated[str, PathParam(pattern=f"^{FILE_ID_PATTERN}$")]


class Health(BaseModel):
    """`/healthz` and `/readyz` answers."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    status: str
    reason: str | None = None


def _health(health: Health, status_code: int = 200) -> Response:
    return JSONResponse(health.model_dump(exclude_none=True), status_code=status_code)


def _not_found(file_id: str) -> ServiceError:
    return ServiceError(404, "NOT_FOUND", f"no file {file_id}")


def _servable(info: FileInfo) -> FileInfo:
    """`info` as served: a content type stored before uploads were checked, that no header can
    carry, is answered as the default rather than break every read of the file."""
    if header_safe(info.content_type):
        return info
    return info.model_copy(update={"content_type": DEFAULT_CONTENT_TYPE})


def _file_headers(info: FileInfo) -> dict[str, str]:
    return {
        "Content-Length": str(info.size),
        "Content-Type": info.content_type,
        # Bare, unquoted, as the deployed service answers: clients written for it compare the
        # header verbatim with the sha256.
        "ETag": info.file_id,
        "Accept-Ranges": "bytes",
    }


class _Service:
    """The handlers, closed over one store, one key ring and the settings."""

    def __init__(self, settings: DataBankServerSettings) -> None:
        self.settings = settings
        self.store = FileStore(settings.data_dir)
        self.store.clear_partials()

    def readiness(self) -> str | None:
        """Why the server cannot take uploads now, or None when it can."""
        try:
            self.store.check_writable()
        except OSError as exc:
            return f"storage is not writable: {exc}"
        return self._disk_shortage()

    def _disk_shortage(self) -> str | None:
        free = self.store.free_bytes()
        if free < self.settings.min_free_bytes:
            return f"free disk {free} bytes is below MIN_FREE_GB ({self.settings.min_free_gb} GiB)"
        return None

    async def upload(self, request: Request) -> Response:
        shortage = await anyio.to_thread.run_sync(self._disk_shortage)
        if shortage is not None:
            raise ServiceError(507, "INSUFFICIENT_STORAGE", shortage)
        try:
            boundary = multipart_boundary(request.headers.get("content-type"))
        except MalformedUploadError as exc:
            raise ServiceError(400, "INVALID_INPUT", str(exc)) from None
        pending = await anyio.to_thread.run_sync(self.store.begin, self.settings.min_free_bytes)
        try:
            content_type = await receive_file(
                request.stream(),
                boundary,
                pending,
                limit=self.settings.max_file_bytes,
                idle_timeout=self.settings.body_idle_timeout_s,
            )
            info = await anyio.to_thread.run_sync(self.store.commit, pending, content_type)
        except MalformedUploadError as exc:
            raise ServiceError(400, "INVALID_INPUT", str(exc)) from None
        except UploadTooLargeError as exc:
            raise ServiceError(413, "PAYLOAD_TOO_LARGE", str(exc)) from None
        except BodyStalledError as exc:
            raise ServiceError(408, "REQUEST_TIMEOUT", str(exc), {"Connection": "close"}) from None
        except BelowFreeFloorError:
            message = (
                f"upload stopped: free disk would fall below MIN_FREE_GB "
                f"({self.settings.min_free_gb} GiB)"
            )
            raise ServiceError(507, "INSUFFICIENT_STORAGE", message) from None
        except ClientDisconnect:
            # Nobody is left to answer; what matters is that the partial upload is gone.
            return Response(status_code=400)
        finally:
            await anyio.to_thread.run_sync(pending.discard)
        return JSONResponse(info.model_dump(mode="json"), status_code=201)

    def head(self, file_id: str) -> Response:
        info = self.store.info(file_id)
        if info is None:
            raise _not_found(file_id)
        return Response(status_code=200, headers=_file_headers(_servable(info)))

    def download(self, file_id: str, range_header: str | None) -> Response:
        opened = self.store.open(file_id)
        if opened is None:
            raise _not_found(file_id)
        handle, info = opened[0], _servable(opened[1])
        try:
            span = parse_range(range_header, info.size)
        except UnsatisfiableRangeError as exc:
            handle.close()
            raise ServiceError(
                416,
                "RANGE_NOT_SATISFIABLE",
                str(exc),
                {"Content-Range": format_unsatisfied_range(info.size)},
            ) from None
        headers = _file_headers(info)
        if span is None:
            return StreamingResponse(iter_span(handle, 0, info.size), headers=headers)
        headers["Content-Length"] = str(span.length)
        headers["Content-Range"] = format_content_range(span, info.size)
        body = iter_span(handle, span.start, span.length)
        return StreamingResponse(body, status_code=206, headers=headers)

    def info(self, file_id: str) -> FileInfo:
        info = self.store.info(file_id)
        if info is None:
            raise _not_found(file_id)
        return _servable(info)

    def delete(self, file_id: str) -> Response:
        if not self.store.delete(file_id) and self.settings.strict_delete:
            raise _not_found(file_id)
        return Response(status_code=204)


def _routes(service: _Service, keys: KeyRing) -> APIRouter:
    router = APIRouter()
    upload = [Depends(keys.requires(Scope.UPLOAD))]
    read = [Depends(keys.requires(Scope.READ))]
    delete = [Depends(keys.requires(Scope.DELETE))]

    @router.get("/healthz")
    def healthz() -> Response:
        return _health(Health(status="ok"))

    @router.get("/readyz")
    def readyz() -> Response:
        reason = service.readiness()
        if reason is None:
            return _health(Health(status="ready"))
        return _health(Health(status="degraded", reason=reason), status_code=503)

    @router.post("/files", status_code=201, dependencies=upload)
    async def post_file(request: Request) -> Response:
        return await service.upload(request)

    @router.head("/files/{file_id}", dependencies=read)
    def head_file(file_id: FileIdParam) -> Response:
        return service.head(file_id)

    @router.get("/files/{file_id}", dependencies=read)
    def get_file(
        file_id: FileIdParam, range_header: Annotated[str | None, Header(alias="Range")] = None
    ) -> Response:
        return service.download(file_id, range_header)

    @router.get("/files/{file_id}/info", dependencies=read)
    def file_info(file_id: FileIdParam) -> FileInfo:
        return service.info(file_id)

    @router.delete("/files/{file_id}", status_code=204, dependencies=delete)
    def delete_file(file_id: FileIdParam) -> Response:
        return service.delete(file_id)

    return router


def create_app(settings: DataBankServerSettings) -> FastAPI:
    """The local Data Bank as an ASGI app; clears uploads a previous run left unfinished."""
    app = FastAPI(title="Data Bank (local)", docs_url=None, redoc_url=None, openapi_url=None)
    app.add_middleware(RequestIdMiddleware)
    install_error_handlers(app, validation_status=400, validation_code="INVALID_INPUT")
    app.include_router(_routes(_Service(settings), KeyRing(settings)))
    return app
