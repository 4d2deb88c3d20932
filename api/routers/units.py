"""Units feature: layers, pages of units, one unit with its relatives, export, change history."""

from __future__ import annotations

import tempfile
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi import Path as PathParameter
from fastapi.responses import FileResponse
from pydantic import BaseModel, Field
from starlette.background import BackgroundTask

from api.deps import event_time, get_db, page_size, remove_folder
from api.schemas.common import (
    Layer,
    UnitCollection,
    UnitDetail,
    layer_schema,
    plain,
    unit_feature,
    unit_ref,
)
from api.security import current_jurisdiction, current_principal
from gis import units as unit_registry
from gis.access import Jurisdiction, Principal, record
from gis.errors import InputError, NotFoundError
from gis.io import EXPORT_FORMATS, write_units
from gis.repository import Database
from gis.times import LOCAL_ZONE, utc_now

router = APIRouter(prefix="/api/v1", tags=["units"])

#: Media type and file name suffix of every export format (those of `tongge export`).
_EXPORT_FILES = {
    "geojson": ("application/geo+json", "geojson"),
    "gpkg": ("application/geopackage+sqlite3", "gpkg"),
    "kml": ("application/vnd.google-earth.kml+xml", "kml"),
    "shp": ("application/zip", "zip"),  # .shp .shx .dbf .prj .cpg in one archive
    "parquet": ("application/vnd.apache.parquet", "parquet"),
    "csv": ("text/csv", "csv"),
    "xlsx": ("application/vnd.openxmlformats-officedocument.spreadsheetml.sheet", "xlsx"),
}
assert set(EXPORT_FORMATS) <= set(_EXPORT_FILES), "an export format without a media type"
_EXPORT_MEDIA = {fmt: _EXPORT_FILES[fmt][0] for fmt in EXPORT_FORMATS}


@router.get(
    "/layers/{layer}/units",
    summary="Units of a layer 网格单元 (GeoJSON)",
    response_model=UnitCollection,
    responses={404: {"description": "No such layer or level"}},
)
def list_units(
    request: Request,
    layer: str,
    db: Database = Depends(get_db),
    jurisdiction: Jurisdiction = Depends(current_jurisdiction),
    level: Annotated[str | None, Query(description="Only this level, e.g. grid.")] = None,
    parent: Annotated[str | None, Query(description="Only children of this unit code.")] = None,
    bbox: Annotated[
        str | None,
        Query(
            description="minLon,minLat,maxLon,maxLat in CGCS2000",
            examples=["118.55,24.88,118.62,24.93"],
        ),
    ] = None,
    q: Annotated[
        str | None,
        Query(
            max_length=64,
            description="Only units whose code starts with this or whose name contains it.",
            examples=["开元"],
        ),
    ] = None,
    at: datetime | None = Depends(event_time),
    limit: int = Depends(page_size),
    offset: Annotated[int, Query(ge=0, le=10_000_000, description="Units to skip.")] = 0,
) -> dict[str, object]:
    """Return one page of the units in your jurisdiction as GeoJSON, by level and code."""
    box = _bbox(bbox) if bbox else None
    frame, total = unit_registry.units_page(
        db,
        layer=layer,
        level=level,
        parent=parent,
        bbox=box,
        at=at,
        limit=limit,
        offset=offset,
        jurisdiction=jurisdiction,
        search=q,
    )
    links = []
    if offset + len(frame) < total:
        links.append(
            {"rel": "next", "href": str(request.url.include_query_params(offset=offset + limit))}
        )
    if offset > 0:
        links.append(
            {
                "rel": "prev",
                "href": str(request.url.include_query_params(offset=max(0, offset - limit))),
            }
        )
    return {
        "type": "FeatureCollection",
        "features": [unit_feature(row) for _, row in frame.iterrows()],
        "numberMatched": total,
        "numberReturned": len(frame),
        "links": links,
    }


