"""Open311 GeoReport v2 in terms of incidents: services, drafts, request items, XML.

Pure mappings (no HTTP) between the GeoReport v2 vocabulary and ours, used
by ``api/routers/open311.py``:

- a *service* is a category of the taxonomy (``service_code`` = subclass
  code, ``group`` = its class), each answered in real time (``type``
  ``realtime``, no extra attributes);
- a *service request* is an incident; its ``service_request_id`` is the
  incident's public id; ``status`` is ``open`` or ``closed`` (our lifecycle
  is kept in ``status_notes``); times are ISO 8601 with their offset (China
  time);
- a POST's fields become an :class:`~gis.incidents._model.IncidentDraft`.
  Coordinates are WGS84 as the standard says; the extension parameter
  ``datum`` (``wgs84``, ``cgcs2000``, ``gcj02``, ``bd09``) declares phone
  apps' offset coordinates (never guessed). The reporter's contact is kept
  minimal: a name and a phone number; email, device and account ids are
  not stored.

Examples
--------
>>> statuses_for("open,closed") == OPEN | CLOSED
True
>>> statuses_for("pending")
Traceback (most recent call last):
...
gis.errors.InputError: status: 'pending' is not open or closed
>>> to_xml("errors", "error", [{"code": 404, "description": "no <id>"}]).splitlines()[1]
'<errors><error><code>404</code><description>no &lt;id&gt;</description></error></errors>'
"""

from __future__ import annotations

import math
import re
from collections.abc import Collection, Iterable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit
from xml.sax.saxutils import escape

from gis.access import Jurisdiction, Permission, Principal
from gis.errors import InputError, NotFoundError
from gis.incidents import service
from gis.incidents._model import (
    CLOSED_STATUSES,
    DATUMS,
    OPEN_STATUSES,
    STATUSES,
    Incident,
    IncidentDraft,
    IncidentLocation,
    IntakeResult,
)
from gis.incidents.taxonomy import Category, Taxonomy
from gis.locate import LocateService
from gis.repository import Database
from gis.times import isoformat_local, parse_time

__all__ = [
    "CHANNEL",
    "CLOSED",
    "MAX_DESCRIPTION",
    "MAX_IDS",
    "MAX_RANGE",
    "OPEN",
    "draft_from_form",
    "find_request",
    "find_token",
    "intake_request",
    "parse_ids",
    "parse_range",
    "request_item",
    "search_requests",
    "service_definition",
    "service_list",
    "statuses_for",
    "to_xml",
]

CHANNEL = "open311"
OPEN = frozenset(OPEN_STATUSES)
CLOSED = frozenset(CLOSED_STATUSES)
#: The standard's limit on a description.
MAX_DESCRIPTION = 4000
MAX_ADDRESS = 500
MAX_NAME = 100
MAX_URL = 2048
#: Most ids in one ``service_request_id`` list.
MAX_IDS = 100
#: The widest ``start_date``..``end_date`` range (and the default window).
MAX_RANGE = timedelta(days=90)
_PHONE = re.compile(r"^\+?[0-9][0-9 ()\-]{2,24}$")
# A resident identity card number (GB 11643): never kept, whatever field it is sent in.
_ID_NUMBER = re.compile(r"\b\d{17}[\dXx]\b")


def service_list(taxonomy: Taxonomy) -> list[dict[str, Any]]:
    """Return GET services: one realtime service per category, grouped by class."""
    classes = {c.code: c for c in taxonomy.classes}
    return [
        {
            "service_code": category.code,
            "service_name": _name(category),
            "description": category.description
            or f"处理时限 {category.deadline_hours} 小时 (deadline {category.deadline_hours} h)",
            "metadata": False,
            "type": "realtime",
            "keywords": ", ".join(
                k for k in (category.name_zh, category.name_en, category.class_code) if k
            ),
            "group": _class_name(classes, category.class_code),
        }
        for category in taxonomy.categories
    ]


def service_definition(taxonomy: Taxonomy, code: str) -> dict[str, Any]:
    """Return GET service definition: the code and its (empty) attributes.

    Raises
    ------
    NotFoundError
        Unknown service code.
    """
    known = {c.code for c in taxonomy.categories}
    if code not in known:
        raise NotFoundError(f"service_code {code[:40]!r} does not exist", field="service_code")
    return {"service_code": code, "attributes": []}


