"""Incident intake, dispatch and tracking (统一受理、归口管理、限期处理).

Every function takes the registry ``db`` and the caller's
:class:`~gis.access.Principal`; what the caller may see and act on is its
jurisdiction (an incident belongs to the units it was located in). The API
passes the application's shared ``locator`` (in-memory indexes) and the
caller's resolved ``jurisdiction``; without them a per-database instance is
kept, so that nothing is reloaded per request either way.

Intake (:func:`intake`) locates the incident in every layer with the
boundaries valid at its event time, attaches the people responsible there
(三员: grid worker, community police, cadre) and stores it in one short
write transaction: ``dispatched`` when the place is certain, else
``review`` with the reason (ambiguous, outside every unit, an address not
matched for certain) — never a guess. An ``Idempotency-Key`` makes a retry
return the first incident; the same key with another body is a conflict.
"""

from __future__ import annotations

import math
import re
import secrets
import threading
import weakref
from collections.abc import Iterable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, TypedDict, Unpack

import numpy as np
import pandas as pd

from gis.access import Jurisdiction, JurisdictionResolver, Permission, Principal
from gis.access.audit import append_audit, audit_values
from gis.crs import STORAGE_CRS, local_projected_crs, transformer
from gis.errors import ConflictError, InputError, NotFoundError
from gis.incidents._model import (
    DATUMS,
    OPEN_STATUSES,
    RESPONSIBLE_ROLES,
    Incident,
    IncidentDraft,
    IncidentLocation,
    IntakeResult,
    Transition,
)
from gis.incidents._writer import IdempotencyConflict, IntakeJob, writer_for
from gis.incidents.taxonomy import Taxonomy, load_taxonomy
from gis.locate import LocateAnswer, LocateService
from gis.repository import Database
from gis.revisions import RevisionClock
from gis.settings import get_settings
from gis.staff import StaffMember, responsible_for
from gis.times import LOCAL_ZONE, utc_now

__all__ = [
    "ACTIONS",
    "IdempotencyConflict",
    "IntakeOptions",
    "duplicates",
    "enqueue_intake",
    "escalate_overdue",
    "frame",
    "get",
    "history",
    "intake",
    "intake_result",
    "overdue",
    "prepare_intake",
    "relocate",
    "relocation_report",
    "search",
    "transition",
    "validate_draft",
]

P = Permission

MAX_DESCRIPTION = 4000
MAX_ADDRESS = 200
MAX_MEDIA = 10
MAX_MEDIA_REF = 500
MAX_NOTE = 2000
MAX_KEY = 200
#: How far ahead of the server's clock an event time may be (clocks of phones drift).
FUTURE_SLACK = timedelta(minutes=10)
#: The oldest event time accepted (older reports are archive imports, not intake).
MAX_AGE = timedelta(days=366)

_CHANNEL = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,31}$")
_KEY = re.compile(r"^[\x21-\x7e]{1,200}$")
# 18-digit resident ID numbers (last one may be X) and the old 15-digit form.
_ID_NUMBER = re.compile(r"(?<!\d)(\d{17}[\dXx]|\d{15})(?!\d)")
_STREET_LEVELS = ("street", "town")


#: action -> (statuses it applies to, the status it leads to, the permission it needs)
ACTIONS: dict[str, tuple[frozenset[str], str, Permission]] = {
    "dispatch": (frozenset({"received", "review"}), "dispatched", P.INCIDENTS_DISPATCH),
    "accept": (frozenset({"dispatched", "escalated"}), "accepted", P.INCIDENTS_HANDLE),
    "start": (frozenset({"accepted"}), "in_progress", P.INCIDENTS_HANDLE),
    "resolve": (frozenset({"accepted", "in_progress"}), "resolved", P.INCIDENTS_HANDLE),
    "close": (frozenset({"resolved"}), "closed", P.INCIDENTS_DISPATCH),
    "reopen": (frozenset({"resolved"}), "in_progress", P.INCIDENTS_DISPATCH),
    "reject": (
        frozenset({"received", "review", "dispatched", "accepted"}),
        "rejected",
        P.INCIDENTS_DISPATCH,
    ),
    "merge": (
        frozenset({"received", "review", "dispatched", "accepted"}),
        "merged",
        P.INCIDENTS_DISPATCH,
    ),
    "escalate": (
        frozenset({"dispatched", "accepted", "in_progress"}),
        "escalated",
        P.INCIDENTS_HANDLE,
    ),
}
_FINAL = frozenset({"closed", "rejected", "merged"})


# -- shared, per-database helpers (no reloading per call) ---------------------------


@dataclass
class _Shared:
    locator: LocateService
    resolver: JurisdictionResolver


_shared: weakref.WeakKeyDictionary[Database, _Shared] = weakref.WeakKeyDictionary()
_shared_lock = threading.Lock()


def _context(db: Database) -> _Shared:
    with _shared_lock:
        found = _shared.get(db)
        if found is None:
            # Asked on every call (one small query): a command or script
            # that changes boundaries sees them at once.
            clock = RevisionClock(db, refresh_seconds=0)
            locator = LocateService(db, clock=clock)
            found = _Shared(
                locator=locator,
                resolver=JurisdictionResolver(db, clock=clock, indexes=locator.cache),
            )
            _shared[db] = found
        return found


def _locator(db: Database, locator: LocateService | None) -> LocateService:
    return locator if locator is not None else _context(db).locator


