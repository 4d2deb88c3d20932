"""Incidents as frozen dataclasses: the draft taken in, the stored incident, its transitions."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any, Literal

from gis.times import isoformat_local

__all__ = [
    "CLOSED_STATUSES",
    "DATUMS",
    "OPEN_STATUSES",
    "RESPONSIBLE_ROLES",
    "STATUSES",
    "Datum",
    "Incident",
    "IncidentDraft",
    "IncidentLocation",
    "IntakeResult",
    "Transition",
]

Datum = Literal["wgs84", "cgcs2000", "gcj02", "bd09"]
DATUMS: tuple[str, ...] = ("wgs84", "cgcs2000", "gcj02", "bd09")

#: Every status, in lifecycle order (受理 → 派遣 → 签收 → 处置 → 办结 → 结案).
STATUSES: dict[str, str] = {
    "received": "已受理 received",
    "review": "待核实 review (location not certain: never guessed)",
    "dispatched": "已派遣 dispatched",
    "accepted": "已签收 accepted",
    "in_progress": "处置中 in progress",
    "resolved": "已办结 resolved",
    "closed": "已结案 closed",
    "rejected": "不予受理 rejected",
    "merged": "已合并 merged",
    "escalated": "已上报 escalated",
}
#: Statuses whose deadline still runs (an overdue incident is one of these).
OPEN_STATUSES = frozenset(
    {"received", "review", "dispatched", "accepted", "in_progress", "escalated"}
)
CLOSED_STATUSES = frozenset({"resolved", "closed", "rejected", "merged"})

#: The three responsible people of a place (三员): key -> the staff role of gis.staff.
RESPONSIBLE_ROLES: dict[str, str] = {
    "grid_worker": "grid_worker",
    "police": "community_police",
    "cadre": "cadre",
}


@dataclass(frozen=True)
class IncidentLocation:
    """Raw coordinates as reported, with their datum and accuracy (metres)."""

    x: float
    y: float
    datum: Datum
    accuracy_m: float | None = None

    def to_dict(self) -> dict[str, object]:
        """Return the JSON form."""
        return {"x": self.x, "y": self.y, "datum": self.datum, "accuracy_m": self.accuracy_m}


@dataclass(frozen=True)
class IncidentDraft:
    """An incident as taken in, before it is located and stored.

    ``reporter_contact`` is minimal: a name and/or a phone number only, never
    ID numbers; it is never logged and never shown outside the jurisdiction.
    Either ``location`` or ``address`` (or both) must be given.
    ``event_time`` None means "when it is received" (so that a retry sent
    later without a time is the same request).
    """

    channel: str
    category: str
    description: str
    location: IncidentLocation | None
    address: str | None
    event_time: datetime | None
    external_id: str | None = None
    reporter_contact: str | None = None
    media: tuple[str, ...] = ()

    def body_hash(self) -> str:
        """Return a digest of everything the draft says (replays of a key must match it)."""
        body = {
            "channel": self.channel,
            "category": self.category,
            "description": self.description,
            "location": None if self.location is None else self.location.to_dict(),
            "address": self.address,
            "event_time": None if self.event_time is None else self.event_time.isoformat(),
            "external_id": self.external_id,
            "reporter_contact": self.reporter_contact,
            "media": list(self.media),
        }
        text = json.dumps(body, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
        return hashlib.sha256(text.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class Incident:
    """A stored incident.

    ``units`` maps layer -> level -> unit code, located at the event time
    with the boundaries valid then, and kept when boundaries change later
    (only an explicit, audited re-location changes them). ``responsible``
    maps ``grid_worker``/``police``/``cadre`` to the people of those units
    (public references: id, name, layer, unit code). ``lon``/``lat`` are
    CGCS2000; ``location`` keeps the raw input.
    """

    id: int
    public_id: str
    channel: str
    external_id: str | None
    category: str
    description: str
    lon: float | None
    lat: float | None
    location: IncidentLocation | None
    address: str | None
    event_time: datetime
    received_at: datetime
    status: str
    deadline_at: datetime
    units: dict[str, dict[str, str]]
    revision: int
    responsible: dict[str, list[dict[str, Any]]]
    review_reason: str | None = None
    merged_into: int | None = None
    escalated_to: str | None = None
    feedback_score: int | None = None
    feedback_text: str | None = None
    closed_at: datetime | None = None
    updated_at: datetime | None = None
    reporter_contact: str | None = None
    media: tuple[str, ...] = ()
    submitted_by: str | None = None

    @property
    def open(self) -> bool:
        """Whether the incident's deadline still runs."""
        return self.status in OPEN_STATUSES

    def overdue(self, now: datetime) -> bool:
        """Whether the deadline has passed and the incident is still open."""
        return self.open and self.deadline_at < now

    def unit_refs(self) -> list[tuple[str, str]]:
        """Return every ``(layer, code)`` the incident was located in."""
        return [(layer, code) for layer, levels in self.units.items() for code in levels.values()]

    def redacted(self) -> Incident:
        """Return the public form: no description, contact, media, people or exact place.

        Kept: identifiers, category, status, dates and units (what an
        Open311 public read shows); the point is rounded to about 100 m.
        """
        return replace(
            self,
            description="",
            reporter_contact=None,
            media=(),
            responsible={},
            location=None,
            address=None,
            lon=None if self.lon is None else round(self.lon, 3),
            lat=None if self.lat is None else round(self.lat, 3),
            feedback_text=None,
            submitted_by=None,
        )

    def to_dict(self, *, contact: bool = False) -> dict[str, Any]:
        """Return the JSON form (times in China time with their offset).

        The reporter's contact is included only when ``contact`` is true (a
        caller of the incident's own jurisdiction asked for it).
        """
        data: dict[str, Any] = {
            "id": self.id,
            "public_id": self.public_id,
            "channel": self.channel,
            "external_id": self.external_id,
            "category": self.category,
            "description": self.description,
            "lon": self.lon,
            "lat": self.lat,
            "location": None if self.location is None else self.location.to_dict(),
            "address": self.address,
            "event_time": isoformat_local(self.event_time),
            "received_at": isoformat_local(self.received_at),
            "status": self.status,
            "deadline_at": isoformat_local(self.deadline_at),
            "units": self.units,
            "revision": self.revision,
            "responsible": self.responsible,
            "review_reason": self.review_reason,
            "merged_into": self.merged_into,
            "escalated_to": self.escalated_to,
            "feedback_score": self.feedback_score,
            "feedback_text": self.feedback_text,
            "closed_at": isoformat_local(self.closed_at),
            "updated_at": isoformat_local(self.updated_at),
            "media": list(self.media),
        }
        if contact:
            data["reporter_contact"] = self.reporter_contact
        return data


@dataclass(frozen=True)
class IntakeResult:
    """What an intake did: the incident, and whether this call created it."""

    incident: Incident
    created: bool


@dataclass(frozen=True)
class Transition:
    """One audited change of an incident's status (or of its units: a re-location)."""

    incident_id: int
    from_status: str | None
    to_status: str
    actor: str
    at: datetime
    note: str | None = None
    action: str = ""
    detail: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """Return the JSON form."""
        return {
            "incident_id": self.incident_id,
            "action": self.action,
            "from_status": self.from_status,
            "to_status": self.to_status,
            "actor": self.actor,
            "at": isoformat_local(self.at),
            "note": self.note,
            "detail": self.detail,
        }
