"""Schemas of the patrol endpoints (the plan answer is the contract of issue 16 item 8)."""

from __future__ import annotations

from typing import Any

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
