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
