"""Workload per unit (counts only: no personal data leaves the service here)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel, Field

from api.deps import event_time, get_places
from api.schemas import plain
from api.security import current_scope
from gis.access import Scope
from gis.unit_places import UnitPlaces

router = APIRouter(prefix="/api/v1", tags=["workload"])


class UnitLoad(BaseModel):
    """Counts of one unit compared with its level's target."""

    code: str
    level: str
    parent_code: str | None = None
    buildings: int
    households: int
    persons: int
    places: int | None = None
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
)
def workload(
    places: UnitPlaces = Depends(get_places),
    scope: Scope = Depends(current_scope),
    layer: Annotated[str, Query(max_length=64, description="Layer.")] = "governance",
    level: Annotated[str | None, Query(description="Only units of this level.")] = None,
    at: datetime | None = Depends(event_time),
) -> dict[str, Any]:
    """Count buildings, households, persons and places per unit, rolled up every level.

    Grids are compared with the household target (default 300–500); `over`
    and `under` flag the units outside it. Only units of your jurisdiction are
    listed and summed.
    """
    result = places.workload(layer=layer, at=at)
    visible = scope.codes(layer)
    if visible is not None:
        result = result.restricted_to(visible)
    units = result.units
    if level is not None:
        units = units[units["level"] == level]
    return {
        "layer": layer,
        "units": [plain(r) for r in units.to_dict("records")],
        "levels": [plain(r) for r in result.by_level.to_dict("records")],
    }