def _jurisdiction(
    db: Database, principal: Principal, jurisdiction: Jurisdiction | None
) -> Jurisdiction:
    if jurisdiction is not None:
        return jurisdiction
    if principal.unrestricted:
        return Jurisdiction.everything()
    return _context(db).resolver.jurisdiction(principal)


def _taxonomy(taxonomy: Taxonomy | None) -> Taxonomy:
    return taxonomy if taxonomy is not None else load_taxonomy(get_settings().incident_taxonomy)


def _now(now: datetime | None) -> datetime:
    if now is None:
        return utc_now()
    if now.tzinfo is None:
        raise InputError("now must carry its time zone", field="now")
    return now.astimezone(UTC)


# -- intake ------------------------------------------------------------------------


def validate_draft(draft: IncidentDraft, *, taxonomy: Taxonomy, now: datetime) -> None:
    """Raise InputError naming the field, unless the draft can be taken in as it is."""
    if not isinstance(draft.channel, str) or not _CHANNEL.match(draft.channel):
        raise InputError(
            "channel must be 1 to 32 lower-case letters, digits, '.', '_' or '-' "
            "(e.g. 12345, 110, grid, app, open311)",
            field="channel",
        )
    taxonomy.get(draft.category)
    _text(draft.description, "description", MAX_DESCRIPTION, allow_empty=True, lines=True)
    if draft.location is None and (draft.address is None or not draft.address.strip()):
        raise InputError(
            "a location (x, y and datum) or an address is required: an incident is never "
            "placed by guess",
            field="location",
        )
    if draft.location is not None:
        _check_location(draft.location)
    if draft.address is not None:
        _text(draft.address, "address", MAX_ADDRESS)
    if draft.external_id is not None:
        _text(draft.external_id, "external_id", 100)
    if draft.reporter_contact is not None:
        _text(draft.reporter_contact, "reporter_contact", 100)
        if _ID_NUMBER.search(draft.reporter_contact):
            raise InputError(
                "reporter_contact: ID numbers are not kept; give a name and/or a phone number",
                field="reporter_contact",
            )
    if len(draft.media) > MAX_MEDIA:
        raise InputError(f"at most {MAX_MEDIA} media references", field="media")
    for ref in draft.media:
        _text(ref, "media", MAX_MEDIA_REF)
        if any(ch.isspace() for ch in ref):
            raise InputError("media references are URLs or keys without spaces", field="media")
    if draft.event_time is None:
        return  # when received
    if not isinstance(draft.event_time, datetime) or draft.event_time.tzinfo is None:
        raise InputError("event_time must be a time with its zone offset", field="event_time")
    if draft.event_time > now + FUTURE_SLACK:
        raise InputError("event_time is in the future", field="event_time")
    if draft.event_time < now - MAX_AGE:
        raise InputError("event_time is more than a year ago", field="event_time")


def _text(
    value: object, field: str, limit: int, *, allow_empty: bool = False, lines: bool = False
) -> None:
    if not isinstance(value, str):
        raise InputError(f"{field} must be text", field=field)
    if len(value) > limit:
        raise InputError(f"{field} is longer than {limit} characters", field=field)
    if not allow_empty and not value.strip():
        raise InputError(f"{field} is empty", field=field)
    allowed = "\n\r\t" if lines else ""
    if any(not ch.isprintable() and ch not in allowed for ch in value):
        raise InputError(f"{field} contains control characters", field=field)


def _check_location(location: IncidentLocation) -> None:
    if location.datum not in DATUMS:
        raise InputError(
            f"unknown datum {str(location.datum)[:20]!r}: use one of {', '.join(DATUMS)}",
            field="datum",
        )
    for name, value in (("x", location.x), ("y", location.y)):
        if not isinstance(value, int | float) or not math.isfinite(value):
            raise InputError(f"{name} must be a finite number", field=name)
    if not (-180 <= location.x <= 180 and -90 <= location.y <= 90):
        raise InputError(
            "x/y must be a longitude (-180..180) and a latitude (-90..90) in degrees",
            field="x",
        )
    if location.accuracy_m is not None and not (
        math.isfinite(location.accuracy_m) and 0 <= location.accuracy_m <= 10_000
    ):
        raise InputError("accuracy_m must be between 0 and 10000 metres", field="accuracy_m")


def _check_key(key: str | None) -> None:
    if key is not None and not _KEY.match(key):
        raise InputError(
            f"Idempotency-Key must be 1 to {MAX_KEY} visible ASCII characters",
            field="Idempotency-Key",
        )


def _locate(
    locator: LocateService, draft: IncidentDraft, when: datetime
) -> tuple[LocateAnswer, str | None, float | None, float | None]:
    """Locate at ``when``; return the answer, the review reason (None: certain), lon/lat."""
    if draft.location is not None:
        loc = draft.location
        answer = locator.locate(loc.x, loc.y, crs=loc.datum, accuracy_m=loc.accuracy_m, at=when)
    else:
        answer = locator.locate_address(str(draft.address), at=when)
    return answer, _review_reason(answer), answer.lon, answer.lat


def _review_reason(answer: LocateAnswer) -> str | None:
    status = answer.status
    if answer.address is not None and answer.address.best is None:
        return "unmatched_address"
    if answer.address is not None and not answer.address.best.certain:  # type: ignore[union-attr]
        return "uncertain_address"
    if status == "before_first_version":
        return "before_first_version"
    layers = answer.layers
    if any(layer.status == "ambiguous" for layer in layers.values()):
        return "ambiguous_location"
    if not any(layer.status == "ok" for layer in layers.values()):
        return "outside_all_units"
    return None


