"""`/docs` with Swagger UI's files served by the API itself, so the page works offline.

FastAPI's own `/docs` loads Swagger UI from a CDN; here the files come from the
`swagger-ui-bundle-v2` wheel (Swagger UI 5, which reads OpenAPI 3.1) under `/docs/assets`.
ReDoc ships no such wheel, so `/redoc` is off. The validator badge is off too: it would ask
a server elsewhere to check the schema.
"""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles
from swagger_ui_bundle import swagger_ui_path

DOCS = "/docs"
ASSETS = "/docs/assets"
OPENAPI = "/openapi.json"


def install_docs(app: FastAPI, title: str) -> None:
    """Serve Swagger UI at `/docs` from local files (create the app with `docs_url=None`)."""
    app.mount(ASSETS, StaticFiles(directory=swagger_ui_path), name="docs-assets")

    @app.get(DOCS, include_in_schema=False)
    def docs() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url=OPENAPI,
            title=f"{title} - API",
            swagger_js_url=f"{ASSETS}/swagger-ui-bundle.js",
            swagger_css_url=f"{ASSETS}/swagger-ui.css",
            swagger_favicon_url=f"{ASSETS}/favicon-32x32.png",
            swagger_ui_parameters={"validatorUrl": None},
        )
