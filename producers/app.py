"""The API application: the routers, the error shape, request ids and metrics, the lifespan."""

from __future__ import annotations

from fastapi import FastAPI

from httpservice import RequestIdMiddleware
from producers import aliases, commands, errors, health, logs, reads, ui
from producers.config import ApiConfig
from producers.services import Services

DESCRIPTION = """
Commands become events on the log (202 with the entry id); reads come from the projector's
read model. Pass a write's `entry_id` as `min_position` to a GET to read your own write.
Errors are always JSON: `{"code", "message", "request_id", "errors"}`, with an UPPER_SNAKE
`code` and, for a request that fails validation, every failure in `errors` (field, message).
"""


def create_app(config: ApiConfig) -> FastAPI:
    """Build the API; its connections open when the app starts and close when it stops."""
    services = Services(config)
    app = FastAPI(
        title="trainledger",
        version="0.1.0",
        description=DESCRIPTION,
        lifespan=services.lifespan,
        docs_url=None,  # `ui.install_docs` serves Swagger UI from local files
        redoc_url=None,
    )
    errors.install(app)
    app.add_middleware(RequestIdMiddleware, observe=services.metrics.observe)
    app.include_router(reads.router(services))  # first: routes match in order, reads are hot
    app.include_router(commands.router(services))
    app.include_router(aliases.router(services))
    app.include_router(logs.router(services))
    app.include_router(health.router(services))
    app.include_router(ui.router(services))
    ui.install_docs(app, app.title)
    return app
