"""Open311 GeoReport v2 under ``/open311/v2/``: existing 311 clients and apps post to us unchanged.

The standard's six methods (plus discovery) on top of the incident service
(:mod:`gis.incidents.service`), in JSON or XML (``.json``/``.xml``):

- ``services`` and ``services/{code}`` are public (categories are not sensitive);
- everything else needs ``api_key`` — a query or form parameter, as the
  standard uses it, or the usual ``X-API-Key``/``Authorization: Bearer``
  headers — and answers within the key's jurisdiction;
- with ``TONGGE_OPEN311_PUBLIC_READ`` on, ``requests`` and ``requests/{id}``
  also answer without a key, with the status, category and unit only.

Errors are the standard's list, ``[{"code": 400, "description": "…"}]``,
with the matching HTTP status (:mod:`api.errors`).
"""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, Header, Path, Query, Request
from fastapi.responses import Response

from api.deps import get_db
from api.jsontext import StrictJSONResponse
from api.permissions import permission_for
from api.security import Security, client_address
from gis.access import Principal
from gis.access.principal import SYSTEM
from gis.errors import AuthenticationError, NotFoundError
from gis.incidents import open311 as spec
from gis.incidents.taxonomy import Taxonomy, load_taxonomy
from gis.repository import Database

router = APIRouter(prefix="/open311/v2", tags=["open311"])

PREFIX = "/open311/v2"
_FORMAT = Path(
    pattern="^(json|xml)$", description="Answer format: `json` or `xml`.", examples=["json"]
)
_MEDIA = {"json": "application/json; charset=utf-8", "xml": "text/xml; charset=utf-8"}


def _taxonomy(request: Request) -> Taxonomy:
    return load_taxonomy(request.app.state.settings.incident_taxonomy)


async def _api_key(request: Request) -> str | None:
    # The standard sends api_key as a query parameter, or as a form field of
    # the POST; FastAPI has parsed (and cached) the form by now.
    key = request.query_params.get("api_key")
    if key is None and request.method == "POST":
        value = (await request.form()).get("api_key")
        key = value if isinstance(value, str) else None
    return key.strip() or None if key is not None else None


def _authenticate(request: Request, api_key: str | None, *, public: bool) -> Principal | None:
    """Return the caller named by ``api_key`` or the headers; None: anonymous public read."""
    security: Security = request.app.state.security
    headers: dict[str, str] | Any = request.headers
    if api_key is not None:
        headers = {"x-api-key": api_key}
    elif "x-api-key" not in headers and "authorization" not in headers:
        if public and request.app.state.settings.open311_public_read:
            security.limiter.take(
                f"open311-public:{client_address(request)}",
                rate=security.settings.rate_limit_per_minute,
            )
            return None
        raise AuthenticationError(
            "api_key: required (a query or form parameter, or the X-API-Key header)"
        )
    principal = security.admit(headers)
    route = request.scope.get("route")
    permission_for(request.method, getattr(route, "path", request.url.path)).check(principal)
    return dataclasses.replace(principal, client=client_address(request))


def _signed_in(request: Request, api_key: Annotated[str | None, Depends(_api_key)]) -> Principal:
    principal = _authenticate(request, api_key, public=False)
    assert principal is not None
    return principal


def _reader(
    request: Request, api_key: Annotated[str | None, Depends(_api_key)]
) -> Principal | None:
    return _authenticate(request, api_key, public=True)


#: The caller, with a key (or a bearer token).
Caller = Annotated[Principal, Depends(_signed_in)]
#: The caller, or None for an anonymous read in the public-read mode.
Reader = Annotated[Principal | None, Depends(_reader)]


def _answer(
    format: str,
    content: Any,
    *,
    root: str,
    tag: str | None,
    status_code: int = 200,
) -> Response:
    if format == "xml":
        return Response(
            spec.to_xml(root, tag, content), status_code=status_code, media_type=_MEDIA["xml"]
        )
    return StrictJSONResponse(content, status_code=status_code, media_type=_MEDIA["json"])


def _jurisdiction_id(
    jurisdiction_id: Annotated[
        str | None,
        Query(
            max_length=64,
            description="Accepted and ignored: one jurisdiction per endpoint; the key's "
            "units decide what you see.",
        ),
    ] = None,
) -> None:
    return None