def statuses_for(text: str | None) -> frozenset[str] | None:
    """Return our statuses for an Open311 ``status`` filter (``open``, ``closed``, both)."""
    if text is None or not text.strip():
        return None
    statuses: set[str] = set()
    for word in (w.strip().lower() for w in text.split(",")):
        if word == "open":
            statuses |= OPEN
        elif word == "closed":
            statuses |= CLOSED
        else:
            raise InputError(f"status: {word[:20]!r} is not open or closed", field="status")
    return frozenset(statuses)


def parse_ids(text: str) -> list[str]:
    """Return the ids of a comma-separated ``service_request_id`` list (at most :data:`MAX_IDS`)."""
    ids = [part.strip() for part in text.split(",") if part.strip()]
    if not ids:
        raise InputError("service_request_id: no id given", field="service_request_id")
    if len(ids) > MAX_IDS:
        raise InputError(
            f"service_request_id: {len(ids)} ids, at most {MAX_IDS} at once",
            field="service_request_id",
        )
    return list(dict.fromkeys(ids))


def parse_range(start: str | None, end: str | None, *, now: datetime) -> tuple[datetime, datetime]:
    """Return the ``[start, end]`` times of a GET requests query (at most 90 days).

    Without either, the last 90 days; with one, 90 days from or to it.
    Times are w3 ISO 8601 with an offset (a date alone means China time).
    """
    since = None if start is None or not start.strip() else parse_time(start, field="start_date")
    until = None if end is None or not end.strip() else parse_time(end, field="end_date")
    if since is None and until is None:
        until = now
    if since is None:
        assert until is not None
        since = until - MAX_RANGE
    if until is None:
        until = since + MAX_RANGE
    if until < since:
        raise InputError("end_date: before start_date", field="end_date")
    if until - since > MAX_RANGE:
        raise InputError(
            "end_date: start_date..end_date may not span more than 90 days", field="end_date"
        )
    return since, until


def draft_from_form(form: Mapping[str, str | None], *, taxonomy: Taxonomy) -> IncidentDraft:
    """Return the incident draft of a POST service request's fields.

    Parameters
    ----------
    form : mapping
        The request's fields: ``service_code`` (required), ``lat`` and
        ``long`` or ``address_string`` (one required), ``description``,
        ``first_name``, ``last_name``, ``phone``, ``media_url``; the
        extension ``datum`` names the coordinates' datum (default WGS84).
    taxonomy : Taxonomy
        The categories (``service_code`` must be one).

    The draft has no event time (the standard's POST carries none): the
    incident's is the time it is received.

    Raises
    ------
    InputError
        Naming the field: unknown service code, no location, a coordinate
        that is not a number or out of range, an unknown datum, text over
        its limit, a media URL that is not http(s), an ID number anywhere.
    """
    code = _text(form, "service_code", 16)
    if code is None:
        raise InputError("service_code: required (see services.json)", field="service_code")
    category = taxonomy.get(code)
    location = _location(form)
    address = _text(form, "address_string", MAX_ADDRESS)
    if location is None and address is None:
        if _text(form, "address_id", 64) is not None:
            raise InputError(
                "address_id: not supported here; send lat and long, or address_string",
                field="address_id",
            )
        raise InputError(
            "lat: a location is required: lat and long, or address_string", field="lat"
        )
    description = _text(form, "description", MAX_DESCRIPTION) or ""
    contact = _contact(form)
    media = _media(form)
    for name, value in (("description", description), ("address_string", address)):
        if value and _ID_NUMBER.search(value):
            raise InputError(
                f"{name}: contains what looks like an ID number (身份证号); leave it out",
                field=name,
            )
    return IncidentDraft(
        channel=CHANNEL,
        category=category.code,
        description=description,
        location=location,
        address=address,
        event_time=None,
        external_id=None,
        reporter_contact=contact,
        media=media,
    )


def _location(form: Mapping[str, str | None]) -> IncidentLocation | None:
    lat_text, lon_text = _text(form, "lat", 32), _text(form, "long", 32)
    datum = (_text(form, "datum", 16) or "wgs84").lower().replace("-", "")
    if datum not in DATUMS:
        raise InputError(f"datum: {datum[:16]!r} is not one of {', '.join(DATUMS)}", field="datum")
    if lat_text is None and lon_text is None:
        return None
    if lat_text is None or lon_text is None:
        missing = "lat" if lat_text is None else "long"
        raise InputError(f"{missing}: lat and long go together", field=missing)
    lat, lon = _number(lat_text, "lat", 90.0), _number(lon_text, "long", 180.0)
    return IncidentLocation(x=lon, y=lat, datum=datum, accuracy_m=None)  # type: ignore[arg-type]


