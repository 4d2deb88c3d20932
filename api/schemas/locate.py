"""Request and response schemas of the geocode (locate) endpoints."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator


class GeocodeRequest(BaseModel):
    """A place to locate: ``x`` and ``y``, or a Chinese standard ``address``.

    Strict: numbers must be JSON numbers and text JSON strings (``"118.58"``
    or ``true`` for ``x`` are refused, not coerced); unknown fields refused.
    """

    model_config = ConfigDict(extra="forbid", strict=True)

    x: float | None = Field(
        default=None, allow_inf_nan=False, description="Longitude (or easting).", examples=[118.58]
    )
    y: float | None = Field(
        default=None, allow_inf_nan=False, description="Latitude (or northing).", examples=[24.91]
    )
    address: str | None = Field(
        default=None,
        min_length=1,
        max_length=200,
        description="A standard address (标准地址), instead of x/y.",
        examples=["福建省泉州市鲤城区开元街道中山南路123号"],
    )
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

    @model_validator(mode="after")
    def _coordinates_or_address(self) -> GeocodeRequest:
        if self.address is None and (self.x is None or self.y is None):
            raise ValueError("give both x and y, or an address")
        if self.address is not None and (self.x is not None or self.y is not None):
            raise ValueError("give x and y, or an address, not both")
        return self


class CircleShare(BaseModel):
    """A unit overlapped by the accuracy circle (:class:`gis.locate.answers.Candidate`)."""

    model_config = ConfigDict(extra="forbid")

    code: str
    name: str | None
    share: float = Field(description="Share of the circle's area, 0..1.")


class GeocodeNearest(BaseModel):
    """The nearest unit of a point covered by none."""

    model_config = ConfigDict(extra="forbid")

    code: str
    name: str | None
    distance_m: float


_STATUS = Literal["ok", "outside", "ambiguous", "restricted"]


class GeocodeLevel(BaseModel):
    """The unit at one level (code null when none covers it, or ``restricted``: not yours)."""

    model_config = ConfigDict(extra="forbid")

    level: str
    code: str | None
    name: str | None
    status: _STATUS
    boundary_distance_m: float | None = Field(description="Distance to the unit's boundary.")
    nearest: GeocodeNearest | None = None
    candidates: list[CircleShare] | None = None


class GeocodeLayer(BaseModel):
    """The answer in one layer, top level first."""

    model_config = ConfigDict(extra="forbid")

    status: _STATUS
    units: list[GeocodeLevel]
    boundary_distance_m: float | None
    nearest: GeocodeNearest | None


class GeocodeInput(BaseModel):
    """The request as received (raw coordinates kept)."""

    model_config = ConfigDict(extra="forbid")

    x: float | None = None
    y: float | None = None
    address: str | None = None
    crs: str | None = None
    accuracy_m: float | None = None
    at: str | None = None


class AddressCandidate(BaseModel):
    """A standard address ranked for the query (:class:`gis.address.Match`)."""

    model_config = ConfigDict(extra="forbid")

    key: str
    score: float = Field(description="0-1; above 0.8 only when road and door number match.")
    address: str = Field(description="The standard address.")
    components: dict[str, str] = Field(description="Its parsed components.")
    matched: list[str]
    mismatched: list[str]
    missing: list[str]
    below: list[str]
    certain: bool


class GeocodeAddress(BaseModel):
    """How an address was understood and matched (standard address → building)."""

    model_config = ConfigDict(extra="forbid")

    input: str
    parsed: dict[str, str] = Field(description="Components: province … road, number, room.")
    candidates: list[AddressCandidate] = Field(description="Ranked standard addresses, scores.")
    building_key: str | None = None
    matched: str | None = Field(default=None, description="The standard address used.")
    score: float | None = None
    certain: bool | None = Field(default=None, description="Score ≥ 0.9, clear of the next.")


class GeocodePerson(BaseModel):
    """A person responsible for the place (one per role, most local unit first)."""

    model_config = ConfigDict(extra="forbid")

    id: int
    layer: str
    unit_code: str
    role: str
    role_title: str
    name: str
    phone: str | None = Field(description="Work phone.")


class GeocodeRoute(BaseModel):
    """A stored patrol route covering the place (for callers with ``patrol``)."""

    model_config = ConfigDict(extra="forbid")

    id: int
    name: str | None
    layer: str
    level: str
    unit_code: str
    part: int
    staff_id: int | None
    staff_name: str | None
    shift: str | None
    stale: bool = Field(description="The unit's boundary moved since: re-plan.")
    stale_reason: str | None
    length_m: float | None
    in_unit: bool = Field(description="The route's unit contains the place.")
    distance_m: float = Field(description="From the place to the route's line (m).")


class GeocodeAnswer(BaseModel):
    """Where a point is, in every layer at once (:class:`gis.locate.answers.LocateAnswer`).

    ``outside_jurisdiction``: the place lies outside your area (in another
    unit or in none — the answer is the same): no layers, no people.
    """

    model_config = ConfigDict(extra="forbid")

    input: GeocodeInput
    lon: float | None = Field(default=None, description="CGCS2000 longitude.")
    lat: float | None = Field(default=None, description="CGCS2000 latitude.")
    crs: Literal["EPSG:4490"] = "EPSG:4490"
    at: str | None = Field(default=None, description="The time whose boundaries were used (UTC).")
    status: Literal[
        "ok", "outside", "ambiguous", "unmatched", "outside_jurisdiction", "before_first_version"
    ] = Field(
        description="before_first_version: `at` is earlier than any stored boundary version "
        "(no unit existed then; `first_version` says when the first starts)."
    )
    first_version: str | None = Field(
        default=None, description="With before_first_version: when the first version starts."
    )
    message: str | None = Field(default=None, description="Why the status is what it is.")
    address: GeocodeAddress | None = Field(default=None, description="For address requests.")
    layers: dict[str, GeocodeLayer]
    responsible: list[GeocodePerson] = Field(
        default_factory=list, description="People responsible (grid worker, police...)."
    )
    routes: list[GeocodeRoute] | None = Field(
        default=None,
        description="Only for callers with the `patrol` permission: the stored patrol routes "
        "of the units the place lies in and those passing within 30 m of it (units seen "
        "entirely); empty when not located or outside your area.",
    )
