"""FastAPI application factory."""

from __future__ import annotations

import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import Depends, FastAPI
from fastapi.middleware.cors import CORSMiddleware
from fastapi.routing import APIRoute
from pydantic import BaseModel

from api import errors, web
from api.bootstrap import open_database
from api.errors import ERROR_RESPONSES, OPEN311_PREFIX, PROBLEM_JSON, Problem
from api.fastpath import GeocodeFastPath
from api.fastpath_intake import IntakeFastPath
from api.hardening import Hardening
from api.jsontext import StrictJSONResponse
from api.permissions import PUBLIC, check_routes
from api.routers import (
    access,
    alignment,
    edits,
    evaluation,
    health,
    incidents,
    locate,
    open311,
    patrol,
    places,
    staff,
    tiles,
    units,
    webmap,
)
from api.schemas.locate import GeocodeRequest
from api.security import Authenticator, RateLimiter, Security, guard
from gis import __version__
from gis.access import JurisdictionResolver
from gis.access.credentials import PasswordChecks, TokenSigner
from gis.errors import InputError
from gis.locate import LocateService
from gis.locate.workers import BatchPool
from gis.places import UnitPlaces
from gis.repository import Database
from gis.revisions import RevisionClock
from gis.settings import Settings, basemap_origins, get_settings
from gis.tiles import TileService

DESCRIPTION = """
**同格 tongge** — grid layers for grid-based grassroots governance (网格化管理).

Hierarchical, versioned boundary layers (综治网格 governance grids, 警务网格 police
beats, 城管 urban grids) stored in CGCS2000 (EPSG:4490). Coordinates in responses
are CGCS2000 longitude/latitude. Errors are `application/problem+json`.

**Access.** Sign in at `POST /api/v1/auth/token` (OAuth2 password flow) and send
`Authorization: Bearer <token>`, or send a system's key as `X-API-Key`. Every
endpoint except `/health`, `/health/ready` and sign-in needs one (401 otherwise). Roles (admin,
planner, dispatcher, grid_worker, police, cadre, viewer) decide which endpoints you may
call (403); your jurisdiction - the units you are bound to and everything
below them - decides what you see: anything outside it answers 404, exactly
like something that does not exist. Reads and exports of personal data and
every change are written to the audit log.
"""


_GUARD_RESPONSES = {
    "401": {"description": "Not signed in, or the token/key is not valid"},
    "403": {"description": "Your role may not use this endpoint"},
    "429": {"description": "Rate limit exceeded (see Retry-After)"},
    "500": {"description": "Unexpected server error (never with internals)"},
}


