"""Unit endpoints: pages of a layer's units, one unit with its relatives, layer export."""

from __future__ import annotations

import tempfile
from datetime import datetime
from pathlib import Path
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import FileResponse
from starlette.background import BackgroundTask

from api.deps import event_time, get_db, remove_folder
from api.schemas import UnitCollection, UnitDetail, unit_feature, unit_ref
from api.security import current_principal, current_scope
from gis import registry
from gis.access import Principal, Scope, record
from gis.errors import InputError, NotFoundError
from gis.io import write_units
from gis.repository import Database

router = APIRouter(prefix="/api/v1", tags=["units"])

_EXPORT_MEDIA = {
    "geojson": "application/geo+json",
    "gpkg": "application/geopackage+sqlite3",
    "kml": "application/vnd.google-earth.kml+xml",
    "csv": "text/csv",
}


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
    scope: Scope = Depends(current_scope),
    level: Annotated[str | None, Query(description="Only this level, e.g. grid.")] = None,
    parent: Annotated[str | None, Query(description="Only children of this unit code.")] = None,
    bbox: Annotated[
        str | None,
        Query(
            description="minLon,minLat,maxLon,maxLat in CGCS2000",
            examples=["118.55,24.88,118.62,24.93"],
        ),
    ] = None,
    at: datetime | None = Depends(event_time),
    limit: Annotated[int, Query(ge=1, le=1000, description="Page size.")] = 100,
    offset: Annotated[int, Query(ge=0, le=10_000_000, description="Units to skip.")] = 0,
) -> dict[str, object]:
    """Return one page of the units in your jurisdiction as GeoJSON, by level and code."""
    box = _bbox(bbox) if bbox else None
    frame, total = registry.units_page(
        db,
        layer=layer,
        level=level,
        parent=parent,
        bbox=box,
        at=at,
        limit=limit,
        offset=offset,
        codes=scope.codes(layer),
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
    scope: Scope = Depends(current_scope),
    layer: Annotated[str | None, Query(description="Layer, when a code exists in several.")] = None,
    at: datetime | None = Depends(event_time),
) -> dict[str, object]:
    """Return a unit as a GeoJSON Feature plus its ancestors (top first) and children.

    Ancestors outside your jurisdiction are left out.
    """
    missing = NotFoundError(
        f"no unit {code!r}" + (f" in layer {layer!r}" if layer else ""), field="code"
    )
    # Jurisdiction first: a hidden unit must not cost more time than a missing one.
    if not scope.sees_code(code, layer=layer):
        raise missing
    try:
        detail = registry.unit_detail(db, code=code, layer=layer, at=at)
    except NotFoundError:
        if scope.unrestricted:
            raise
        # A clash between layers would tell that the code exists elsewhere.
        raise missing from None
    unit = detail["unit"]
    if not scope.sees(unit["layer"], code):
        raise missing
    feature = unit_feature(unit)
    feature["ancestors"] = [
        unit_ref(row) for row in detail["ancestors"] if scope.sees(unit["layer"], row["code"])
    ]
    feature["children"] = [
        unit_ref(row)
        for _, row in detail["children"].iterrows()
        if scope.sees(unit["layer"], row["code"])
    ]
    return feature


@router.get(
    "/layers/{layer}/export",
    summary="Export a layer's units 导出边界 (GeoJSON, GeoPackage, KML, CSV)",
    response_class=FileResponse,
    responses={
        200: {"content": {m: {} for m in _EXPORT_MEDIA.values()}, "description": "The file."},
        404: {"description": "No such layer or level, or no unit in your jurisdiction"},
    },
)
def export_units(
    layer: str,
    db: Database = Depends(get_db),
    scope: Scope = Depends(current_scope),
    principal: Principal = Depends(current_principal),
    format: Annotated[
        Literal["geojson", "gpkg", "kml", "csv"], Query(description="File format.")
    ] = "geojson",
    level: Annotated[str | None, Query(description="Only this level.")] = None,
    crs: Annotated[
        str | None, Query(description="Output CRS: cgcs2000 (default), wgs84, gcj02, bd09.")
    ] = None,
    at: datetime | None = Depends(event_time),
) -> FileResponse:
    """Download the units of your jurisdiction in a layer (audited)."""
    frame, _ = registry.units_page(
        db, layer=layer, level=level, at=at, limit=1_000_000, codes=scope.codes(layer)
    )
    if frame.empty:
        raise NotFoundError(f"layer {layer!r} has no units to export here", field="layer")
    workdir = Path(tempfile.mkdtemp(prefix="tongge-export-"))
    target = workdir / f"{layer}.{format}"
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
