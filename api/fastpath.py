"""The dispatch hot path: ``POST /api/v1/geocode``, answered in front of FastAPI's stack.

Dispatchers and the hotline locate incidents one request at a time, many per
second. The lookup itself takes ~0.1 ms; FastAPI's generic machinery around
it (middleware, routing, dependency solving, response encoding) takes
several times that. :class:`TonggeAPI` (the application class) hands exactly
that route to :class:`GeocodeFastPath` before its middleware stack, and
everything else to FastAPI. It is the only way the route is answered, in
tests and when served, so the fast path does itself what the stack would:
the guard's checks in the same order, the configured body limit, CORS
headers, security headers and problem+json for every error, an unexpected
one included. The FastAPI route in :mod:`api.routers.locate` documents the
endpoint in OpenAPI.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass
from typing import Any

import orjson
from pydantic import ValidationError
from starlette.concurrency import run_in_threadpool

from api.errors import (
    PROBLEM_JSON,
    domain_problem,
    problem_body,
    problem_headers,
    validation_problem,
)
from api.hardening import API_HEADERS
from api.permissions import permission_for
from api.schemas.locate import GeocodeRequest
from gis.access import Jurisdiction, Permission, Principal
from gis.errors import TonggeError
from gis.patrol._routes import routes_at

ASGIScope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

_log = logging.getLogger("tongge.api")
PATH = "/api/v1/geocode"
_CREDENTIALS = (b"authorization", b"x-api-key")
_JSON = [(b"content-type", b"application/json"), *API_HEADERS]
_PROBLEM = [(b"content-type", PROBLEM_JSON.encode()), *API_HEADERS]


@dataclass(frozen=True)
class Admitted:
    """A request past the guard's checks: its caller, their area, headers kept, body."""

    principal: Principal
    jurisdiction: Jurisdiction
    headers: dict[str, str]
    body: bytes


class GeocodeFastPath:
    """Answers ``POST /api/v1/geocode`` for ``owner`` (the application, for its state).

    Parameters
    ----------
    owner : FastAPI
        The application: its ``state`` holds the settings, the security
        checks and the locate service once its lifespan has started.
    """

    path = PATH

    def __init__(self, owner: Any) -> None:
        self.owner = owner

    @staticmethod
    def handles(scope: ASGIScope) -> bool:
        """Whether ``scope`` is the geocode request this path answers."""
        return scope["type"] == "http" and scope["path"] == PATH and scope["method"] == "POST"

    async def __call__(self, scope: ASGIScope, receive: Receive, send: Send) -> None:
        """Answer one geocode request; never raises (errors are problem+json)."""
        cors = self._cors_headers(scope)
        try:
            await self._answer(scope, receive, send, cors)
        except Exception:
            # Never a traceback or a plain-text 500 to the client; the log has it.
            _log.exception("unhandled error in POST %s", self.path)
            problem = problem_body(
                500, "Internal error", "the server could not handle this request"
            )
            await _send(send, 500, problem, extra=cors)

    async def _admit(
        self,
        scope: ASGIScope,
        receive: Receive,
        send: Send,
        cors: dict[str, str],
        *,
        headers: tuple[bytes, ...] = (),
    ) -> Admitted | None:
        """Run the guard's checks and read the body; None once a problem was answered.

        The same checks as :func:`api.security.guard`, in the same order
        (credentials, the route's permission, the client's address), then
        the configured body limit (a declared length over it is refused
        before a byte is read). ``headers`` names request headers kept
        besides the credentials (ASGI names are lower case).
        """
        state = self.owner.state
        security = state.security
        wanted = _CREDENTIALS + headers
        kept = {
            name.decode("latin-1"): value.decode("latin-1")
            for name, value in scope.get("headers") or []
            if name in wanted
        }
        try:
            principal = security.admit(kept)
            permission_for("POST", self.path).check(principal)
            client = scope.get("client")
            principal = dataclasses.replace(principal, client=client[0] if client else None)
            jurisdiction = security.jurisdictions.jurisdiction(principal)
        except TonggeError as error:
            await _send_problem(send, error, cors)
            return None
        limit = state.settings.max_body_bytes
        declared = _content_length(scope)
        if declared is not None and declared > limit:
            await _send(send, 413, _too_large(limit), extra=cors)
            return None
        body = bytearray()
        more = True
        while more:
            message = await receive()
            body += message.get("body", b"")
            more = message.get("more_body", False)
            if len(body) > limit:
                await _send(send, 413, _too_large(limit), extra=cors)
                return None
        return Admitted(principal, jurisdiction, kept, bytes(body))

    async def _answer(
        self, scope: ASGIScope, receive: Receive, send: Send, cors: dict[str, str]
    ) -> None:
        admitted = await self._admit(scope, receive, send, cors)
        if admitted is None:
            return
        state = self.owner.state
        principal, jurisdiction = admitted.principal, admitted.jurisdiction
        locator = state.locator
        parsed = parse_geocode(admitted.body)
        if isinstance(parsed, GeocodeRequest) and not locator.ready(
            at=parsed.at, address=parsed.address is not None
        ):
            # The indexes for that time must be built first (seconds): off the
            # event loop, so that every other request goes on meanwhile.
            status, answer = await run_in_threadpool(
                answer_geocode, locator, parsed, jurisdiction=jurisdiction
            )
        else:
            status, answer = answer_geocode(locator, parsed, jurisdiction=jurisdiction)
        if status == 200 and may_patrol(principal):
            # A database read: off the event loop. Only callers who walk or
            # plan routes pay for it (dispatchers, the hot path, do not).
            answer = await run_in_threadpool(
                with_routes, state.db, answer, jurisdiction=jurisdiction
            )
        await _send(send, status, answer, extra=cors)

    def _cors_headers(self, scope: ASGIScope) -> dict[str, str]:
        # What Starlette's CORSMiddleware adds to a simple (non-preflight)
        # answer; preflight OPTIONS requests go to the application's.
        allowed = self.owner.state.settings.cors_origins
        if not allowed:
            return {}
        origin = next((v for n, v in scope.get("headers") or [] if n == b"origin"), None)
        if origin is None:
            return {}
        text = origin.decode("latin-1")
        if "*" in allowed:
            return {"Access-Control-Allow-Origin": "*"}
        if text in allowed:
            return {"Access-Control-Allow-Origin": text, "Vary": "Origin"}
        return {}


