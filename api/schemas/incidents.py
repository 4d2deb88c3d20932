"""Request and response schemas of incidents (事件): intake, lifecycle, reports."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field

__all__ = [
    "CategoryOut",
    "DuplicateOut",
    "IncidentIn",
    "IncidentOut",
    "IncidentReceipt",
    "LocationIn",
    "RelocateIn",
    "RelocateOut",
    "RelocationEntry",
    "TransitionIn",
    "TransitionOut",
]


class LocationIn(BaseModel):
    """Coordinates as the reporter's device gave them, with their datum (never guessed)."""

    model_config = ConfigDict(extra="forbid")

    x: float = Field(description="Longitude in degrees.", examples=[118.588])
    y: float = Field(description="Latitude in degrees.", examples=[24.907])
    datum: str = Field(
        max_length=16,
        description="wgs84 (GPS), cgcs2000 (official maps), gcj02 (Amap, Tencent) or bd09 "
        "(Baidu): required, since the systems differ by hundreds of metres.",
        examples=["gcj02"],
    )
    accuracy_m: float | None = Field(
        default=None, description="Uncertainty radius in metres (GPS accuracy), 0-10000."
    )


class IncidentIn(BaseModel):
    """One incident to take in: a category, a place (coordinates or an address), a time."""

    model_config = ConfigDict(extra="forbid")

    category: str = Field(
        max_length=16, description="Subclass code of the taxonomy.", examples=["0101"]
    )
    description: str = Field(default="", max_length=4000, description="What was reported.")
    channel: str = Field(
        default="api",
        max_length=32,
        description="Where it came from: 12345, 110, grid, app, open311, api...",
        examples=["12345"],
    )
    location: LocationIn | None = Field(default=None, description="Where (or give address).")
    address: str | None = Field(
        default=None, max_length=200, description="Standard address, when no coordinates."
    )
    event_time: str | None = Field(
        default=None,
        max_length=40,
        description="When it happened: ISO 8601 with offset, or a date (China time); "
        "default now. The units are those valid at this time.",
        examples=["2026-07-01T08:30:00+08:00"],
    )
    external_id: str | None = Field(
        default=None, max_length=100, description="The channel's own ticket number."
    )
    reporter_contact: str | None = Field(
        default=None,
        max_length=100,
        description="Name and/or phone only (no ID numbers); never shown outside the "
        "jurisdiction, never logged.",
    )
    media: list[str] = Field(
        default_factory=list, max_length=10, description="Photo/video URLs or storage keys."
    )


class Person(BaseModel):
    """A responsible person (public reference: no phone)."""

    id: int
    name: str
    layer: str
    unit_code: str


class IncidentOut(BaseModel):
    """A stored incident (times in China time with their offset)."""

    model_config = ConfigDict(extra="allow")

    id: int
    public_id: str = Field(examples=["20261206-3F2A9C01"])
    channel: str
    external_id: str | None = None
    category: str
    description: str
    lon: float | None = Field(default=None, description="CGCS2000 longitude.")
    lat: float | None = Field(default=None, description="CGCS2000 latitude.")
    location: dict[str, Any] | None = Field(default=None, description="The raw input.")
    address: str | None = None
    event_time: str
    received_at: str
    status: str = Field(
        description="received, review, dispatched, accepted, in_progress, resolved, closed, "
        "rejected, merged, escalated"
    )
    deadline_at: str
    units: dict[str, dict[str, str]] = Field(
        description="layer -> level -> unit code, located at the event time (kept when "
        "boundaries change later)."
    )
    revision: int
    responsible: dict[str, list[Person]] = Field(
        description="grid_worker, police, cadre (三员) -> people of the units."
    )
    review_reason: str | None = Field(
        default=None,
        description="Why the place is not certain: ambiguous_location, outside_all_units, "
        "unmatched_address, uncertain_address, before_first_version.",
    )
    merged_into: int | None = None
    escalated_to: str | None = None
    feedback_score: int | None = None
    feedback_text: str | None = None
    closed_at: str | None = None
    updated_at: str | None = None
    media: list[str] = Field(default_factory=list)
    reporter_contact: str | None = Field(
        default=None, description="Only on a single incident read within the jurisdiction."
    )


class IncidentReceipt(BaseModel):
    """What a reporter outside the incident's jurisdiction gets back: the receipt only."""

    id: int
    public_id: str
    category: str
    status: str
    received_at: str
    deadline_at: str


class TransitionIn(BaseModel):
    """A step of the lifecycle (the role and jurisdiction decide who may take it)."""

    model_config = ConfigDict(extra="forbid")

    action: str = Field(
        max_length=16,
        description="dispatch, accept, start, resolve, close, reopen, reject, merge, escalate",
        examples=["accept"],
    )
    note: str | None = Field(default=None, max_length=2000)
    unit: str | None = Field(
        default=None,
        max_length=140,
        description="dispatch from review / escalate: the unit, layer:code.",
    )
    location: LocationIn | None = Field(
        default=None, description="dispatch from review: a corrected location."
    )
    merged_into: int | None = Field(
        default=None, ge=1, le=2**63 - 1, description="merge: the incident kept."
    )
    feedback_score: int | None = Field(
        default=None, ge=1, le=5, description="close: the resident's satisfaction 1-5."
    )
    feedback_text: str | None = Field(default=None, max_length=2000)
    revision: int | None = Field(
        default=None,
        ge=1,
        le=2**31 - 1,
        description="The revision you saw (409 if it changed since).",
    )


class TransitionOut(BaseModel):
    """One audited step of an incident."""

    incident_id: int
    action: str
    from_status: str | None
    to_status: str
    actor: str
    at: str
    note: str | None = None
    detail: dict[str, Any] = Field(default_factory=dict)


class DuplicateOut(BaseModel):
    """A possible duplicate: same category, near, close in time."""

    distance_m: float
    incident: IncidentOut


class UnitChange(BaseModel):
    """A level whose unit differs today from the one dispatched to."""

    layer: str
    level: str
    dispatched: str
    today: str | None


class RelocationEntry(BaseModel):
    """An incident whose place falls in another unit today."""

    id: int
    public_id: str
    status: str
    category: str
    changes: list[UnitChange]


class RelocateIn(BaseModel):
    """Re-locate incidents to today's units (explicit and audited)."""

    model_config = ConfigDict(extra="forbid")

    ids: list[Annotated[int, Field(ge=1, le=2**63 - 1)]] = Field(min_length=1, max_length=10_000)
    reason: str = Field(min_length=1, max_length=2000)


class RelocateOut(BaseModel):
    """What happened to one incident."""

    model_config = ConfigDict(extra="allow")

    id: int
    relocated: bool
    reason: str | None = None


class CategoryOut(BaseModel):
    """A category of the taxonomy with its deadline."""

    code: str
    class_code: str
    class_name_zh: str
    name_zh: str
    name_en: str
    deadline_hours: int
    description: str = ""