def create_app(settings: Settings | None = None, *, db: Database | None = None) -> FastAPI:
    """Build the application; the database is opened when it starts, not at import."""
    settings = settings or get_settings()
    signer = token_signer(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # `tongge serve`'s first start creates the database (owner only) with the sample city.
        app.state.db = db or open_database(settings, create=True)
        # One clock for every cache: the database is asked at most once per interval.
        clock = RevisionClock(app.state.db, refresh_seconds=settings.index_refresh_seconds)
        app.state.locator = LocateService(app.state.db, clock=clock, background=True)
        # One index per level: assignment and workload use the locate service's.
        app.state.places = UnitPlaces(app.state.db, clock=clock, indexes=app.state.locator.cache)
        app.state.tiles = TileService(
            app.state.locator.cache,
            households=app.state.places.households_per_unit,
            places=app.state.places.basemap,
            clock=clock,
        )
        app.state.batch_lock = threading.Lock()
        app.state.batch_running = 0
        app.state.batch_pool = (
            BatchPool(
                database_url=app.state.db.url,
                workers=settings.batch_concurrency,
                spatialite_library=settings.spatialite_library,
                refresh_seconds=settings.index_refresh_seconds,
            )
            if settings.batch_processes
            else None
        )

        # Build today's locate indexes and tiles now, in the background, not in
        # the first request.
        def warm() -> None:
            app.state.locator.warm()
            app.state.tiles.warm()

        threading.Thread(target=warm, name="tongge-warm", daemon=True).start()
        app.state.readiness = health.Readiness()
        app.state.security = Security(
            authenticator=Authenticator(app.state.db, signer),
            limiter=RateLimiter(),
            jurisdictions=JurisdictionResolver(
                app.state.db, clock=clock, indexes=app.state.locator.cache
            ),
            settings=settings,
            password_checks=PasswordChecks(settings.password_checks_concurrent),
        )
        try:
            yield
        finally:
            if app.state.batch_pool is not None:
                app.state.batch_pool.close()
            if db is None:
                app.state.db.dispose()

    app = TonggeAPI(
        title="tongge 同格 API",
        version=__version__,
        description=DESCRIPTION,
        lifespan=lifespan,
        dependencies=[Depends(guard)],
        docs_url=None,  # served offline by api.web
        redoc_url=None,
        default_response_class=StrictJSONResponse,
        openapi_tags=[
            {"name": "health", "description": "Liveness and readiness."},
            {"name": "auth", "description": "Sign in 登录, who am I, change password."},
            {"name": "layers", "description": "Layers 图层 and their levels 层级."},
            {
                "name": "units",
                "description": "Grid units 网格单元: boundaries, ancestors, children.",
            },
            {"name": "geocode", "description": "Locate incidents in every layer 事件定位."},
            {"name": "alignment", "description": "Same-grid check between layers 同格校核."},
            {"name": "workload", "description": "Workload per unit 负载均衡 (counts only)."},
            {
                "name": "places",
                "description": "Buildings 房屋 and households 住户 of a unit (audited).",
            },
            {"name": "staff", "description": "Staff responsible for units 网格人员."},
            {"name": "tiles", "description": "Vector tiles for the web map 矢量瓦片."},
            {
                "name": "incidents",
                "description": "Incidents 事件: intake (idempotent), dispatch to 三员, "
                "lifecycle, deadlines 限期, boundary-change reports.",
            },
            {"name": "admin", "description": "Users, API keys, audit log 管理 (admin only)."},
            {
                "name": "open311",
                "description": "Open311 GeoReport v2 事件上报接口: services, requests, tokens "
                "(api_key as a parameter or header; errors as the standard's list).",
            },
        ],
    )
    app.state.settings = settings
    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_methods=["GET", "POST", "PATCH", "DELETE"],
            allow_headers=["Authorization", "X-API-Key", "Content-Type", "Idempotency-Key"],
        )
    app.add_middleware(
        Hardening,
        max_body_bytes=settings.max_body_bytes,
        max_upload_bytes=settings.max_upload_bytes,
        tile_origins=basemap_origins(settings),
    )
    errors.install(app)
    # One router per feature: gis/<feature>/, api/routers/<feature>.py, api/cli/_<feature>.py.
    routers = (
        health.router,
        access.router,
        units.router,
        places.router,
        staff.router,
        locate.router,
        alignment.router,
        tiles.router,
        webmap.router,
        edits.router,
        patrol.router,
        evaluation.router,  # before the incidents router: /evaluation is no incident id
        incidents.router,
        open311.router,
    )
    for router in routers:
        app.include_router(router)
    # Routers carry their full prefix, so that a route's path is its full template.
    check_routes(
        (method, route.path)
        for router in routers
        for route in router.routes
        if isinstance(route, APIRoute)
        for method in route.methods or ()
    )
    _complete_openapi(app, GeocodeRequest)
    web.install(app)
    return app


