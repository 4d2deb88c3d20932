"""Unit endpoints: pages of a layer's units, and one unit with its relatives."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request

from api.deps import get_db
from api.schemas import UnitCollection, UnitDetail, unit_feature, unit_ref
from gis import registry
from gis.errors import InputError
from gis.repository import Database

router = APIRouter(tags=["units"])

_AT = Query(
    description="Boundaries valid at this date (China time) or ISO time; default now.",
    examples=["2026-06-01"],
)


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
    level: Annotated[str | None, Query(description="Only this level, e.g. grid.")] = None,
    parent: Annotated[str | None, Query(description="Only children of this unit code.")] = None,
    bbox: Annotated[
        str | None,
        Query(
            description="minLon,minLat,maxLon,maxLat in CGCS2000",
            examples=["118.55,24.88,118.62,24.93"],
        ),
    ] = None,
    at: Annotated[str | None, _AT] = None,
    limit: Annotated[int, Query(ge=1, le=1000, description="Page size.")] = 100,
    offset: Annotated[int, Query(ge=0, description="Units to skip.")] = 0,
) -> dict[str, object]:
    """Return one page of units as a GeoJSON FeatureCollection, ordered by level and code."""
    box = _bbox(bbox) if bbox else None
    frame, total = registry.units_page(
        db, layer=layer, level=level, parent=parent, bbox=box, at=at, limit=limit, offset=offset
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
    responses={404: {"description": "No unit with this code"}},
)
def get_unit(
    code: str,
    db: Database = Depends(get_db),
    layer: Annotated[str | None, Query(description="Layer, when a code exists in several.")] = None,
    at: Annotated[str | None, _AT] = None,
) -> dict[str, object]:
    """Return a unit as a GeoJSON Feature plus its ancestors (top first) and children."""
    detail = registry.unit_detail(db, code=code, layer=layer, at=at)
    feature = unit_feature(detail["unit"])
    feature["ancestors"] = [unit_ref(row) for row in detail["ancestors"]]
    feature["children"] = [unit_ref(row) for _, row in detail["children"].iterrows()]
    return feature


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