@router.get(
    "/units/{code}",
    summary="One unit with ancestors and children 单元详情",
    response_model=UnitDetail,
    responses={404: {"description": "No unit with this code (in your jurisdiction)"}},
)
def get_unit(
    code: str,
    db: Database = Depends(get_db),
    jurisdiction: Jurisdiction = Depends(current_jurisdiction),
    layer: Annotated[str | None, Query(description="Layer, when a code exists in several.")] = None,
    at: datetime | None = Depends(event_time),
) -> dict[str, object]:
    """Return a unit as a GeoJSON Feature plus its ancestors (top first) and children.

    Ancestors outside your jurisdiction are left out; a unit of another layer
    overlapping your area shows its boundary within your area only.
    """
    detail = unit_registry.unit_detail(db, code=code, layer=layer, at=at, jurisdiction=jurisdiction)
    feature = unit_feature(detail["unit"])
    feature["ancestors"] = [unit_ref(row) for row in detail["ancestors"]]
    feature["children"] = [unit_ref(row) for _, row in detail["children"].iterrows()]
    return feature


class Overlap(BaseModel):
    """A unit of another layer covering part of the unit."""

    layer: str
    level: str
    code: str
    name: str | None = None
    area_m2: float = Field(description="Shared ground, m² (CGCS2000 Gauss-Kruger).")
    share: float = Field(description="Share of the unit's area (0-1).")


class Overlaps(BaseModel):
    """The units of every other layer covering a unit (同格)."""

    layer: str
    code: str
    area_m2: float
    overlaps: list[Overlap]


@router.get(
    "/units/{code}/overlaps",
    summary="Units of other layers covering a unit 同格单元 (area shares)",
    response_model=Overlaps,
    responses={404: {"description": "No unit with this code (in your jurisdiction)"}},
)
def get_overlaps(
    code: str,
    db: Database = Depends(get_db),
    jurisdiction: Jurisdiction = Depends(current_jurisdiction),
    layer: Annotated[str | None, Query(description="Layer, when a code exists in several.")] = None,
    at: datetime | None = Depends(event_time),
) -> dict[str, Any]:
    """Return, per other layer and level, the units covering part of this one and their share.

    E.g. which police beats cover a grid, and how much of it each. Only units
    you may see; of another layer's unit, the ground inside your area.
    """
    return unit_registry.unit_overlaps(db, code=code, layer=layer, at=at, jurisdiction=jurisdiction)


@router.get(
    "/layers/{layer}/export",
    summary="Export a layer's units 导出边界 (GeoJSON, GPKG, KML, shapefile, GeoParquet, CSV)",
    response_class=FileResponse,
    responses={
        200: {"content": {m: {} for m in _EXPORT_MEDIA.values()}, "description": "The file."},
        404: {"description": "No such layer or level, or no unit in your jurisdiction"},
    },
)
def export_units(
    layer: str,
    db: Database = Depends(get_db),
    jurisdiction: Jurisdiction = Depends(current_jurisdiction),
    principal: Principal = Depends(current_principal),
    format: Annotated[
        str,
        Query(
            # Every format `tongge export` writes (gis.io.EXPORT_FORMATS), nothing else.
            pattern=f"^({'|'.join(EXPORT_FORMATS)})$",
            description=f"One of {', '.join(EXPORT_FORMATS)} (shp: a ZIP; parquet: GeoParquet).",
        ),
    ] = "geojson",
    level: Annotated[str | None, Query(description="Only this level.")] = None,
    crs: Annotated[
        str | None, Query(description="Output CRS: cgcs2000 (default), wgs84, gcj02, bd09.")
    ] = None,
    at: datetime | None = Depends(event_time),
) -> FileResponse:
    """Download the units of your jurisdiction in a layer (audited).

    The file is named after the layer, the level and the day of `at`
    (China time), e.g. `governance_grid_2026-12-06.zip`; times in it carry
    their offset (`2026-01-01T00:00:00+08:00`).
    """
    frame, _ = unit_registry.units_page(
        db, layer=layer, level=level, at=at, limit=1_000_000, jurisdiction=jurisdiction
    )
    if frame.empty:
        raise NotFoundError(f"layer {layer!r} has no units to export here", field="layer")
    workdir = Path(tempfile.mkdtemp(prefix="tongge-export-"))
    target = workdir / export_name(layer, level=level, at=at, fmt=format)
    try:
        write_units(frame, target, fmt=format, crs=crs)
    except Exception:
        remove_folder(workdir)
        raise
    record(
        db,
        actor=principal,
        action="units.export",
        target=f"layer:{layer}",
        detail={"format": format, "level": level, "units": len(frame), "crs": crs},
    )
    return FileResponse(
        target,
        media_type=_EXPORT_MEDIA[format],
        filename=target.name,
        background=BackgroundTask(remove_folder, workdir),
    )


