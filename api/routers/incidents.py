"""Incidents 事件: intake (idempotent), lifecycle, overdue list, boundary-change reports.

Thin: every route calls :mod:`gis.incidents.service` with the caller's
principal, jurisdiction and the application's locate service.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any, TypeVar

from fastapi import APIRouter, Depends, Header, Path, Query, Request, Response

from api.deps import get_db, page_size
from api.schemas.incidents import (
    CategoryOut,
    DuplicateOut,
    IncidentIn,
    IncidentOut,
    IncidentReceipt,
    LocationIn,
    RelocateIn,
    RelocateOut,
    RelocationEntry,
    TransitionIn,
    TransitionOut,
)
from api.security import current_jurisdiction, current_principal
from gis.access import Jurisdiction, Permission, Principal, record
from gis.incidents import (
    Incident,
    IncidentDraft,
    IncidentLocation,
    IntakeResult,
    load_taxonomy,
    service,
)
from gis.locate import LocateService
from gis.repository import Database
from gis.times import parse_time

_R = TypeVar("_R")

router = APIRouter(prefix="/api/v1/incidents", tags=["incidents"])

_ID = Annotated[int, Path(ge=1, le=2**63 - 1, description="The incident's id.")]


@dataclass(frozen=True)
class Caller:
    """Who asks (their principal and jurisdiction) and the database: every route's first needs."""

    db: Database
    principal: Principal
    jurisdiction: Jurisdiction

    def call(self, function: Callable[..., _R], *args: Any, **options: Any) -> _R:
        """Call a service function for this caller: ``function(db, principal, *args, ...)``."""
        return function(self.db, self.principal, *args, jurisdiction=self.jurisdiction, **options)


def _caller(
    db: Database = Depends(get_db),
    principal: Principal = Depends(current_principal),
    jurisdiction: Jurisdiction = Depends(current_jurisdiction),
) -> Caller:
    return Caller(db, principal, jurisdiction)


_CALLER = Annotated[Caller, Depends(_caller)]


def _split(values: str | None) -> list[str] | None:
    # A comma-separated query value (statuses).
    return [v.strip() for v in values.split(",") if v.strip()] if values else None


def _locator(request: Request) -> LocateService:
    locator: LocateService = request.app.state.locator
    return locator


def _location(body: LocationIn | None) -> IncidentLocation | None:
    if body is None:
        return None
    # The datum is checked by the service (a 400 naming it), not by the schema.
    datum: Any = body.datum
    return IncidentLocation(x=body.x, y=body.y, datum=datum, accuracy_m=body.accuracy_m)


def _out(incident: Incident) -> dict[str, Any]:
    return incident.to_dict()


@router.get(
    "/categories",
    summary="Incident categories 事件分类 (with deadlines)",
    response_model=list[CategoryOut],
)
def categories(request: Request) -> list[dict[str, Any]]:
    """Return the taxonomy: subclass codes to file incidents under, with their deadlines."""
    taxonomy = load_taxonomy(request.app.state.settings.incident_taxonomy)
    names = {c.code: c.name_zh for c in taxonomy.classes}
    return [{**c.to_dict(), "class_name_zh": names[c.class_code]} for c in taxonomy.categories]


