"""Request and response schemas of the geocode (locate) endpoints."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class GeocodeRequest(BaseModel):
    """A point to locate; only ``x`` and ``y`` are required."""

    model_config = ConfigDict(extra="forbid")

    x: float = Field(allow_inf_nan=False, description="Longitude (or easting).", examples=[118.58])
    y: float = Field(allow_inf_nan=False, description="Latitude (or northing).", examples=[24.91])
    crs: str = Field(
        default="cgcs2000",
        description="wgs84, cgcs2000, gcj02 (Amap/Tencent), bd09 (Baidu) or an EPSG code.",
        examples=["gcj02"],
    )
    accuracy_m: float | None = Field(
        default=None,
        ge=0,
        le=10_000,
        allow_inf_nan=False,
        description="GPS accuracy radius in metres: answers with shares of the circle.",
    )
    at: str | None = Field(
        default=None,
        description="Event time (ISO 8601; a date means 00:00 China time). Default now.",
        examples=["2026-01-01T08:00:00+08:00"],
    )


class Candidate(BaseModel):
    """A unit overlapped by the accuracy circle."""

    code: str
    name: str | None
    share: float = Field(description="Share of the circle's area, 0..1.")


class Nearest(BaseModel):
    """The nearest unit of a point covered by none."""

    code: str
    name: str | None
    distance_m: float


class LevelUnit(BaseModel):
    """The unit at one level (code null when none covers the point)."""

    level: str
    code: str | None
    name: str | None
    status: Literal["ok", "outside", "ambiguous"]
    boundary_distance_m: float | None = Field(description="Distance to the unit's boundary.")
    nearest: Nearest | None = None
    candidates: list[Candidate] | None = None


class LayerAnswer(BaseModel):
    """The answer in one layer, top level first."""

    status: Literal["ok", "outside", "ambiguous"]
    units: list[LevelUnit]
    boundary_distance_m: float | None
    nearest: Nearest | None


class GeocodeInput(BaseModel):
    """The request as received (raw coordinates kept)."""

    x: float
    y: float
    crs: str
    accuracy_m: float | None
    at: str | None


class GeocodeAnswer(BaseModel):
    """Where a point is, in every layer at once."""

    input: GeocodeInput
    lon: float = Field(description="CGCS2000 longitude.")
    lat: float = Field(description="CGCS2000 latitude.")
    crs: Literal["EPSG:4490"] = "EPSG:4490"
    at: str = Field(description="The time whose boundaries were used (UTC).")
    status: Literal["ok", "outside", "ambiguous"]
    layers: dict[str, LayerAnswer]
    responsible: list[dict[str, str]] = Field(
        default_factory=list, description="People responsible (grid worker, police...)."
    )