def export_name(layer: str, *, level: str | None, at: datetime | None, fmt: str) -> str:
    """Return the download's file name: layer, level (or ``all``), day in China time.

    Examples
    --------
    >>> from gis.times import parse_time
    >>> export_name("governance", level="grid", at=parse_time("2026-12-06"), fmt="shp")
    'governance_grid_2026-12-06.zip'
    """
    day = (at or utc_now()).astimezone(LOCAL_ZONE).date().isoformat()
    return f"{layer}_{level or 'all'}_{day}.{_EXPORT_FILES[fmt][1]}"


def _bbox(text: str) -> tuple[float, float, float, float]:
    parts = text.split(",")
    try:
        values = [float(p) for p in parts]
    except ValueError:
        values = []
    if len(values) != 4 or any(v != v for v in values):
        raise InputError(
            f"bbox {text!r} must be four numbers minLon,minLat,maxLon,maxLat", field="bbox"
        )
    minx, miny, maxx, maxy = values
    if not (-180 <= minx <= maxx <= 180 and -90 <= miny <= maxy <= 90):
        raise InputError(f"bbox {text!r} is not a lon/lat box with min <= max", field="bbox")
    return minx, miny, maxx, maxy


@router.get("/layers", summary="List layers 图层列表")
def list_layers(
    db: Database = Depends(get_db), jurisdiction: Jurisdiction = Depends(current_jurisdiction)
) -> list[Layer]:
    """Return every layer with its ordered levels and the number of current units you may see."""
    return [
        layer_schema(summary)
        for summary in unit_registry.list_layers(db, jurisdiction=jurisdiction)
    ]


class ImportEntry(BaseModel):
    """One import: a batch of new unit versions of one level."""

    id: int
    level: str
    source: str = Field(description="File name (or what made the change).")
    valid_from: datetime
    created_at: datetime
    counts: dict[str, int] = Field(
        description="created/updated/retired/unchanged (layer-wide), or units (yours only); "
        "part_of: the import of the level above whose new edges this level followed."
    )
    codes: list[str] = Field(description="Units it wrote a version of (in your jurisdiction).")


class Move(BaseModel):
    """A building that changed unit with an import (re-assignment diff)."""

    key: str
    level: str = Field(description="Level of from_unit/to_unit (the lowest, where buildings hang).")
    from_unit: str | None = None
    to_unit: str | None = None
    changed_level: str = Field(description="The level the import changed.")
    from_code: str | None = Field(default=None, description="Unit of changed_level before.")
    to_code: str | None = Field(default=None, description="Unit of changed_level after.")
    households: int
    persons: int


class MovePage(BaseModel):
    """Every building an import moved (within your jurisdiction)."""

    import_id: int
    total: int
    households: int
    moves: list[Move]


@router.get(
    "/layers/{layer}/imports",
    summary="Boundary change history 边界变更记录",
    response_model=list[ImportEntry],
    responses={404: {"description": "No such layer"}},
)
def list_imports(
    layer: str,
    db: Database = Depends(get_db),
    jurisdiction: Jurisdiction = Depends(current_jurisdiction),
    limit: int = Depends(page_size),
    offset: Annotated[int, Query(ge=0, le=10_000_000, description="Imports to skip.")] = 0,
) -> list[dict[str, Any]]:
    """Return the layer's imports, newest first; only those touching your units."""
    return unit_registry.import_history(
        db, layer=layer, jurisdiction=jurisdiction, limit=limit, offset=offset
    )


@router.get(
    "/layers/{layer}/imports/{import_id}/moves",
    summary="Buildings an import moved 变更涉及房屋",
    response_model=MovePage,
    responses={404: {"description": "No such import in your jurisdiction"}},
)
def import_moves(
    layer: str,
    import_id: Annotated[int, PathParameter(ge=1, le=2**31 - 1)],
    db: Database = Depends(get_db),
    jurisdiction: Jurisdiction = Depends(current_jurisdiction),
) -> dict[str, Any]:
    """Return every building the import moved to another unit, with its households.

    Only moves from or to your units; a unit outside your jurisdiction is blank.
    """
    moves = unit_registry.import_moves(
        db, layer=layer, import_id=import_id, jurisdiction=jurisdiction
    )
    return {
        "import_id": import_id,
        "total": len(moves),
        "households": int(moves["households"].sum()) if len(moves) else 0,
        "moves": [plain(row) for row in moves.to_dict("records")],
    }