@router.get(
    "/discovery.{format}",
    summary="Service discovery 服务发现",
    dependencies=[Depends(_jurisdiction_id)],
)
def discovery(request: Request, format: Annotated[str, _FORMAT]) -> Response:
    """Return the standard's discovery document: this endpoint, its formats and version."""
    base = str(request.base_url).rstrip("/") + PREFIX
    document = {
        "changeset": "2026-12-01T00:00:00+08:00",
        "contact": "tongge 同格 — see /docs",
        "key_service": "API keys are issued by the administrator (tongge keys create)",
        "endpoints": [
            {
                "specification": "http://wiki.open311.org/GeoReport_v2",
                "url": base,
                "changeset": "2026-12-01T00:00:00+08:00",
                "type": "production",
                "formats": ["application/json", "text/xml"],
            }
        ],
    }
    if format == "xml":
        endpoints = document.pop("endpoints")
        return Response(
            spec.to_xml("discovery", None, {**document, "endpoints": endpoints}),
            media_type=_MEDIA["xml"],
        )
    return StrictJSONResponse(document)


@router.get(
    "/services.{format}",
    summary="Service list (categories) 事件类别",
    dependencies=[Depends(_jurisdiction_id)],
)
def services(request: Request, format: Annotated[str, _FORMAT]) -> Response:
    """Return every category as a realtime service (public: categories are not sensitive)."""
    return _answer(format, spec.service_list(_taxonomy(request)), root="services", tag="service")


@router.get(
    "/services/{service_code}.{format}",
    summary="Service definition 类别定义",
    dependencies=[Depends(_jurisdiction_id)],
)
def service_definition(
    request: Request,
    service_code: Annotated[str, Path(max_length=16)],
    format: Annotated[str, _FORMAT],
) -> Response:
    """Return a category's definition (no extra attributes: the answer is empty)."""
    body = spec.service_definition(_taxonomy(request), service_code)
    return _answer(format, body, root="service_definition", tag=None)


@router.post(
    "/requests.{format}",
    summary="Post a service request 上报事件",
    status_code=201,
    responses={
        200: {"description": "A retry with the same Idempotency-Key: the same request"},
        409: {"description": "The Idempotency-Key was used with another request"},
    },
)
def post_request(
    request: Request,
    caller: Caller,
    format: Annotated[str, _FORMAT],
    service_code: Annotated[str | None, Form(max_length=16)] = None,
    lat: Annotated[str | None, Form(max_length=32, description="WGS84 latitude")] = None,
    long: Annotated[str | None, Form(max_length=32, description="WGS84 longitude")] = None,
    address_string: Annotated[str | None, Form(max_length=500)] = None,
    address_id: Annotated[str | None, Form(max_length=64)] = None,
    description: Annotated[str | None, Form(max_length=spec.MAX_DESCRIPTION)] = None,
    first_name: Annotated[str | None, Form(max_length=spec.MAX_NAME)] = None,
    last_name: Annotated[str | None, Form(max_length=spec.MAX_NAME)] = None,
    phone: Annotated[str | None, Form(max_length=32)] = None,
    email: Annotated[str | None, Form(max_length=254, description="Not stored.")] = None,
    device_id: Annotated[str | None, Form(max_length=100, description="Not stored.")] = None,
    account_id: Annotated[str | None, Form(max_length=100, description="Not stored.")] = None,
    media_url: Annotated[str | None, Form(max_length=spec.MAX_URL)] = None,
    jurisdiction_id: Annotated[str | None, Form(max_length=64)] = None,
    api_key: Annotated[str | None, Form(max_length=200, description="Your API key.")] = None,
    datum: Annotated[
        str | None,
        Form(
            max_length=16,
            description="Extension: the datum of lat/long — wgs84 (default), cgcs2000, "
            "gcj02 (Amap, Tencent) or bd09 (Baidu). Never guessed.",
        ),
    ] = None,
    idempotency_key: Annotated[
        str | None,
        Header(
            alias="Idempotency-Key",
            max_length=200,
            description="The same key again returns the same request (and stores no second).",
        ),
    ] = None,
) -> Response:
    """Take in a service request as an incident (channel ``open311``), located in every layer."""
    now = datetime.now(UTC).replace(microsecond=0)
    fields = {
        "service_code": service_code,
        "lat": lat,
        "long": long,
        "address_string": address_string,
        "address_id": address_id,
        "description": description,
        "first_name": first_name,
        "last_name": last_name,
        "phone": phone,
        "media_url": media_url,
        "datum": datum,
    }
    taxonomy = _taxonomy(request)
    state = request.app.state
    result = spec.intake_request(
        state.db,
        caller,
        fields,
        taxonomy=taxonomy,
        idempotency_key=idempotency_key,
        now=now,
        locator=state.locator,
    )
    incident = result.incident
    body = [
        {
            "service_request_id": incident.public_id,
            "token": idempotency_key or incident.public_id,
            "service_notice": spec.request_item(incident, taxonomy)["service_notice"],
            "account_id": None,
        }
    ]
    return _answer(
        format,
        body,
        root="service_requests",
        tag="request",
        status_code=201 if result.created else 200,
    )