def token_signer(settings: Settings) -> TokenSigner:
    """Return the signer of access tokens; InputError when the key is missing or weak.

    Secrets come from the environment only; there is no default key. The key
    is checked here, at start-up (see :func:`~gis.access.credentials.check_signing_key`),
    so that a weak or undecodable one stops the service instead of every sign-in.
    """
    if settings.secret_key is None:
        raise InputError(
            "TONGGE_SECRET_KEY is not set: export a random key of 32+ characters, e.g. "
            "`export TONGGE_SECRET_KEY=$(python3 -c 'import secrets; "
            "print(secrets.token_urlsafe(48))')` (scripts/dev.sh serve does this for you)",
            field="secret_key",
        )
    return TokenSigner(
        settings.secret_key.get_secret_value(), ttl_seconds=settings.token_ttl_seconds
    )


def _complete_openapi(app: FastAPI, *models: type[BaseModel]) -> None:
    """Document the security schemes and the bodies parsed by hand (hot paths)."""
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = generate()
            components = schema.setdefault("components", {})
            documented: tuple[type[BaseModel], ...] = (*models, Problem)
            schemas = components.setdefault("schemas", {})
            for model in documented:
                body = model.model_json_schema(ref_template="#/components/schemas/{model}")
                schemas.update(body.pop("$defs", {}))
                schemas[model.__name__] = body
            components["securitySchemes"] = {
                "OAuth2": {
                    "type": "oauth2",
                    "flows": {"password": {"tokenUrl": "/api/v1/auth/token", "scopes": {}}},
                },
                "ApiKey": {"type": "apiKey", "in": "header", "name": "X-API-Key"},
            }
            schema["security"] = [{"OAuth2": []}, {"ApiKey": []}]
            problem = {PROBLEM_JSON: {"schema": {"$ref": "#/components/schemas/Problem"}}}
            schemas["Open311Errors"] = {
                "type": "array",
                "description": "Open311 GeoReport v2 errors (the HTTP status is the first code).",
                "items": {
                    "type": "object",
                    "properties": {
                        "code": {"type": "integer", "examples": [400]},
                        "description": {"type": "string"},
                    },
                    "required": ["code", "description"],
                },
            }
            open311_errors = {
                "application/json": {"schema": {"$ref": "#/components/schemas/Open311Errors"}}
            }
            for path, operations in schema["paths"].items():
                for method, operation in operations.items():
                    responses = operation.setdefault("responses", {})
                    if (method.upper(), path) in PUBLIC:
                        operation["security"] = []
                    else:
                        # Copies: each operation's error bodies are set below.
                        responses.update({k: dict(v) for k, v in _GUARD_RESPONSES.items()})
                    for status, description in ERROR_RESPONSES.items():
                        responses.setdefault(status, {"description": description})
                    # Every error answer is application/problem+json, whatever
                    # FastAPI's defaults say (Open311: the standard's error list).
                    errors = open311_errors if path.startswith(OPEN311_PREFIX) else problem
                    for status, response in responses.items():
                        if status[0] in "45":
                            response["content"] = errors
            for unused in ("HTTPValidationError", "ValidationError"):
                components.get("schemas", {}).pop(unused, None)
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def create_server_app() -> FastAPI:
    """Build the application as served (``uvicorn api.app:create_server_app --factory``).

    The same application as :func:`create_app` with the settings of the
    environment; the geocode hot path is part of :class:`TonggeAPI` itself.
    """
    return create_app()


class TonggeAPI(FastAPI):
    """The FastAPI application with its two hot routes answered in front of its stack.

    Starlette's middleware stack costs about as much as the lookup itself:
    ``POST /api/v1/geocode`` goes to :class:`api.fastpath.GeocodeFastPath` and
    ``POST /api/v1/incidents`` to :class:`api.fastpath_intake.IntakeFastPath`
    (which do the stack's work themselves), everything else (and the
    lifespan) to FastAPI.
    """

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self.fast_path = GeocodeFastPath(self)
        self.intake_path = IntakeFastPath(self)

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        """Answer the hot routes directly; pass everything else to FastAPI."""
        if GeocodeFastPath.handles(scope):
            await self.fast_path(scope, receive, send)
            return
        if IntakeFastPath.handles(scope):
            await self.intake_path(scope, receive, send)
            return
        await super().__call__(scope, receive, send)