@router.post(
    "",
    summary="Take in an incident 事件受理 (idempotent)",
    status_code=201,
    response_model=IncidentOut | IncidentReceipt,
    responses={
        200: {"description": "A retry with the same Idempotency-Key and body: the same incident"},
        409: {"description": "The Idempotency-Key was used with a different body"},
        413: {"description": "The body is too large"},
    },
)
def intake(
    body: IncidentIn,
    response: Response,
    request: Request,
    caller: _CALLER,
    idempotency_key: Annotated[
        str | None,
        Header(
            alias="Idempotency-Key",
            max_length=200,
            description="Makes retries safe: the same key returns the same incident.",
        ),
    ] = None,
) -> dict[str, Any]:
    """Locate the incident in every layer at its event time and hand it to the people there.

    A certain place is ``dispatched`` with the grid worker, community police
    and cadre (三员) of its units; an ambiguous or unmatched one goes to the
    ``review`` queue with its reason — never a guess. A reporter who does
    not see the place's units gets a receipt only. The answer comes once the
    incident is committed (intakes arriving together share one transaction).
    """
    # api.app.TonggeAPI answers this path with api.fastpath_intake.IntakeFastPath
    # (the same steps without the stack's per-request cost); this route
    # documents it in OpenAPI.
    result = service.intake(
        caller.db,
        caller.principal,
        draft_of(body),
        idempotency_key=idempotency_key,
        locator=_locator(request),
    )
    status, headers, answer = intake_answer(result, caller.principal, caller.jurisdiction)
    response.status_code = status
    response.headers.update(headers)
    return answer


def draft_of(body: IncidentIn) -> IncidentDraft:
    """Return the draft an intake body describes (InputError for a bad event time)."""
    return IncidentDraft(
        channel=body.channel,
        category=body.category,
        description=body.description,
        location=_location(body.location),
        address=body.address,
        event_time=None
        if body.event_time is None
        else parse_time(body.event_time, field="event_time"),
        external_id=body.external_id,
        reporter_contact=body.reporter_contact,
        media=tuple(body.media),
    )


def intake_answer(
    result: IntakeResult, principal: Principal, jurisdiction: Jurisdiction
) -> tuple[int, dict[str, str], dict[str, Any]]:
    """Return the status, headers and body answering an intake.

    201 for a new incident, 200 with ``Idempotent-Replayed`` for a retry;
    the whole incident for a caller of its jurisdiction, else the receipt.
    """
    incident = result.incident
    headers = {"Location": f"/api/v1/incidents/{incident.id}"}
    if not result.created:
        headers["Idempotent-Replayed"] = "true"
    status = 201 if result.created else 200
    if service.visible(incident, jurisdiction, principal.actor):
        return status, headers, _out(incident)
    whole = incident.to_dict()
    receipt = ("id", "public_id", "category", "status", "received_at", "deadline_at")
    return status, headers, {name: whole[name] for name in receipt}


@router.get("", summary="Incidents of your units 事件列表", response_model=list[IncidentOut])
def list_incidents(
    caller: _CALLER,
    status: Annotated[
        str | None, Query(max_length=200, description="Statuses, comma-separated.")
    ] = None,
    category: Annotated[str | None, Query(max_length=16)] = None,
    unit: Annotated[
        str | None, Query(max_length=140, description="A unit code, or layer:code.")
    ] = None,
    since: Annotated[str | None, Query(max_length=40, description="Received from.")] = None,
    until: Annotated[str | None, Query(max_length=40, description="Received before.")] = None,
    limit: int = Depends(page_size),
    offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0,
) -> list[dict[str, Any]]:
    """Return the incidents of your jurisdiction, newest first (no reporter contacts)."""
    found = caller.call(
        service.search,
        status=_split(status),
        category=category,
        unit=unit,
        since=None if since is None else parse_time(since, field="since"),
        until=None if until is None else parse_time(until, field="until"),
        limit=limit,
        offset=offset,
    )
    return [_out(i) for i in found]


@router.get("/overdue", summary="Overdue incidents 超期事件", response_model=list[IncidentOut])
def overdue(
    caller: _CALLER,
) -> list[dict[str, Any]]:
    """Return your open incidents whose deadline has passed, the most overdue first."""
    return [_out(i) for i in caller.call(service.overdue)]


@router.post(
    "/escalate-overdue",
    summary="Escalate overdue incidents to the street 超期上报",
    response_model=list[IncidentOut],
)
def escalate_overdue(
    caller: _CALLER,
) -> list[dict[str, Any]]:
    """Escalate every overdue incident being handled in your units to its street (audited)."""
    return [_out(i) for i in caller.call(service.escalate_overdue)]


