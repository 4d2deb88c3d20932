"""The dispatch hot path: ``POST /api/v1/geocode`` answered below FastAPI's routing.

Dispatchers and the hotline locate incidents one request at a time, many per
second. The lookup itself takes ~0.1 ms; FastAPI's generic machinery around
it (middleware, routing, dependency solving, response encoding) takes
several times that. This ASGI middleware answers exactly that route with the
same request schema, the same answer and the same problem+json errors, and
hands every other request to the application. The FastAPI route stays for
the OpenAPI documentation and as the reference implementation.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

import orjson
from pydantic import ValidationError
from starlette.concurrency import run_in_threadpool

from api.errors import PROBLEM_JSON, domain_problem, problem_headers, validation_problem
from api.hardening import API_HEADERS
from api.permissions import permission_for
from api.schemas.locate import GeocodeRequest
from gis.access import Scope as Jurisdiction
from gis.access import redact_locate_answer
from gis.errors import TonggeError

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

PATH = "/api/v1/geocode"
_CREDENTIALS = (b"authorization", b"x-api-key")
_JSON = [(b"content-type", b"application/json"), *API_HEADERS]
_PROBLEM = [(b"content-type", PROBLEM_JSON.encode()), *API_HEADERS]


class GeocodeFastPath:
    """ASGI middleware answering ``POST /api/v1/geocode`` directly."""

    def __init__(self, app: ASGIApp, *, owner: Any = None) -> None:
        self.app = app
        # When this wraps the application from outside (``create_server_app``)
        # the scope has no "app" yet: read the locate service from ``owner``.
        self.owner = owner

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Answer the geocode route; pass everything else on."""
        if scope["type"] != "http" or scope["path"] != PATH or scope["method"] != "POST":
            await self.app(scope, receive, send)
            return
        owner = self.owner if self.owner is not None else scope["app"]
        security = owner.state.security
        # Only the credential headers matter here (ASGI names are lower case).
        headers = {
            name.decode("latin-1"): value.decode("latin-1")
            for name, value in scope.get("headers") or []
            if name in _CREDENTIALS
        }
        try:
            # The same checks as api.security.guard, in the same order.
            principal = security.admit(headers)
            permission_for("POST", PATH).check(principal)
            jurisdiction = security.scopes.scope(principal)
        except TonggeError as error:
            problem = domain_problem(error)
            await _send(send, int(problem["status"]), problem, extra=problem_headers(error))
            return
        limit = owner.state.settings.max_body_bytes
        declared = _content_length(scope)
        if declared is not None and declared > limit:
            # Refused before a byte of the body is read.
            await _send(send, 413, _too_large(limit))
            return
        body = bytearray()
        more = True
        while more:
            message = await receive()
            body += message.get("body", b"")
            more = message.get("more_body", False)
            if len(body) > limit:
                await _send(send, 413, _too_large(limit))
                return
        locator = owner.state.locator
        parsed = parse_geocode(bytes(body))
        if isinstance(parsed, GeocodeRequest) and not locator.ready(
            at=parsed.at, address=parsed.address is not None
        ):
            # The indexes for that time must be built first (seconds): off the
            # event loop, so that every other request goes on meanwhile.
            status, answer = await run_in_threadpool(
                answer_geocode, locator, parsed, scope=jurisdiction
            )
        else:
            status, answer = answer_geocode(locator, parsed, scope=jurisdiction)
        await _send(send, status, answer)


def parse_geocode(body: bytes) -> GeocodeRequest | dict[str, Any]:
    """Validate a geocode request body: the request, or a 422 problem."""
    try:
        return GeocodeRequest.model_validate_json(body)
    except ValidationError as error:
        return validation_problem(error.errors(include_url=False))


def answer_geocode(
    locator: Any, request: GeocodeRequest | dict[str, Any], *, scope: Jurisdiction
) -> tuple[int, dict[str, Any]]:
    """Return the HTTP status and JSON body for a parsed geocode request.

    The answer is cut down to the caller's jurisdiction ``scope``.
    """
    if not isinstance(request, GeocodeRequest):
        return 422, request
    try:
        if request.address is not None:
            answer = locator.locate_address(request.address, at=request.at)
        else:
            assert request.x is not None and request.y is not None  # checked by the schema
            answer = locator.locate(
                request.x, request.y, crs=request.crs, accuracy_m=request.accuracy_m, at=request.at
            )
        return 200, redact_locate_answer(answer, scope)
    except TonggeError as error:
        problem = domain_problem(error)
        return int(problem["status"]), problem


def _content_length(scope: Scope) -> int | None:
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


async def _send(
    send: Send, status: int, body: dict[str, Any], *, extra: dict[str, str] | None = None
) -> None:
    payload = orjson.dumps(body)
    headers = [*(_JSON if status == 200 else _PROBLEM), (b"content-length", b"%d" % len(payload))]
    if extra:
        headers += [(k.lower().encode(), v.encode()) for k, v in extra.items()]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": payload})