def _number(text: str, name: str, bound: float) -> float:
    try:
        value = float(text)
    except ValueError:
        raise InputError(f"{name}: {text[:32]!r} is not a number", field=name) from None
    if not math.isfinite(value) or abs(value) > bound:
        raise InputError(f"{name}: {text[:32]!r} is out of range (±{bound:g})", field=name)
    return value


def _contact(form: Mapping[str, str | None]) -> str | None:
    name = " ".join(
        part
        for part in (_text(form, "first_name", MAX_NAME), _text(form, "last_name", MAX_NAME))
        if part
    )
    phone = _text(form, "phone", 32)
    if phone is not None:
        if _ID_NUMBER.search(phone.replace(" ", "")):
            raise InputError(
                "phone: looks like an ID number (身份证号); send a phone number only",
                field="phone",
            )
        if not _PHONE.match(phone):
            raise InputError(f"phone: {phone[:32]!r} is not a phone number", field="phone")
    if _ID_NUMBER.search(name):
        raise InputError("first_name: looks like an ID number (身份证号)", field="first_name")
    contact = " ".join(part for part in (name, phone) if part)
    return contact or None


def _media(form: Mapping[str, str | None]) -> tuple[str, ...]:
    url = _text(form, "media_url", MAX_URL)
    if url is None:
        return ()
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise InputError("media_url: not an http(s) URL", field="media_url")
    return (url,)


def _text(form: Mapping[str, str | None], name: str, limit: int) -> str | None:
    value = form.get(name)
    if value is None:
        return None
    value = str(value).strip()
    if "\x00" in value:
        raise InputError(f"{name}: contains a NUL character", field=name)
    if len(value) > limit:
        raise InputError(f"{name}: longer than {limit} characters", field=name)
    return value or None


def find_request(
    db: Database,
    principal: Principal,
    request_id: str,
    *,
    jurisdiction: Jurisdiction | None = None,
) -> Incident:
    """Return the incident whose public id is ``request_id``, in the caller's jurisdiction.

    Raises
    ------
    NotFoundError
        No such incident, or not the caller's (alike).
    """
    principal.require(Permission.INCIDENTS_READ)
    with db.reader() as repo:
        row = repo.incidents.get_public(public_id=request_id)
    if row is None:
        raise NotFoundError(
            f"service_request_id {request_id[:40]!r} does not exist", field="service_request_id"
        )
    try:
        return service.get(db, principal, int(row["id"]), jurisdiction=jurisdiction)
    except NotFoundError:
        raise NotFoundError(
            f"service_request_id {request_id[:40]!r} does not exist", field="service_request_id"
        ) from None


def find_token(
    db: Database,
    principal: Principal,
    token: str,
    *,
    jurisdiction: Jurisdiction | None = None,
) -> Incident:
    """Return the incident of a token: the caller's ``Idempotency-Key``, or a request id.

    A client whose POST got no answer (a time-out) can ask with the key it
    sent, which is the token the POST answers with.
    """
    principal.require(Permission.INCIDENTS_READ)
    with db.reader() as repo:
        row = repo.incidents.by_key(scope=principal.actor, key=token)
    if row is not None:
        return service.get(db, principal, int(row["incident_id"]), jurisdiction=jurisdiction)
    try:
        return find_request(db, principal, token, jurisdiction=jurisdiction)
    except NotFoundError:
        raise NotFoundError(f"token {token[:40]!r} does not exist", field="token") from None


def intake_request(
    db: Database,
    principal: Principal,
    form: Mapping[str, str | None],
    *,
    taxonomy: Taxonomy,
    idempotency_key: str | None,
    now: datetime,
    locator: LocateService | None = None,
) -> IntakeResult:
    """Take in a POST service request (see :func:`draft_from_form`) as an incident.

    The standard's POST carries no event time: the incident's is the time it
    is received, and not part of the request, so that a retry with the same
    ``Idempotency-Key`` sent later (or racing the first) returns the first
    incident; a retry with another body is
    :class:`~gis.incidents.IdempotencyConflict`.
    """
    draft = draft_from_form(form, taxonomy=taxonomy)
    return service.intake(
        db,
        principal,
        draft,
        idempotency_key=idempotency_key,
        now=now,
        locator=locator,
        taxonomy=taxonomy,
    )