@router.get(
    "/relocation-report",
    summary="Incidents in another unit today 边界调整影响",
    response_model=list[RelocationEntry],
)
def relocation_report(
    request: Request,
    caller: _CALLER,
    status: Annotated[
        str | None, Query(max_length=200, description="Statuses, comma-separated.")
    ] = None,
) -> list[dict[str, Any]]:
    """List incidents whose place lies in another unit under today's boundaries.

    They keep the units they were dispatched to; ``POST relocate`` moves them.
    """
    return caller.call(service.relocation_report, status=_split(status), locator=_locator(request))


@router.post(
    "/relocate",
    summary="Re-locate incidents to today's units 重新定位 (audited)",
    response_model=list[RelocateOut],
)
def relocate(
    body: RelocateIn,
    request: Request,
    caller: _CALLER,
) -> list[dict[str, Any]]:
    """Move incidents to the units of today's boundaries; each move is a transition."""
    return caller.call(service.relocate, body.ids, reason=body.reason, locator=_locator(request))


@router.get(
    "/{incident_id}",
    summary="One incident 事件详情",
    response_model=IncidentOut,
    responses={404: {"description": "No such incident in your jurisdiction"}},
)
def get_incident(
    incident_id: _ID,
    caller: _CALLER,
) -> dict[str, Any]:
    """Return one incident; handlers also get the reporter's contact (that read is audited)."""
    incident = caller.call(service.get, incident_id)
    principal = caller.principal
    contact = principal.can(Permission.INCIDENTS_HANDLE) and incident.reporter_contact is not None
    if contact:
        target = f"incident:{incident.id}"
        record(caller.db, actor=principal, action="incidents.contact", target=target)
    return incident.to_dict(contact=contact)


@router.get(
    "/{incident_id}/history",
    summary="Transitions of an incident 处置记录",
    response_model=list[TransitionOut],
    responses={404: {"description": "No such incident in your jurisdiction"}},
)
def incident_history(
    incident_id: _ID,
    caller: _CALLER,
) -> list[dict[str, Any]]:
    """Return every step of one incident: who, when, from and to which status, the note."""
    return [step.to_dict() for step in caller.call(service.history, incident_id)]


@router.get(
    "/{incident_id}/duplicates",
    summary="Possible duplicates 疑似重复",
    response_model=list[DuplicateOut],
    responses={404: {"description": "No such incident in your jurisdiction"}},
)
def incident_duplicates(
    incident_id: _ID,
    caller: _CALLER,
    radius_m: Annotated[float | None, Query(gt=0, le=5000)] = None,
    window_hours: Annotated[float | None, Query(gt=0, le=2160)] = None,
) -> list[dict[str, Any]]:
    """Suggest incidents of the same category near this one and close in time (merge them)."""
    pairs = caller.call(
        service.duplicates, incident_id, radius_m=radius_m, window_hours=window_hours
    )
    return [{"distance_m": distance, "incident": _out(other)} for other, distance in pairs]


@router.post(
    "/{incident_id}/transitions",
    summary="Move an incident along its lifecycle 流转",
    response_model=IncidentOut,
    responses={
        404: {"description": "No such incident in your jurisdiction"},
        409: {"description": "The incident changed since the revision given"},
    },
)
def incident_transition(
    incident_id: _ID,
    body: TransitionIn,
    request: Request,
    caller: _CALLER,
) -> dict[str, Any]:
    """Take one action on an incident (audited; only its jurisdiction acts).

    Actions: dispatch, accept, start, resolve, close (with the resident's
    feedback), reopen, reject, merge, escalate.
    """
    incident = caller.call(
        service.transition,
        incident_id,
        body.action,
        note=body.note,
        unit=body.unit,
        location=_location(body.location),
        merged_into=body.merged_into,
        feedback_score=body.feedback_score,
        feedback_text=body.feedback_text,
        revision=body.revision,
        locator=_locator(request),
    )
    return _out(incident)
