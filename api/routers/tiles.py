"""Vector tiles of the units of every layer and level, for the web map."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from api.security import current_jurisdiction
from gis.access import Jurisdiction
from gis.tiles import MAX_ZOOM, TileService

router = APIRouter(prefix="/api/v1/tiles", tags=["tiles"])

MVT = "application/vnd.mapbox-vector-tile"


def get_tiles(request: Request) -> TileService:
    """Return the application's tile service."""
    tiles: TileService = request.app.state.tiles
    return tiles


@router.get(
    "/places/{z}/{x}/{y}.mvt",
    summary="Basemap tile of the city's own places 底图瓦片",
    response_class=Response,
    responses={
        200: {"content": {MVT: {}}, "description": "Mapbox Vector Tile 2.1 (empty below zoom 14)"},
        304: {"description": "Not modified (If-None-Match)"},
    },
)
async def places_tile(
    request: Request,
    z: Annotated[int, Path(ge=0, le=MAX_ZOOM)],
    x: Annotated[int, Path(ge=0)],
    y: Annotated[int, Path(ge=0)],
    datum: Annotated[
        Literal["cgcs2000", "gcj02", "bd09"],
        Query(description="Draw the places in this datum, to sit on such a basemap."),
    ] = "cgcs2000",
    jurisdiction: Jurisdiction = Depends(current_jurisdiction),
    tiles: TileService = Depends(get_tiles),
) -> Response:
    """Return building footprints and points of interest of tile ``z/x/y`` (EPSG:3857 XYZ).

    The offline basemap: source layers ``buildings`` (``key``, ``use``,
    ``floors``; from zoom 14), ``streets`` (``name``, ``class``; from zoom
    14) and ``pois`` (``name``, ``category``; from zoom 15), only inside your
    jurisdiction; empty below zoom 14.
    """
    # Places only where the caller sees the units wholly (their own area).
    visible = None if jurisdiction.unrestricted else dict(jurisdiction.wholly)
    data, etag = await run_in_threadpool(
        tiles.places_tile,
        z=z,
        x=x,
        y=y,
        visible=visible,
        area=None if visible is None else jurisdiction.area,
        datum=datum,
    )
    return _answer(request, data, etag)


@router.get(
    "/{layer}/{level}/{z}/{x}/{y}.mvt",
    summary="Vector tile of a level 矢量瓦片",
    response_class=Response,
    responses={
        200: {"content": {MVT: {}}, "description": "Mapbox Vector Tile 2.1"},
        304: {"description": "Not modified (If-None-Match)"},
    },
)
async def level_tile(
    request: Request,
    layer: Annotated[str, Path(max_length=64, examples=["governance"])],
    level: Annotated[str, Path(max_length=64, examples=["grid"])],
    z: Annotated[int, Path(ge=0, le=MAX_ZOOM)],
    x: Annotated[int, Path(ge=0)],
    y: Annotated[int, Path(ge=0)],
    datum: Annotated[
        Literal["cgcs2000", "gcj02", "bd09"],
        Query(description="Draw the units in this datum, to sit on such a basemap."),
    ] = "cgcs2000",
    jurisdiction: Jurisdiction = Depends(current_jurisdiction),
    tiles: TileService = Depends(get_tiles),
) -> Response:
    """Return the units of ``layer``/``level`` that meet tile ``z/x/y`` (EPSG:3857 XYZ).

    One source layer named after the level; each feature carries ``code``,
    ``name``, ``parent_code`` and ``households``. Source layer ``labels``:
    one point per unit (``code``, ``name``; inside it, far from its edges),
    in the one tile that holds it, so a map names each unit once. Shapes are simplified per
    zoom with shared edges kept shared; only the units of your jurisdiction
    are in the tile (other layers' units cut to your area). Tiles follow
    boundary changes at once.
    """
    data, etag = await run_in_threadpool(
        tiles.tile,
        layer=layer,
        level=level,
        z=z,
        x=x,
        y=y,
        visible=jurisdiction.codes(layer),
        partial=jurisdiction.overlapping.get(layer, frozenset()),
        area=jurisdiction.area,
        datum=datum,
    )
    return _answer(request, data, etag)


def _answer(request: Request, data: bytes, etag: str) -> Response:
    headers = {"ETag": etag, "Cache-Control": "private, no-cache"}
    if request.headers.get("if-none-match") == etag:
        return Response(status_code=304, headers=headers)
    return Response(content=data, media_type=MVT, headers=headers)
