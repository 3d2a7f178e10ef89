"""A tiny real FastAPI app wearing everything `httpservice` gives a service."""

from __future__ import annotations

from collections.abc import Callable

from fastapi import FastAPI, Request
from fastapi.testclient import TestClient
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException
from starlette.types import Scope

from httpservice import (
    FieldError,
    RequestIdMiddleware,
    ServiceError,
    install_error_handlers,
    request_id,
)

Legacy = Callable[[list[FieldError]], ServiceError | None]


class Order(BaseModel):
    """A body with several fields to get wrong at once."""

    item: str = Field(min_length=1)
    count: int = Field(ge=1)
    note: str | None = None


class TeapotError(ServiceError):
    """A subclass fixing its status and code."""

    status = 418
    code = "TEAPOT"

    def __init__(self, message: str) -> None:
        super().__init__(self.status, self.code, message)


def build_app(
    observed: list[tuple[str, int, float]] | None = None,
    legacy: Legacy | None = None,
    validation_status: int = 422,
    validation_code: str = "VALIDATION_ERROR",
) -> FastAPI:
    """The app: one route per kind of failure."""
    app = FastAPI()
    install_error_handlers(
        app,
        validation_status=validation_status,
        validation_code=validation_code,
        legacy=legacy,
    )

    def observe(scope: Scope, status: int, seconds: float) -> None:
        assert observed is not None
        observed.append((str(scope["path"]), status, seconds))

    app.add_middleware(RequestIdMiddleware, observe=observe if observed is not None else None)

    @app.post("/orders")
    async def order(body: Order) -> dict[str, str | None]:
        return {"item": body.item}

    @app.get("/id")
    async def which(request: Request) -> dict[str, str | None]:
        return {"request": request_id(request), "scope": request_id(request.scope)}

    @app.get("/refused")
    async def refused() -> None:
        raise ServiceError(409, "CONFLICT", "no", headers={"Retry-After": "1"})

    @app.get("/teapot")
    async def teapot() -> None:
        raise TeapotError("short and stout")

    @app.get("/gone")
    async def gone() -> None:
        raise HTTPException(410, "gone for good")

    @app.get("/boom")
    async def boom() -> None:
        raise RuntimeError("boom")

    return app


def client(app: FastAPI) -> TestClient:
    """A test client that answers server errors as responses."""
    return TestClient(app, raise_server_exceptions=False)
