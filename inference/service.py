"""The inference service: `run_id -> file_id -> model -> text`, every byte verified.

A request resolves the run's pointer through the read model, fetches the artifact through
`ArtifactFetcher` (sha256-verified download, safe extraction, cached by file id), and
generates. Errors are `httpservice`'s JSON `{"code", "message", "request_id", "errors"}`, like
every trainledger service.
"""

from __future__ import annotations

from fastapi import FastAPI
from pydantic import BaseModel

from databank import ArtifactFetcher, DataBankError, UnsafeArtifactError
from httpservice import ErrorBody, RequestIdMiddleware, ServiceError, install_error_handlers
from inference.generation import GenerateRequest, Generator
from projections import ReadModel


class GenerateResponse(BaseModel):
    """Generated text and the artifact that produced it."""

    run_id: str
    file_id: str
    text: str


def create_app(read_model: ReadModel, fetcher: ArtifactFetcher, generator: Generator) -> FastAPI:
    """The inference API over a read model, an artifact cache and a generator."""
    app = FastAPI(title="trainledger inference", version="0.1.0")
    install_error_handlers(app)
    app.add_middleware(RequestIdMiddleware)

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.post(
        "/generate",
        responses={
            404: {"model": ErrorBody, "description": "the run has no artifact (yet)"},
            502: {"model": ErrorBody, "description": "the artifact was unsafe or unreachable"},
        },
    )
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
