"""FastAPI application factory."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI
from pydantic import BaseModel

from api import errors
from api.bootstrap import open_database
from api.fastpath import GeocodeFastPath
from api.routers import alignment, geocode, health, layers, units, workload
from api.schemas_geocode import GeocodeRequest
from gis import __version__
from gis.locate import LocateService
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
        app.state.locator = LocateService(
            app.state.db, refresh_seconds=settings.index_refresh_seconds
        )
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
            {"name": "geocode", "description": "Locate incidents in every layer 事件定位."},
            {"name": "alignment", "description": "Same-grid check between layers 同格校核."},
            {"name": "workload", "description": "Workload per unit 负载均衡 (counts only)."},
        ],
    )
    app.state.settings = settings
    app.add_middleware(GeocodeFastPath)
    errors.install(app)
    app.include_router(health.router)
    app.include_router(layers.router, prefix="/api/v1")
    app.include_router(units.router, prefix="/api/v1")
    app.include_router(geocode.router, prefix="/api/v1")
    app.include_router(alignment.router, prefix="/api/v1")
    app.include_router(workload.router, prefix="/api/v1")
    _document_models(app, GeocodeRequest)
    return app


def _document_models(app: FastAPI, *models: type[BaseModel]) -> None:
    """Add schemas of bodies parsed by hand (hot paths) to the OpenAPI components."""
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = generate()
            components = schema.setdefault("components", {}).setdefault("schemas", {})
            for model in models:
                components[model.__name__] = model.model_json_schema(
                    ref_template="#/components/schemas/{model}"
                )
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def create_server_app() -> GeocodeFastPath:
    """Build the application as served: the geocode hot path in front of everything.

    Starlette's middleware stack costs about as much as the lookup itself, so
    ``uvicorn`` serves the fast path outermost; every other request (and the
    lifespan) goes to the FastAPI application unchanged.
    """
    app = create_app()
    return GeocodeFastPath(app, owner=app)
