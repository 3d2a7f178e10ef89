"""The inference service: `run_id -> file_id -> model -> text`, every byte verified.

A request resolves the run's pointer through the read model, fetches the artifact through
`ArtifactFetcher` (sha256-verified download, safe extraction, cached by file id), and
generates. Errors are JSON `{"code", "message", "request_id"}` like every trainledger service.
"""

from __future__ import annotations

import uuid

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from starlette.exceptions import HTTPException

from databank import DataBankError
from databank.artifacts import ArtifactFetcher
from databank.safetar import UnsafeArtifactError
from inference.generation import GenerateRequest, Generator
from projections import ReadModel


class GenerateResponse(BaseModel):
    """Generated text and the artifact that produced it."""

    run_id: str
    file_id: str
    text: str


class ServiceError(Exception):
    """An error answered as the service's JSON error body."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


def _error(request: Request, status: int, code: str, message: str) -> JSONResponse:
    request_id = request.headers.get("x-request-id") or uuid.uuid4().hex
    body = {"code": code, "message": message, "request_id": request_id}
    return JSONResponse(body, status_code=status, headers={"X-Request-ID": request_id})


def create_app(read_model: ReadModel, fetcher: ArtifactFetcher, generator: Generator) -> FastAPI:
    """The inference API over a read model, an artifact cache and a generator."""
    app = FastAPI(title="trainledger inference", version="0.1.0")

    @app.exception_handler(ServiceError)
    async def service_error(request: Request, error: ServiceError) -> JSONResponse:
        return _error(request, error.status, error.code, error.message)

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, error: RequestValidationError) -> JSONResponse:
        first = error.errors()[0]
        where = ".".join(str(part) for part in first["loc"])
        return _error(request, 422, "INVALID_INPUT", f"{where}: {first['msg']}")

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, error: HTTPException) -> JSONResponse:
        return _error(request, error.status_code, "HTTP_ERROR", str(error.detail))

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.post("/generate")
    def generate(body: GenerateRequest) -> GenerateResponse:
        pointer = read_model.run_artifact(body.run_id)
        if pointer is None:
            raise ServiceError(404, "NOT_FOUND", f"run {body.run_id!r} has no artifact (yet)")
        try:
            directory = fetcher.fetch(pointer.file_id)
        except UnsafeArtifactError as error:
            raise ServiceError(502, "UNSAFE_ARTIFACT", f"artifact refused: {error}") from error
        except DataBankError as error:
            raise ServiceError(
                502, "DATA_BANK_ERROR", f"artifact download failed: {error}"
            ) from error
        text = generator.generate(directory, body)
        return GenerateResponse(run_id=body.run_id, file_id=pointer.file_id, text=text)

    return app