def _units_of(answer: LocateAnswer) -> dict[str, dict[str, str]]:
    # Only the layers that located the place for certain: a layer that does
    # not cover it (outside) names nothing rather than a nearest guess.
    units: dict[str, dict[str, str]] = {}
    for name, layer in answer.layers.items():
        if layer.status != "ok":
            continue
        units[name] = {u.level: str(u.code) for u in layer.units if u.code is not None}
    return units


def _responsible(staff: Iterable[StaffMember]) -> dict[str, list[dict[str, Any]]]:
    by_role = {role: key for key, role in RESPONSIBLE_ROLES.items()}
    chosen: dict[str, list[dict[str, Any]]] = {key: [] for key in RESPONSIBLE_ROLES}
    for member in staff:
        key = by_role.get(member.role)
        if key is not None:
            chosen[key].append(
                {
                    "id": member.id,
                    "name": member.name,
                    "layer": member.layer,
                    "unit_code": member.unit_code,
                }
            )
    return chosen


def _unit_rows(units: dict[str, dict[str, str]]) -> list[tuple[str, str, str]]:
    return [
        (layer, level, code) for layer, levels in units.items() for level, code in levels.items()
    ]


def _public_id(received_at: datetime) -> str:
    token = secrets.token_hex(4).upper()
    return f"{received_at.astimezone(LOCAL_ZONE):%Y%m%d}-{token}"


class IntakeOptions(TypedDict, total=False):
    """The keyword arguments of :func:`intake`, as :func:`prepare_intake` takes them."""

    idempotency_key: str | None
    now: datetime | None
    locator: LocateService | None
    taxonomy: Taxonomy | None


def intake(
    db: Database, principal: Principal, draft: IncidentDraft, **options: Unpack[IntakeOptions]
) -> IntakeResult:
    """Take in one incident: validate, locate at the event time, attach the people, store.

    Returns the incident and whether this call created it (False: a retry
    with the same ``idempotency_key`` and body returned the first one).
    Returns once the incident is committed (stored with others taken in at
    the same moment, in one transaction: see :mod:`gis.incidents._writer`).
    ``options`` are :func:`prepare_intake`'s: ``idempotency_key``, ``now``,
    ``locator``, ``taxonomy``. Anyone allowed to report may report a place outside their own units
    (a hotline takes calls about the whole city): what the caller is then
    shown of the incident is the API's business (a receipt only).

    Raises
    ------
    InputError
        Unknown category, no location, bad coordinates or datum, a time
        without zone or in the future, an ID number in the contact...
    IdempotencyConflict
        The key was used before (by the same caller) with another body.
    """
    job = prepare_intake(db, principal, draft, **options)
    return intake_result(enqueue_intake(db, job).result())


def enqueue_intake(db: Database, job: IntakeJob) -> Future[tuple[dict[str, Any], bool]]:
    """Hand a prepared job to the database's writer; the future resolves once it is committed.

    Its result goes to :func:`intake_result`; it raises
    :class:`IdempotencyConflict` or what stopped the job's write.
    """
    return writer_for(db).enqueue(job)


def intake_result(stored: tuple[dict[str, Any], bool]) -> IntakeResult:
    """Return the result of a stored intake job (the writer's ``(row, created)``)."""
    row, created = stored
    return IntakeResult(incident=_incident(row), created=created)


def prepare_intake(
    db: Database,
    principal: Principal,
    draft: IncidentDraft,
    *,
    idempotency_key: str | None = None,
    now: datetime | None = None,
    locator: LocateService | None = None,
    taxonomy: Taxonomy | None = None,
) -> IntakeJob:
    """Validate, locate and attach the people: the job the writer stores (no database write).

    For callers that wait for the commit themselves (the API's event loop):
    ``writer_for(db).enqueue(job)`` gives the future, :func:`intake_result`
    its answer. Raises as :func:`intake` does before storing.
    """
    principal.require(P.INCIDENTS_REPORT)
    received_at = _now(now)
    tax = _taxonomy(taxonomy)
    validate_draft(draft, taxonomy=tax, now=received_at)
    _check_key(idempotency_key)
    category = tax.get(draft.category)
    event_time = draft.event_time or received_at
    answer, reason, lon, lat = _locate(_locator(db, locator), draft, event_time)
    units = {} if reason is not None else _units_of(answer)
    responsible = {} if reason is not None else _responsible(answer.responsible)
    status = "review" if reason is not None else "dispatched"
    actor = principal.actor
    loc = draft.location
    values = {
        "received_at": received_at,
        "public_id": _public_id(received_at),
        "channel": draft.channel,
        "external_id": draft.external_id,
        "category": draft.category,
        "description": draft.description,
        "lon": lon,
        "lat": lat,
        "raw_x": None if loc is None else float(loc.x),
        "raw_y": None if loc is None else float(loc.y),
        "datum": None if loc is None else loc.datum,
        "accuracy_m": None if loc is None else loc.accuracy_m,
        "address": draft.address,
        "event_time": event_time,
        "status": status,
        "deadline_at": received_at + timedelta(hours=category.deadline_hours),
        "units": units,
        "responsible": responsible,
        "revision": 1,
        "review_reason": reason,
        "merged_into": None,
        "escalated_to": None,
        "feedback_score": None,
        "feedback_text": None,
        "closed_at": None,
        "updated_at": received_at,
        "reporter_contact": draft.reporter_contact,
        "media": list(draft.media),
        "submitted_by": actor,
    }
    steps: list[dict[str, Any]] = [
        {
            "action": "intake",
            "from_status": None,
            "to_status": "received",
            "actor": actor,
            "at": received_at,
            "note": None,
            "detail": {"channel": draft.channel},
        },
        {
            "action": "review" if reason is not None else "dispatch",
            "from_status": "received",
            "to_status": status,
            "actor": "system:locate",
            "at": received_at,
            "note": reason,
            "detail": {"units": _lowest(units)},
        },
    ]
    body_hash = draft.body_hash()
    scope = actor if idempotency_key is not None else None
    db.prepare_incidents(received_at)
    return IntakeJob(
        values=values,
        units=_unit_rows(units),
        transitions=steps,
        audit=audit_values(
            principal,
            action="incidents.intake",
            target="incident:",
            detail={"status": status, "category": draft.category, "channel": draft.channel},
        ),
        scope=scope,
        key=idempotency_key,
        body_hash=body_hash,
    )


