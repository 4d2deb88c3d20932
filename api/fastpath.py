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

from api.errors import PROBLEM_JSON, domain_problem, problem_headers, validation_problem
from api.hardening import API_HEADERS
from api.permissions import permission_for
from api.schemas_geocode import GeocodeRequest
from gis.access import Scope as Jurisdiction
from gis.access import redact_locate_answer
from gis.errors import TonggeError

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

PATH = "/api/v1/geocode"
_MAX_BODY = 64 * 1024
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
        body = bytearray()
        more = True
        while more:
            message = await receive()
            body += message.get("body", b"")
            more = message.get("more_body", False)
            if len(body) > _MAX_BODY:
                await _send(
                    send,
                    413,
                    {
                        "type": "about:blank",
                        "title": "Too large",
                        "status": 413,
                        "detail": f"request body over {_MAX_BODY} bytes",
                    },
                )
                return
        status, answer = answer_geocode(owner.state.locator, bytes(body), scope=jurisdiction)
        await _send(send, status, answer)


def answer_geocode(locator: Any, body: bytes, *, scope: Jurisdiction) -> tuple[int, dict[str, Any]]:
    """Return the HTTP status and JSON body for a geocode request body.

    The answer is cut down to the caller's jurisdiction ``scope``.
    """
    try:
        request = GeocodeRequest.model_validate_json(body)
    except ValidationError as error:
        return 422, validation_problem(error.errors(include_url=False))
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


async def _send(
    send: Send, status: int, body: dict[str, Any], *, extra: dict[str, str] | None = None
) -> None:
    payload = orjson.dumps(body)
    headers = [*(_JSON if status == 200 else _PROBLEM), (b"content-length", b"%d" % len(payload))]
    if extra:
        headers += [(k.lower().encode(), v.encode()) for k, v in extra.items()]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": payload})
