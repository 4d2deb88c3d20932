"""FastAPI application factory."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from api import errors
from api.bootstrap import open_database
from api.routers import health, layers, units
from gis import __version__
from gis.repository import Database
from gis.settings import Settings, get_settings

DESCRIPTION = """
**同格 tongge** — grid layers for grid-based grassroots governance (网格化管理).

Hierarchical, versioned boundary layers (综治网格 governance grids, 警务网格 police
beats, 城管 urban grids) stored in CGCS2000 (EPSG:4490). Coordinates in responses
are CGCS2000 longitude/latitude. Errors are `application/problem+json`.
"""


def create_app(settings: Settings | None = None, *, db: Database | None = None) -> FastAPI:
    """Build the application; the database is opened when it starts, not at import."""
    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.db = db or open_database(settings)
        try:
            yield
        finally:
            if db is None:
                app.state.db.dispose()

    app = FastAPI(
        title="tongge 同格 API",
        version=__version__,
        description=DESCRIPTION,
        lifespan=lifespan,
        openapi_tags=[
            {"name": "health", "description": "Liveness and readiness."},
            {"name": "layers", "description": "Layers 图层 and their levels 层级."},
            {
                "name": "units",
                "description": "Grid units 网格单元: boundaries, ancestors, children.",
            },
        ],
    )
    errors.install(app)
    app.include_router(health.router)
    app.include_router(layers.router, prefix="/api/v1")
    app.include_router(units.router, prefix="/api/v1")
    return app
