"""The web map at ``/`` and the API docs at ``/docs`` and ``/redoc``, served offline.

Everything a browser loads comes from this server: the map bundle and the
Swagger UI / ReDoc assets are built from pinned npm packages into
``api/static`` (``cd web && npm ci && npm run build``; CI checks that the
committed files match the sources), so the pages work on an intranet with
no internet at all.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from starlette.requests import Request
from starlette.responses import FileResponse, HTMLResponse, Response
from starlette.staticfiles import StaticFiles

__all__ = ["STATIC", "install"]

STATIC = Path(__file__).parent / "static"
_TITLE = "tongge 同格 API"


def install(app: FastAPI) -> None:
    """Serve the web map, its assets and the offline docs (public pages; the API guards data)."""
    app.mount("/static", StaticFiles(directory=STATIC), name="static")

    async def index(request: Request) -> Response:
        return FileResponse(STATIC / "web" / "index.html", media_type="text/html")

    async def swagger(request: Request) -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url="/openapi.json",
            title=_TITLE,
            swagger_js_url="/static/docs/swagger-ui-bundle.js",
            swagger_css_url="/static/docs/swagger-ui.css",
            swagger_favicon_url="/static/docs/favicon-32x32.png",
            oauth2_redirect_url=None,
            # No validator badge: it would send the spec to validator.swagger.io.
            swagger_ui_parameters={"persistAuthorization": False, "validatorUrl": None},
        )

    async def redoc(request: Request) -> HTMLResponse:
        return get_redoc_html(
            openapi_url="/openapi.json",
            title=_TITLE,
            redoc_js_url="/static/docs/redoc.standalone.js",
            redoc_favicon_url="/static/docs/favicon-32x32.png",
            with_google_fonts=False,
        )

    app.add_route("/", index, methods=["GET"], include_in_schema=False)
    app.add_route("/docs", swagger, methods=["GET"], include_in_schema=False)
    app.add_route("/redoc", redoc, methods=["GET"], include_in_schema=False)
