"""Places feature: buildings and households of a unit (audited), one building, workload per unit."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

import pandas as pd
from fastapi import APIRouter, Depends, Query
from fastapi.responses import Response
from pydantic import BaseModel, Field

from api.deps import event_time, get_db, get_places, large_page_size
from api.schemas.common import plain
from api.security import current_jurisdiction, current_principal
from gis.access import Jurisdiction, Principal, record
from gis.files import write_csv
from gis.places import UnitPlaces, VisibleUnit
from gis.repository import Database
from gis.units import level_spec

router = APIRouter(prefix="/api/v1", tags=["places"])

_LAYER = Query(description="Layer of the unit code.", max_length=64)
_OFFSET = Query(ge=0, le=10_000_000, description="Rows to skip.")


class Building(BaseModel):
    """A building (实有房屋) with its household and person counts."""

    key: str
    address: str | None = None
    floors: int | None = None
    use: str | None = None
    entrance_lon: float | None = Field(default=None, description="CGCS2000 longitude.")
    entrance_lat: float | None = None
    households: int
    persons: int
    cut: bool | None = Field(default=None, description="A unit boundary cuts the footprint.")


class BuildingPage(BaseModel):
    """A page of buildings."""

    unit: str
    layer: str
    total: int
    buildings: list[Building]


class BuildingDetail(Building):
    """A building and its unit in every layer of your jurisdiction."""

    units: dict[str, str] = Field(description="Layer → code of the lowest unit.")


class Household(BaseModel):
    """A household (实有人口): where it lives and how many people; nothing else is kept."""

    key: str
    building_key: str
    unit_no: str | None = None
    floor: int | None = None
    room: str | None = None
    persons: int


class HouseholdPage(BaseModel):
    """A page of households."""

    unit: str
    layer: str
    total: int
    households: list[Household]


def visible_unit(
    code: str,
    places: UnitPlaces = Depends(get_places),
    jurisdiction: Jurisdiction = Depends(current_jurisdiction),
    layer: Annotated[str, _LAYER] = "governance",
) -> VisibleUnit:
    """Return the unit of the path, or 404 when it is missing or outside the jurisdiction."""
    return places.unit(layer=layer, code=code, jurisdiction=jurisdiction)


@router.get(
    "/units/{code}/buildings",
    summary="Buildings of a unit 单元房屋",
    response_model=BuildingPage,
    responses={404: {"description": "No such unit in your jurisdiction"}},
)
def unit_buildings(
    unit: VisibleUnit = Depends(visible_unit),
    places: UnitPlaces = Depends(get_places),
    jurisdiction: Jurisdiction = Depends(current_jurisdiction),
    limit: int = Depends(large_page_size),
    offset: Annotated[int, _OFFSET] = 0,
) -> dict[str, Any]:
    """Return the buildings assigned to the unit and the units below it, by key.

    Of a unit of another layer overlapping your area, those inside your area.
    """
    table = places.buildings(layer=unit.layer, code=unit.code, jurisdiction=jurisdiction)
    return _page("buildings", table, unit=unit, limit=limit, offset=offset)


@router.get(
    "/units/{code}/households",
    summary="Households of a unit 单元住户 (personal data, audited)",
    response_model=HouseholdPage,
    responses={404: {"description": "No such unit in your jurisdiction"}},
)
def unit_households(
    unit: VisibleUnit = Depends(visible_unit),
    db: Database = Depends(get_db),
    principal: Principal = Depends(current_principal),
    places: UnitPlaces = Depends(get_places),
    jurisdiction: Jurisdiction = Depends(current_jurisdiction),
    limit: int = Depends(large_page_size),
    offset: Annotated[int, _OFFSET] = 0,
) -> dict[str, Any]:
    """Return the households living in the unit's buildings; every read is audited.

    Of a unit of another layer overlapping your area, those inside your area.
    """
    table = places.households(layer=unit.layer, code=unit.code, jurisdiction=jurisdiction)
    body = _page("households", table, unit=unit, limit=limit, offset=offset)
    record(
        db,
        actor=principal,
        action="households.read",
        target=unit.target,
        detail={"rows": len(body["households"]), "offset": offset},
    )
    return body


@router.get(
    "/units/{code}/households/export",
    summary="Export a unit's households 导出住户 (CSV or JSON, audited)",
    response_class=Response,
    responses={
        200: {"content": {"text/csv": {}, "application/json": {}}, "description": "The table."},
        404: {"description": "No such unit in your jurisdiction"},
    },
)
def export_households(
    unit: VisibleUnit = Depends(visible_unit),
    db: Database = Depends(get_db),
    principal: Principal = Depends(current_principal),
    places: UnitPlaces = Depends(get_places),
    jurisdiction: Jurisdiction = Depends(current_jurisdiction),
    format: Annotated[Literal["csv", "json"], Query(description="File format.")] = "csv",
) -> Response:
    """Download every household of the unit (inside your area); the export is audited."""
    table = places.households(layer=unit.layer, code=unit.code, jurisdiction=jurisdiction)
    record(
        db,
        actor=principal,
        action="households.export",
        target=unit.target,
        detail={"rows": len(table), "format": format},
    )
    name = f"households-{unit.layer}-{unit.code}.{format}"
    disposition = {"Content-Disposition": f'attachment; filename="{name}"'}
    if format == "csv":
        return Response(write_csv(table), media_type="text/csv", headers=disposition)
    return Response(
        table.to_json(orient="records", force_ascii=False),
        media_type="application/json",
        headers=disposition,
    )


@router.get(
    "/buildings/{key}",
    summary="One building 房屋详情",
    response_model=BuildingDetail,
    responses={404: {"description": "No such building in your jurisdiction"}},
)
def building(
    key: str,
    jurisdiction: Jurisdiction = Depends(current_jurisdiction),
    places: UnitPlaces = Depends(get_places),
) -> dict[str, Any]:
    """Return a building of your area with its counts and its unit in each layer you may see."""
    return plain(places.visible_building(key=key, jurisdiction=jurisdiction))


def _page(
    name: str, table: pd.DataFrame, *, unit: VisibleUnit, limit: int, offset: int
) -> dict[str, Any]:
    rows = table.iloc[offset : offset + limit].to_dict("records")
    return {
        "unit": unit.code,
        "layer": unit.layer,
        "total": len(table),
        name: [plain(r) for r in rows],
    }


class UnitLoad(BaseModel):
    """Counts of one unit compared with its level's target."""

    code: str
    level: str
    parent_code: str | None = None
    buildings: int
    households: int
    persons: int
    places: int | None = None
    min_households: float | None = Field(default=None, description="The level's target, from.")
    max_households: float | None = Field(default=None, description="The level's target, to.")
    over: bool | None = Field(default=None, description="Above the level's target.")
    under: bool | None = Field(default=None, description="Below the level's target.")