@router.get("/requests.{format}", summary="Service requests 事件查询")
def get_requests(
    request: Request,
    caller: Reader,
    format: Annotated[str, _FORMAT],
    service_request_id: Annotated[
        str | None,
        Query(max_length=4000, description="Comma-separated ids (overrides every other filter)."),
    ] = None,
    service_code: Annotated[
        str | None, Query(max_length=1000, description="Comma-separated service codes.")
    ] = None,
    start_date: Annotated[str | None, Query(max_length=40)] = None,
    end_date: Annotated[str | None, Query(max_length=40)] = None,
    status: Annotated[
        str | None, Query(max_length=20, description="open, closed or open,closed")
    ] = None,
    jurisdiction_id: Annotated[str | None, Query(max_length=64)] = None,
    api_key: Annotated[str | None, Query(max_length=200)] = None,
    page_size: Annotated[
        int | None, Query(ge=1, le=1000, description="Extension: most requests (default 1000).")
    ] = None,
    page: Annotated[int, Query(ge=1, le=100_000, description="Extension: page number.")] = 1,
) -> Response:
    """Return service requests within your jurisdiction (the last 90 days by default)."""
    db: Database = get_db(request)
    taxonomy = _taxonomy(request)
    principal, public = _as_reader(caller)
    jurisdiction = request.app.state.security.jurisdictions.jurisdiction(principal)
    if service_request_id is not None:
        found = []
        for public_id in spec.parse_ids(service_request_id):
            try:
                found.append(spec.find_request(db, principal, public_id, jurisdiction=jurisdiction))
            except NotFoundError:
                continue
    else:
        since, until = spec.parse_range(start_date, end_date, now=datetime.now(UTC))
        statuses = spec.statuses_for(status)
        codes = None
        if service_code is not None and service_code.strip():
            codes = [c.strip() for c in service_code.split(",") if c.strip()]
            for code in codes:
                taxonomy.get(code)
        size = min(page_size or 1000, request.app.state.settings.page_size_limit)
        found = spec.search_requests(
            db,
            principal,
            statuses=statuses,
            codes=codes,
            since=since,
            until=until,
            limit=size,
            offset=(page - 1) * size,
            jurisdiction=jurisdiction,
        )
    items = [spec.request_item(i, taxonomy, public=public) for i in found]
    return _answer(format, items, root="service_requests", tag="request")


@router.get("/requests/{service_request_id}.{format}", summary="One service request 事件详情")
def get_request(
    request: Request,
    caller: Reader,
    service_request_id: Annotated[str, Path(max_length=64)],
    format: Annotated[str, _FORMAT],
    jurisdiction_id: Annotated[str | None, Query(max_length=64)] = None,
    api_key: Annotated[str | None, Query(max_length=200)] = None,
) -> Response:
    """Return one service request (a list of one, as the standard says)."""
    db: Database = get_db(request)
    principal, public = _as_reader(caller)
    jurisdiction = request.app.state.security.jurisdictions.jurisdiction(principal)
    incident = spec.find_request(db, principal, service_request_id, jurisdiction=jurisdiction)
    item = spec.request_item(incident, _taxonomy(request), public=public)
    return _answer(format, [item], root="service_requests", tag="request")


@router.get("/tokens/{token}.{format}", summary="Request id of a token 令牌查询")
def get_token(
    request: Request,
    caller: Caller,
    token: Annotated[str, Path(max_length=200)],
    format: Annotated[str, _FORMAT],
    jurisdiction_id: Annotated[str | None, Query(max_length=64)] = None,
    api_key: Annotated[str | None, Query(max_length=200)] = None,
) -> Response:
    """Return the service request id of a token (requests are created at once: id = token)."""
    db: Database = get_db(request)
    jurisdiction = request.app.state.security.jurisdictions.jurisdiction(caller)
    incident = spec.find_token(db, caller, token, jurisdiction=jurisdiction)
    body = [{"service_request_id": incident.public_id, "token": token}]
    return _answer(format, body, root="service_requests", tag="request")


def _as_reader(caller: Principal | None) -> tuple[Principal, bool]:
    # Anonymous (public-read mode): the whole deployment, redacted to status,
    # category and unit.
    return (SYSTEM, True) if caller is None else (caller, False)