def _lowest(units: dict[str, dict[str, str]]) -> dict[str, str]:
    return {layer: list(levels.values())[-1] for layer, levels in units.items() if levels}


def _incident(row: dict[str, Any]) -> Incident:
    location = None
    if row.get("raw_x") is not None and row.get("datum"):
        location = IncidentLocation(
            x=float(row["raw_x"]),
            y=float(row["raw_y"]),
            datum=row["datum"],
            accuracy_m=row.get("accuracy_m"),
        )
    return Incident(
        id=int(row["id"]),
        public_id=row["public_id"],
        channel=row["channel"],
        external_id=row.get("external_id"),
        category=row["category"],
        description=row["description"],
        lon=row.get("lon"),
        lat=row.get("lat"),
        location=location,
        address=row.get("address"),
        event_time=_aware(row["event_time"]),
        received_at=_aware(row["received_at"]),
        status=row["status"],
        deadline_at=_aware(row["deadline_at"]),
        units=dict(row.get("units") or {}),
        revision=int(row["revision"]),
        responsible=dict(row.get("responsible") or {}),
        review_reason=row.get("review_reason"),
        merged_into=row.get("merged_into"),
        escalated_to=row.get("escalated_to"),
        feedback_score=row.get("feedback_score"),
        feedback_text=row.get("feedback_text"),
        closed_at=_aware(row.get("closed_at")),
        updated_at=_aware(row.get("updated_at")),
        reporter_contact=row.get("reporter_contact"),
        media=tuple(row.get("media") or ()),
        submitted_by=row.get("submitted_by"),
    )


def _aware(value: Any) -> Any:
    if isinstance(value, datetime) and value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    if isinstance(value, datetime):
        # Microseconds dropped as the database may: the same incident reads the same.
        return value.astimezone(UTC)
    return value


# -- reads -------------------------------------------------------------------------


def visible(incident: Incident, jurisdiction: Jurisdiction, actor: str | None = None) -> bool:
    """Whether a caller of ``jurisdiction`` may see and act on the incident.

    Located incidents belong to their units (any layer, seen entirely);
    those in the review queue (no unit) to whoever's area covers their
    point, and to the caller who took them in (``actor``: an address that
    matched nothing has no point).
    """
    if jurisdiction.unrestricted:
        return True
    if incident.units:
        return any(jurisdiction.sees_wholly(layer, code) for layer, code in incident.unit_refs())
    if actor is not None and incident.submitted_by == actor:
        return True
    return incident.lon is not None and jurisdiction.covers(incident.lon, incident.lat or 0.0)


def _roots(principal: Principal) -> list[tuple[str, str]] | None:
    if principal.unrestricted:
        return None
    return [tuple(ref.split(":", 1)) for ref in principal.units if ":" in ref]  # type: ignore[misc]


def _statuses(status: str | Sequence[str] | None) -> list[str] | None:
    return [status] if isinstance(status, str) else list(status) if status else None


def _seen_incidents(
    db: Database,
    principal: Principal,
    seen: Jurisdiction,
    *,
    actor: str | None = None,
    **filters: Any,
) -> list[Incident]:
    """Return every stored incident matching ``filters`` that ``seen`` may see, newest first.

    The store narrows to the principal's units (and the unlocated ones);
    :func:`visible` decides. ``actor``: the caller also sees the unlocated
    incidents it took in.
    """
    with db.reader() as repo:
        rows = repo.incidents.search(roots=_roots(principal), limit=None, **filters)
    return [i for i in map(_incident, rows) if visible(i, seen, actor)]


def get(
    db: Database,
    principal: Principal,
    incident_id: int,
    *,
    jurisdiction: Jurisdiction | None = None,
) -> Incident:
    """Return one incident of the caller's jurisdiction (NotFoundError otherwise, alike)."""
    principal.require(P.INCIDENTS_READ)
    seen = _jurisdiction(db, principal, jurisdiction)
    with db.reader() as repo:
        row = repo.incidents.get(incident_id=incident_id)
    incident = None if row is None else _incident(row)
    if incident is None or not visible(incident, seen, principal.actor):
        raise NotFoundError(f"no incident {incident_id}", field="id")
    return incident


