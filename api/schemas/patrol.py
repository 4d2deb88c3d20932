"""Schemas of the patrol endpoints (the plan answer is the contract of issue 16 item 8)."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field


class RouteSummary(BaseModel):
    """One closed route from the start."""

    length_m: float = Field(description="Total length (m).")
    deadhead_m: float = Field(description="Length not covering a street for the first time (m).")
    street_m: float = Field(description="Streets of the unit covered first on this route (m).")
    segments: int = Field(description="Street segments of the unit this route covers.")
    checkpoints: list[str] = Field(description="Checkpoints the route passes.")
    time_s: float = Field(description="Time at walking (4.3 km/h) or driving (30 km/h) speed.")


class PlanResponse(BaseModel):
    """Routes covering every street of the unit, with the figures to judge them."""

    routes: list[RouteSummary]
    street_length_m: float = Field(description="Length of the unit's streets (m).")
    covered_share: float = Field(description="Share of the unit's streets the routes cover.")
    lower_bound_m: float = Field(description="No covering closed walk is shorter (m).")
    length_m: float
    deadhead_m: float
    ratio_to_streets: float
    exact: bool = Field(description="The plan is proven optimal.")
    method: str = Field(description="undirected, directed or mixed (+rural, +near-matching).")
    mode: str
    segments: int = Field(description="Street segments of the unit.")
    network: dict[str, Any] = Field(
        description="segments, zero_length_dropped, unconnected_m (streets left out: "
        "no street joins them to the rest)."
    )


class CheckResponse(BaseModel):
    """How a route file fits a unit."""

    length_m: float
    outside_m: float
    outside_share: float
    street_length_m: float
    covered_m: float
    covered_share: float
    uncovered: list[dict[str, Any]] = Field(
        description="Streets not covered: segment, name, length_m, lon, lat (WGS84)."
    )


class ScoreResponse(BaseModel):
    """How much of the unit's plan a recorded track walked."""

    planned_street_m: float
    walked_street_m: float
    walked_share: float
    track_m: float
    time_inside_s: float | None
    checkpoints_reached: list[str]
    checkpoints_missed: list[str]
    points: int
    dropped_points: int


class ScheduleRequest(BaseModel):
    """A unit's week of visits (周走访)."""

    unit: str = Field(min_length=1, max_length=64, description="Unit code (grid, micro-grid).")
    layer: str | None = Field(default=None, max_length=64)
    days: int = Field(default=5, ge=1, le=7, description="Working days.")
    visited: list[Annotated[str, Field(max_length=64)]] | None = Field(
        default=None,
        max_length=100_000,
        description="Place ids visited last week: the others are carried over, visited first.",
    )
    start: str | None = Field(default=None, description="LON,LAT (WGS84): the office.")
    start_date: date | None = Field(default=None, description="The first working day.")
    visit_minutes: float = Field(default=5.0, ge=0, le=240)
    balance: Literal["time", "walk"] = "time"
    tolerance: float = Field(default=0.15, gt=0, lt=1)
    mode: Literal["walk", "drive"] = "walk"


class ScheduleDayModel(BaseModel):
    """One working day of visits."""

    day: int
    date: str | None
    visits: int
    carried: int = Field(description="Visits carried over from last week.")
    length_m: float = Field(description="Walking length (m).")
    walk_s: float
    visit_s: float = Field(description="Time at the doors (s).")
    time_s: float
    places: list[str] = Field(description="Place ids in walking order.")


class ScheduleResponse(BaseModel):
    """The week: per day visits, length and time; how evenly it is spread."""

    days: list[ScheduleDayModel]
    visits: int
    carried: int
    length_m: float
    time_s: float
    balance: str
    tolerance: float
    spread: float = Field(description="Largest relative deviation of a day from the mean day.")
    balanced: bool
    mode: str


class RouteSaveRequest(BaseModel):
    """Plan a unit on the stored streets and store its routes for a member of staff and a shift."""

    unit: str = Field(min_length=1, max_length=64)
    layer: str | None = Field(default=None, max_length=64)
    staff_id: int | None = Field(
        default=None, ge=1, le=2**31 - 1, description="Who walks them (`/staff`)."
    )
    shift: str | None = Field(default=None, max_length=64, description="e.g. 早班 08:00-12:00")
    name: str | None = Field(default=None, max_length=200)
    mode: Literal["walk", "drive"] = "walk"
    start: str | None = Field(default=None, description="LON,LAT (WGS84) start and end.")
    checkpoints: list[Annotated[str, Field(max_length=300)]] = Field(
        default_factory=list, max_length=200, description="NAME@LON,LAT (WGS84)."
    )
    max_length_m: float | None = Field(default=None, gt=0, description="Longest route (m).")


class StoredRoute(BaseModel):
    """A stored route of a unit (its line only in the single-route answer)."""

    id: int
    layer: str
    level: str
    unit_code: str
    unit_version: str = Field(description="The unit's boundary version it was planned on.")
    revision: int = Field(description="The registry's boundary revision then.")
    part: int = Field(description="Which route of the plan (a plan split into shifts).")
    staff_id: int | None
    shift: str | None
    name: str | None
    params: dict[str, Any]
    length_m: float
    street_m: float
    deadhead_m: float
    segments: int
    time_s: float
    checkpoints: list[str]
    stale: bool = Field(description="The unit's boundary moved since: re-plan.")
    stale_reason: str | None
    created_by: str
    created_at: str
    geometry: dict[str, Any] | None = Field(
        default=None, description="GeoJSON LineString (CGCS2000 lon/lat)."
    )


class RouteList(BaseModel):
    """Stored routes, newest first."""

    routes: list[StoredRoute]