def parse_geocode(body: bytes) -> GeocodeRequest | dict[str, Any]:
    """Validate a geocode request body: the request, or a 422 problem."""
    try:
        return GeocodeRequest.model_validate_json(body)
    except ValidationError as error:
        return validation_problem(error.errors(include_url=False))


def answer_geocode(
    locator: Any, request: GeocodeRequest | dict[str, Any], *, jurisdiction: Jurisdiction
) -> tuple[int, dict[str, Any]]:
    """Return the HTTP status and JSON body for a parsed geocode request.

    The answer is cut down to the caller's ``jurisdiction`` (a place outside
    it is ``outside_jurisdiction``).
    """
    if not isinstance(request, GeocodeRequest):
        return 422, request
    try:
        if request.address is not None:
            answer = locator.locate_address(request.address, at=request.at, viewer=jurisdiction)
        else:
            assert request.x is not None and request.y is not None  # checked by the schema
            answer = locator.locate(
                request.x,
                request.y,
                crs=request.crs,
                accuracy_m=request.accuracy_m,
                at=request.at,
                viewer=jurisdiction,
            )
        return 200, answer.to_dict()
    except TonggeError as error:
        problem = domain_problem(error)
        return int(problem["status"]), problem


def with_routes(db: Any, answer: dict[str, Any], *, jurisdiction: Jurisdiction) -> dict[str, Any]:
    """Add ``routes``: the stored patrol routes covering the located place.

    For callers with the ``patrol`` permission only (the caller checks).
    Routes of the units the place lies in (any level of any layer) and
    routes passing within 30 m of it, of units the caller sees entirely;
    an empty list when the place was not located or lies outside the
    caller's area.
    """
    lon, lat = answer.get("lon"), answer.get("lat")
    if lon is None or lat is None or answer.get("status") == "outside_jurisdiction":
        return {**answer, "routes": []}
    units = [
        (layer, unit["code"])
        for layer, result in (answer.get("layers") or {}).items()
        for unit in result.get("units", [])
        if unit.get("code")
    ]
    return {**answer, "routes": routes_at(db, jurisdiction, lon, lat, units=units)}


def may_patrol(principal: Principal) -> bool:
    """Whether locate answers for ``principal`` list patrol routes."""
    return principal.can(Permission.PATROL)


def _content_length(scope: ASGIScope) -> int | None:
    for name, value in scope.get("headers") or []:
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


def _too_large(limit: int) -> dict[str, Any]:
    return {
        "type": "about:blank",
        "title": "Too large",
        "status": 413,
        "detail": f"request body over the limit of {limit} bytes (TONGGE_MAX_BODY_BYTES)",
    }


async def _send(send: Send, status: int, body: Any, *, extra: dict[str, str] | None = None) -> None:
    # JSON for an answer, problem+json for an error (both hot paths).
    payload = orjson.dumps(body)
    headers = [*(_JSON if status < 300 else _PROBLEM), (b"content-length", b"%d" % len(payload))]
    if extra:
        headers += [(k.lower().encode(), v.encode()) for k, v in extra.items()]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": payload})


async def _send_problem(send: Send, error: TonggeError, cors: dict[str, str]) -> None:
    problem = domain_problem(error)
    await _send(send, int(problem["status"]), problem, extra={**problem_headers(error), **cors})