def search(
    db: Database,
    principal: Principal,
    *,
    status: str | Sequence[str] | None = None,
    category: str | None = None,
    unit: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    limit: int = 100,
    offset: int = 0,
    jurisdiction: Jurisdiction | None = None,
) -> list[Incident]:
    """Return the caller's incidents, newest first, filtered.

    ``unit`` is a unit code, optionally ``layer:code``; ``since``/``until``
    bound the time received.
    """
    principal.require(P.INCIDENTS_READ)
    seen = _jurisdiction(db, principal, jurisdiction)
    statuses = _statuses(status)
    for value in statuses or ():
        if value not in ACTIONS_STATUSES:
            raise InputError(
                f"unknown status {value[:30]!r}: use one of {', '.join(ACTIONS_STATUSES)}",
                field="status",
            )
    if category is not None:
        _taxonomy(None).get(category)  # a misspelt category is an error, not an empty list
    if not 1 <= limit <= 10_000 or offset < 0:
        raise InputError("limit must be 1 to 10000 and offset 0 or more", field="limit")
    unit_filter = None
    if unit is not None:
        layer, _, code = unit.rpartition(":")
        unit_filter = (layer or None, code)
    # Unlocated incidents (the review queue) are filtered by their point
    # here, so the page is cut after filtering.
    wanted = offset + limit
    batch, start = max(wanted, 200), 0
    found: list[Incident] = []
    with db.reader() as repo:
        while len(found) < wanted:
            rows = repo.incidents.search(
                roots=_roots(principal),
                status=statuses,
                category=category,
                unit=unit_filter,
                since=since,
                until=until,
                limit=batch,
                offset=start,
            )
            found.extend(i for i in map(_incident, rows) if visible(i, seen, principal.actor))
            if len(rows) < batch:
                break
            start += batch
    return found[offset:wanted]


ACTIONS_STATUSES = (
    "received",
    "review",
    "dispatched",
    "accepted",
    "in_progress",
    "resolved",
    "closed",
    "rejected",
    "merged",
    "escalated",
)


def history(
    db: Database,
    principal: Principal,
    incident_id: int,
    *,
    jurisdiction: Jurisdiction | None = None,
) -> list[Transition]:
    """Return every transition of one incident, oldest first."""
    get(db, principal, incident_id, jurisdiction=jurisdiction)
    with db.reader() as repo:
        rows = repo.incidents.transitions(incident_id=incident_id)
    return [
        Transition(
            incident_id=int(row["incident_id"]),
            from_status=row["from_status"],
            to_status=row["to_status"],
            actor=row["actor"],
            at=_aware(row["at"]),
            note=row["note"],
            action=row["action"],
            detail=dict(row["detail"] or {}),
        )
        for row in rows
    ]


def overdue(
    db: Database,
    principal: Principal,
    *,
    now: datetime | None = None,
    limit: int = 1000,
    jurisdiction: Jurisdiction | None = None,
) -> list[Incident]:
    """Return the caller's open incidents whose deadline has passed, the most overdue first."""
    principal.require(P.INCIDENTS_READ)
    seen = _jurisdiction(db, principal, jurisdiction)
    when = _now(now)
    found = _seen_incidents(
        db,
        principal,
        seen,
        actor=principal.actor,
        status=sorted(OPEN_STATUSES),
        deadline_before=when,
    )
    found.sort(key=lambda i: (i.deadline_at, i.id))
    return found[:limit]


# -- transitions -------------------------------------------------------------------


def transition(
    db: Database,
    principal: Principal,
    incident_id: int,
    action: str,
    *,
    note: str | None = None,
    now: datetime | None = None,
    unit: str | None = None,
    location: IncidentLocation | None = None,
    merged_into: int | None = None,
    feedback_score: int | None = None,
    feedback_text: str | None = None,
    revision: int | None = None,
    locator: LocateService | None = None,
    jurisdiction: Jurisdiction | None = None,
) -> Incident:
    """Move an incident along its lifecycle (audited: who, when, note).

    Actions (:data:`ACTIONS`): ``dispatch`` (from the review queue needs
    ``unit`` ``"layer:code"`` or a corrected ``location``), ``accept``,
    ``start``, ``resolve``, ``close`` (needs the resident's
    ``feedback_score`` 1-5), ``reopen``, ``reject``, ``merge`` (needs
    ``merged_into``), ``escalate`` (to the street of the incident, or
    ``unit``). ``revision``, when given, must be the stored one.

    Raises
    ------
    InputError
        Unknown action, an action that does not apply to the status, a
        missing parameter.
    ForbiddenError
        The caller's role may not take this action.
    NotFoundError
        No such incident in the caller's jurisdiction.
    ConflictError
        The incident changed meanwhile (``revision``).
    """
    if action not in ACTIONS:
        raise InputError(
            f"unknown action {str(action)[:30]!r}: use one of {', '.join(ACTIONS)}",
            field="action",
        )
    sources, target, permission = ACTIONS[action]
    principal.require(permission)
    if note is not None:
        _text(note, "note", MAX_NOTE, lines=True)
    when = _now(now)
    seen = _jurisdiction(db, principal, jurisdiction)
    current = get(db, principal, incident_id, jurisdiction=seen)
    if revision is not None and revision != current.revision:
        raise ConflictError(
            f"incident {incident_id} is at revision {current.revision}, not {revision}: "
            "reload it and try again",
            field="revision",
        )
    if current.status not in sources:
        raise InputError(
            f"cannot {action} an incident that is {current.status} "
            f"(only one that is {', '.join(sorted(sources))})",
            field="action",
        )
    changes: dict[str, Any] = {"status": target, "updated_at": when}
    detail: dict[str, Any] = {}
    new_units: dict[str, dict[str, str]] | None = None
    if action == "dispatch" and current.status == "review":
        new_units, responsible, lon_lat = _dispatch_target(
            db, current, seen, unit=unit, location=location, locator=locator
        )
        changes.update(units=new_units, responsible=responsible, review_reason=None)
        if lon_lat is not None:
            changes.update(lon=lon_lat[0], lat=lon_lat[1])
        detail["units"] = _lowest(new_units)
    elif (unit is not None or location is not None) and action != "escalate":
        raise InputError(f"{action} takes no unit or location", field="unit")
    _feedback(action, feedback_score, feedback_text, changes, detail)
    if action == "merge" or merged_into is not None:
        _merge_target(db, principal, seen, action, incident_id, merged_into, changes, detail)
    if action == "escalate":
        street = _escalation_target(current, seen, unit)
        changes["escalated_to"] = street
        detail["escalated_to"] = street
    if target in _FINAL:
        changes["closed_at"] = when
    elif action == "reopen":
        changes["closed_at"] = None
    _apply(
        db,
        principal,
        current,
        action,
        changes,
        note=note,
        when=when,
        detail=detail,
        units=new_units,
    )
    return get(db, principal, incident_id, jurisdiction=seen)


