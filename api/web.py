"""The web map at ``/`` and the API docs at ``/docs`` and ``/redoc``, served offline.

Everything a browser loads comes from this server: the map bundle and the
Swagger UI / ReDoc assets are built from pinned npm packages into
``api/static`` (``cd web && npm ci && npm run build``; CI checks that the
committed files match the sources), so the pages work on an intranet with
no internet at all.
"""

from __future__ import annotations

import re
from pathlib import Path

from fastapi import FastAPI
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from starlette.requests import Request
from starlette.responses import FileResponse, HTMLResponse, Response
from starlette.staticfiles import StaticFiles

__all__ = ["GLYPH_FONTS", "STATIC", "install"]

STATIC = Path(__file__).parent / "static"
_TITLE = "tongge 同格 API"
#: Font stacks of the map labels: SDF glyph ranges built by ``web/glyphs.mjs``
#: (Latin, digits, punctuation); CJK is drawn by the browser from local fonts.
GLYPH_FONTS = ["Noto Sans Regular", "Noto Sans Bold"]
_GLYPH_RANGE = re.compile(r"(\d{1,5})-(\d{1,5})")


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

    async def glyphs(request: Request) -> Response:
        # MapLibre asks for every 256-character range a label uses: ranges not
        # shipped (CJK is drawn locally) answer an empty glyph set, not 404, so
        # that the map logs no errors; unknown fonts and bad ranges are 404.
        font = next(
            (f for f in request.path_params["fontstack"].split(",") if f.strip() in GLYPH_FONTS),
            None,
        )
        found = _GLYPH_RANGE.fullmatch(request.path_params["range"])
        if font is None or found is None:
            return Response(status_code=404)
        start, end = int(found[1]), int(found[2])
        if start % 256 or end != start + 255 or end > 65535:
            return Response(status_code=404)
        path = STATIC / "glyphs" / font.strip() / f"{start}-{end}.pbf"
        data = path.read_bytes() if path.is_file() else b""
        return Response(data, media_type="application/x-protobuf")

    app.add_route("/", index, methods=["GET"], include_in_schema=False)
    app.add_route(
        "/glyphs/{fontstack}/{range}.pbf", glyphs, methods=["GET"], include_in_schema=False
    )
    app.add_route("/docs", swagger, methods=["GET"], include_in_schema=False)
    app.add_route("/redoc", redoc, methods=["GET"], include_in_schema=False)