class WorkloadResponse(BaseModel):
    """Workload of a layer's units and per-level summaries."""

    layer: str
    units: list[UnitLoad]
    levels: list[dict[str, Any]]


@router.get(
    "/workload",
    summary="Workload per unit 负载 (buildings, households, persons)",
    response_model=WorkloadResponse,
    responses={404: {"description": "No such layer or level"}},
)
def workload(
    db: Database = Depends(get_db),
    places: UnitPlaces = Depends(get_places),
    jurisdiction: Jurisdiction = Depends(current_jurisdiction),
    layer: Annotated[str, Query(max_length=64, description="Layer.")] = "governance",
    level: Annotated[str | None, Query(description="Only units of this level.")] = None,
    at: datetime | None = Depends(event_time),
) -> dict[str, Any]:
    """Count buildings, households, persons and places per unit, rolled up every level.

    Grids are compared with the household target (default 300–500); `over`
    and `under` flag the units outside it. Only units of your jurisdiction are
    listed and summed.
    """
    if level is not None:
        level_spec(db, layer=layer, level=level)  # 404 naming the level, not an empty list
    result = places.visible_workload(layer=layer, level=level, at=at, jurisdiction=jurisdiction)
    return {
        "layer": layer,
        "units": [plain(r) for r in result.units.to_dict("records")],
        "levels": [plain(r) for r in result.by_level.to_dict("records")],
    }