def _feedback(
    action: str,
    score: int | None,
    text: str | None,
    changes: dict[str, Any],
    detail: dict[str, Any],
) -> None:
    if action != "close":
        if score is not None or text is not None:
            raise InputError("feedback is given when closing", field="feedback_score")
        return
    if score is None or isinstance(score, bool) or not isinstance(score, int):
        raise InputError(
            "closing needs the resident's feedback_score (1 to 5)", field="feedback_score"
        )
    if not 1 <= score <= 5:
        raise InputError("feedback_score must be 1 to 5", field="feedback_score")
    if text is not None:
        _text(text, "feedback_text", MAX_NOTE, allow_empty=True, lines=True)
    changes.update(feedback_score=score, feedback_text=text)
    detail["feedback_score"] = score


def _merge_target(
    db: Database,
    principal: Principal,
    seen: Jurisdiction,
    action: str,
    incident_id: int,
    merged_into: int | None,
    changes: dict[str, Any],
    detail: dict[str, Any],
) -> None:
    if action != "merge":
        raise InputError("merged_into is given when merging", field="merged_into")
    if merged_into is None:
        raise InputError("merging needs merged_into (the incident kept)", field="merged_into")
    if merged_into == incident_id:
        raise InputError("an incident cannot be merged into itself", field="merged_into")
    kept = get(db, principal, merged_into, jurisdiction=seen)
    if kept.status in ("merged", "rejected"):
        raise InputError(
            f"incident {merged_into} is {kept.status}: merge into the one kept",
            field="merged_into",
        )
    changes["merged_into"] = merged_into
    detail["merged_into"] = merged_into


def _apply(
    db: Database,
    principal: Principal,
    current: Incident,
    action: str,
    changes: dict[str, Any],
    *,
    note: str | None,
    when: datetime,
    detail: dict[str, Any],
    units: dict[str, dict[str, str]] | None = None,
) -> None:
    with db.transaction() as repo:
        if not repo.incidents.update(
            incident_id=current.id, revision=current.revision, values=changes
        ):
            raise ConflictError(
                f"incident {current.id} was changed meanwhile: reload it and try again",
                field="revision",
            )
        if units is not None:
            repo.incidents.set_units(incident_id=current.id, units=_unit_rows(units))
        to_status = changes.get("status", current.status)
        repo.incidents.add_transition(
            incident_id=current.id,
            action=action,
            from_status=current.status,
            to_status=to_status,
            actor=principal.actor,
            at=when,
            note=note,
            detail=detail,
        )
        append_audit(
            repo,
            actor=principal,
            action=f"incidents.{action}",
            target=f"incident:{current.id}",
            detail={
                "from": current.status,
                "to": to_status,
                **({"note": note[:200]} if note else {}),
                **detail,
            },
        )


def _dispatch_target(
    db: Database,
    current: Incident,
    seen: Jurisdiction,
    *,
    unit: str | None,
    location: IncidentLocation | None,
    locator: LocateService | None,
) -> tuple[dict[str, dict[str, str]], dict[str, list[dict[str, Any]]], tuple[float, float] | None]:
    service = _locator(db, locator)
    if location is not None:
        _check_location(location)
        answer = service.locate(
            location.x,
            location.y,
            crs=location.datum,
            accuracy_m=location.accuracy_m,
            at=current.event_time,
        )
        reason = _review_reason(answer)
        if reason is not None:
            raise InputError(
                f"the corrected location is still not certain ({reason}): give a unit",
                field="location",
            )
        units = _units_of(answer)
        if not any(
            seen.sees_wholly(layer, code)
            for layer, levels in units.items()
            for code in levels.values()
        ):
            raise NotFoundError(
                "the corrected location is outside your jurisdiction", field="location"
            )
        return units, _responsible(answer.responsible), (answer.lon or 0.0, answer.lat or 0.0)
    if unit is None:
        raise InputError(
            "dispatching from the review queue needs the unit (layer:code) or a corrected "
            "location: the system does not guess",
            field="unit",
        )
    layer, _, code = unit.partition(":")
    if not layer or not code:
        raise InputError("unit must be layer:code, e.g. governance:350502004001001", field="unit")
    if not seen.sees_wholly(layer, code):
        raise NotFoundError(f"no unit {code!r} in layer {layer!r}", field="unit")
    indexes = service.cache.get(current.event_time)
    chain = _chain(indexes, layer, code)
    if not chain:
        raise NotFoundError(f"no unit {code!r} in layer {layer!r} at the event time", field="unit")
    units = {layer: dict(chain)}
    local_first = [(layer, c) for _, c in reversed(chain)]
    staff = service.cache.staff()
    return units, _responsible(responsible_for(staff, local_first)), None