def search_requests(
    db: Database,
    principal: Principal,
    *,
    statuses: Collection[str] | None,
    codes: Sequence[str] | None,
    since: datetime,
    until: datetime,
    limit: int,
    offset: int,
    jurisdiction: Jurisdiction | None = None,
) -> list[Incident]:
    """Return the caller's incidents of any of ``codes`` (all: None), newest first, one page."""
    wanted = offset + limit
    found: dict[int, Incident] = {}
    choices: list[str | None] = list(codes) if codes else [None]
    for code in choices:
        for incident in service.search(
            db,
            principal,
            status=sorted(statuses) if statuses is not None else None,
            category=code,
            since=since,
            until=until,
            limit=wanted,
            offset=0,
            jurisdiction=jurisdiction,
        ):
            found[incident.id] = incident
    ordered = sorted(found.values(), key=lambda i: (i.received_at, i.id), reverse=True)
    return ordered[offset:wanted]


def request_item(incident: Incident, taxonomy: Taxonomy, *, public: bool = False) -> dict[str, Any]:
    """Return the GET requests item of ``incident``.

    ``public`` (the public-read mode, no key) keeps only the id, the status,
    the category and the unit responsible: never descriptions, contacts,
    addresses, media or the exact place.
    """
    status = "open" if incident.status in OPEN else "closed"
    try:
        name = _name(taxonomy.get(incident.category))
    except InputError:  # a category since removed from the taxonomy
        name = incident.category
    item: dict[str, Any] = {
        "service_request_id": incident.public_id,
        "status": status,
        "service_code": incident.category,
        "service_name": name,
        "agency_responsible": agency(incident.units),
    }
    if public:
        return item
    notes = STATUSES.get(incident.status, incident.status)
    if incident.review_reason:
        notes = f"{notes}: {incident.review_reason}"
    item.update(
        {
            "status_notes": notes,
            "description": incident.description,
            "service_notice": f"处理时限 deadline {isoformat_local(incident.deadline_at)}",
            "requested_datetime": isoformat_local(incident.received_at),
            "updated_datetime": isoformat_local(incident.updated_at or incident.received_at),
            "expected_datetime": isoformat_local(incident.deadline_at),
            "address": incident.address,
            "address_id": None,
            "zipcode": None,
            "lat": incident.lat,
            "long": incident.lon,
            "media_url": incident.media[0] if incident.media else None,
        }
    )
    return item


def agency(units: Mapping[str, Mapping[str, str]]) -> str | None:
    """Return the unit an incident is handled by: the finest governance unit (else any).

    Examples
    --------
    >>> agency({"police": {"beat": "P01X"}, "governance": {"grid": "350502001001001",
    ...         "community": "350502001001"}})
    'governance:350502001001001'
    >>> agency({}) is None
    True
    """
    layers: Sequence[str] = ["governance", *sorted(u for u in units if u != "governance")]
    for layer in layers:
        codes = list((units.get(layer) or {}).values())
        if codes:
            return f"{layer}:{max(codes, key=len)}"
    return None


def _name(category: Category) -> str:
    return f"{category.name_zh} {category.name_en}".strip()


def _class_name(classes: Mapping[str, Any], code: str) -> str:
    found = classes.get(code)
    return f"{found.name_zh} {found.name_en}".strip() if found is not None else code


def to_xml(
    root: str, tag: str | None, content: Iterable[Mapping[str, Any]] | Mapping[str, Any]
) -> str:
    """Return the standard's XML form: ``<root><tag>…</tag>…</root>`` for a list.

    With ``tag`` None, ``content`` is one mapping written as ``root``'s
    children (a service definition). Lists inside (a definition's
    ``attributes``) are written ``<attributes><attribute>…</attribute></attributes>``;
    ``None`` is an empty element; booleans are ``true``/``false``.
    """
    if tag is None:
        assert isinstance(content, Mapping)
        body = _element(root, content)
    else:
        items = "".join(_element(tag, item) for item in content)
        body = f"<{root}>{items}</{root}>"
    return '<?xml version="1.0" encoding="utf-8"?>\n' + body


def _element(tag: str, value: Any) -> str:
    if isinstance(value, Mapping):
        inner = "".join(_element(key, child) for key, child in value.items())
        return f"<{tag}>{inner}</{tag}>"
    if isinstance(value, list):
        singular = tag[:-1] if tag.endswith("s") else tag
        return f"<{tag}>{''.join(_element(singular, v) for v in value)}</{tag}>"
    if value is None:
        return f"<{tag}></{tag}>"
    if isinstance(value, bool):
        return f"<{tag}>{'true' if value else 'false'}</{tag}>"
    return f"<{tag}>{escape(str(value))}</{tag}>"