def _chain(indexes: Any, layer: str, code: str) -> list[tuple[str, str]]:
    """Return ``(level, code)`` from the top of ``layer`` down to ``code`` (empty: unknown)."""
    levels = indexes.layers().get(layer, [])
    where: dict[str, tuple[str, Any]] = {}
    for level in levels:
        for unit_code, parent in zip(level.codes, level.parents, strict=True):
            where[str(unit_code)] = (level.level, parent)
    if code not in where:
        return []
    chain: list[tuple[str, str]] = []
    current: Any = code
    while isinstance(current, str) and current in where and len(chain) < 20:
        level_name, parent = where[current]
        chain.append((level_name, current))
        current = parent
    return list(reversed(chain))


def _escalation_target(current: Incident, seen: Jurisdiction, unit: str | None) -> str:
    if unit is not None:
        layer, _, code = unit.partition(":")
        if not layer or not code:
            raise InputError("unit must be layer:code", field="unit")
        return f"{layer}:{code}"
    for layer, levels in current.units.items():
        for level in _STREET_LEVELS:
            if level in levels:
                return f"{layer}:{levels[level]}"
    for layer, levels in current.units.items():
        if levels:
            level = next(iter(levels))
            return f"{layer}:{levels[level]}"
    raise InputError("the incident has no unit to escalate to: give unit", field="unit")


def escalate_overdue(
    db: Database,
    principal: Principal,
    *,
    now: datetime | None = None,
    jurisdiction: Jurisdiction | None = None,
) -> list[Incident]:
    """Escalate every overdue incident being handled to its street (街道), audited.

    Incidents in the review queue or not yet dispatched stay where they are
    (they are on the dispatchers' overdue list already).
    """
    principal.require(P.INCIDENTS_DISPATCH)
    when = _now(now)
    seen = _jurisdiction(db, principal, jurisdiction)
    done = []
    for incident in overdue(db, principal, now=when, limit=100_000, jurisdiction=seen):
        if incident.status not in ACTIONS["escalate"][0]:
            continue
        try:
            done.append(
                transition(
                    db,
                    principal,
                    incident.id,
                    "escalate",
                    note="deadline passed 超期自动上报",
                    now=when,
                    jurisdiction=seen,
                )
            )
        except ConflictError:
            continue  # changed meanwhile (someone acted on it): not ours to escalate now
    return done


# -- duplicates --------------------------------------------------------------------


def duplicates(
    db: Database,
    principal: Principal,
    incident_id: int,
    *,
    radius_m: float | None = None,
    window_hours: float | None = None,
    jurisdiction: Jurisdiction | None = None,
) -> list[tuple[Incident, float]]:
    """Suggest incidents that may report the same thing: same category, near, close in time.

    Returns ``(incident, distance in metres)`` pairs, nearest first. Only
    suggested: merging is a dispatcher's decision (``merge``).
    """
    settings = get_settings()
    radius = settings.incident_duplicate_radius_m if radius_m is None else radius_m
    window = settings.incident_duplicate_window_hours if window_hours is None else window_hours
    if not (0 < radius <= 5000) or not (0 < window <= 24 * 90):
        raise InputError("radius_m must be 0-5000 and window_hours 0-2160", field="radius_m")
    seen = _jurisdiction(db, principal, jurisdiction)
    incident = get(db, principal, incident_id, jurisdiction=seen)
    if incident.lon is None or incident.lat is None:
        return []
    # A box a little larger than the radius in degrees, then exact metres.
    dlat = radius / 110_000 * 1.2
    dlon = dlat / max(math.cos(math.radians(incident.lat)), 0.1)
    span = timedelta(hours=window)
    with db.reader() as repo:
        rows = repo.incidents.nearby(
            category=incident.category,
            box=(
                incident.lon - dlon,
                incident.lat - dlat,
                incident.lon + dlon,
                incident.lat + dlat,
            ),
            since=incident.event_time - span,
            until=incident.event_time + span,
            statuses=sorted(set(ACTIONS_STATUSES) - {"rejected", "merged"}),
            exclude=incident.id,
            limit=200,
        )
    if not rows:
        return []
    projected = local_projected_crs(incident.lon, incident.lat)
    to_metric = transformer(STORAGE_CRS, projected)
    x0, y0 = to_metric.transform(incident.lon, incident.lat)
    found = []
    for row in rows:
        other = _incident(row)
        if not visible(other, seen):
            continue
        x, y = to_metric.transform(other.lon, other.lat)
        distance = math.hypot(x - x0, y - y0)
        if distance <= radius:
            found.append((other, round(distance, 1)))
    found.sort(key=lambda pair: (pair[1], pair[0].id))
    return found


# -- boundary changes --------------------------------------------------------------


def relocation_report(
    db: Database,
    principal: Principal,
    *,
    now: datetime | None = None,
    status: str | Sequence[str] | None = None,
    locator: LocateService | None = None,
    jurisdiction: Jurisdiction | None = None,
) -> list[dict[str, Any]]:
    """List incidents whose place falls in another unit today than the one they went to.

    Incidents keep the units they were dispatched to; this only reports.
    One entry per incident: ``id``, ``public_id``, ``status`` and
    ``changes`` — per layer and level, the unit then and the unit now
    (None: no unit covers the place today).
    """
    principal.require(P.INCIDENTS_READ)
    seen = _jurisdiction(db, principal, jurisdiction)
    when = _now(now)
    located = _seen_incidents(
        db, principal, seen, with_unlocated=False, status=_statuses(status), located_only=True
    )
    incidents = [i for i in located if i.units]
    if not incidents:
        return []
    lon = np.array([i.lon for i in incidents], dtype=float)
    lat = np.array([i.lat for i in incidents], dtype=float)
    today = _locator(db, locator).locate_many(lon, lat, crs="cgcs2000", at=when)
    report = []
    for row, incident in enumerate(incidents):
        changes = []
        for layer, levels in incident.units.items():
            for level, code in levels.items():
                column = f"{layer}_{level}"
                now_code = today[column].iat[row] if column in today.columns else None
                now_code = None if now_code is None or now_code != now_code else str(now_code)
                if now_code != code:
                    changes.append(
                        {"layer": layer, "level": level, "dispatched": code, "today": now_code}
                    )
        if changes:
            report.append(
                {
                    "id": incident.id,
                    "public_id": incident.public_id,
                    "status": incident.status,
                    "category": incident.category,
                    "changes": changes,
                }
            )
    return report


def relocate(
    db: Database,
    principal: Principal,
    ids: Sequence[int],
    *,
    reason: str,
    now: datetime | None = None,
    locator: LocateService | None = None,
    jurisdiction: Jurisdiction | None = None,
) -> list[dict[str, Any]]:
    """Re-locate incidents to the units of today's boundaries: explicit and audited.

    Each incident keeps its status; its units and responsible people become
    today's, and a ``relocate`` transition records both. A place that is not
    certain today (ambiguous, outside every unit) is left as it is and
    reported so. Returns one entry per id: ``id``, ``relocated``, ``from``,
    ``to`` (lowest unit per layer) or ``reason``.
    """
    principal.require(P.INCIDENTS_DISPATCH)
    _text(reason, "reason", MAX_NOTE, lines=True)
    if not ids or len(ids) > 10_000:
        raise InputError("give 1 to 10000 incident ids", field="ids")
    when = _now(now)
    seen = _jurisdiction(db, principal, jurisdiction)
    service = _locator(db, locator)
    results = []
    for incident_id in dict.fromkeys(ids):
        incident = get(db, principal, incident_id, jurisdiction=seen)
        if incident.lon is None or incident.lat is None:
            results.append({"id": incident_id, "relocated": False, "reason": "no point"})
            continue
        answer = service.locate(incident.lon, incident.lat, crs="cgcs2000", at=when)
        problem = _review_reason(answer)
        if problem is not None:
            results.append({"id": incident_id, "relocated": False, "reason": problem})
            continue
        units = _units_of(answer)
        if units == incident.units:
            results.append({"id": incident_id, "relocated": False, "reason": "unchanged"})
            continue
        detail = {"from": _lowest(incident.units), "to": _lowest(units)}
        _apply(
            db,
            principal,
            incident,
            "relocate",
            {"units": units, "responsible": _responsible(answer.responsible), "updated_at": when},
            note=reason,
            when=when,
            detail=detail,
            units=units,
        )
        results.append({"id": incident_id, "relocated": True, **detail})
    return results


# -- evaluation input --------------------------------------------------------------


def frame(
    db: Database,
    principal: Principal,
    *,
    since: datetime | None = None,
    until: datetime | None = None,
    jurisdiction: Jurisdiction | None = None,
) -> pd.DataFrame:
    """Return the caller's incidents as a table for evaluation (no personal data).

    Columns: ``id``, ``public_id``, ``channel``, ``category``,
    ``class_code``, ``status``, ``event_time``, ``received_at``,
    ``deadline_at``, ``closed_at``, ``lon``, ``lat``, ``feedback_score``,
    ``review_reason``, ``escalated_to`` and one ``<layer>_<level>`` column of
    unit codes per level located. Times are aware UTC.
    """
    principal.require(P.INCIDENTS_READ)
    seen = _jurisdiction(db, principal, jurisdiction)
    tax = _taxonomy(None)
    records = []
    for incident in _seen_incidents(db, principal, seen, since=since, until=until):
        try:
            class_code = tax.get(incident.category).class_code
        except InputError:  # a category dropped from the taxonomy since
            class_code = incident.category[:2]
        record: dict[str, Any] = {
            "id": incident.id,
            "public_id": incident.public_id,
            "channel": incident.channel,
            "category": incident.category,
            "class_code": class_code,
            "status": incident.status,
            "event_time": incident.event_time,
            "received_at": incident.received_at,
            "deadline_at": incident.deadline_at,
            "closed_at": incident.closed_at,
            "lon": incident.lon,
            "lat": incident.lat,
            "feedback_score": incident.feedback_score,
            "review_reason": incident.review_reason,
            "escalated_to": incident.escalated_to,
        }
        for layer, levels in incident.units.items():
            for level, code in levels.items():
                record[f"{layer}_{level}"] = code
        records.append(record)
    columns = [
        "id",
        "public_id",
        "channel",
        "category",
        "class_code",
        "status",
        "event_time",
        "received_at",
        "deadline_at",
        "closed_at",
        "lon",
        "lat",
        "feedback_score",
        "review_reason",
        "escalated_to",
    ]
    table = pd.DataFrame.from_records(records)
    if table.empty:
        return pd.DataFrame(columns=columns)
    for column in ("event_time", "received_at", "deadline_at", "closed_at"):
        table[column] = pd.to_datetime(table[column], utc=True)
    return table.sort_values("id").reset_index(drop=True)
