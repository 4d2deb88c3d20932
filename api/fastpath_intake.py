"""The intake hot path: ``POST /api/v1/incidents``, answered in front of FastAPI's stack.

Hotlines and apps post incidents hundreds per second. The incident is
validated and located in ~0.5 ms and stored by the group-commit writer
(:mod:`gis.incidents._writer`); FastAPI's generic machinery around a request
(middleware, dependency solving, a thread of the pool blocked while the
batch commits, response-model validation) cost several times that. Like
:class:`api.fastpath.GeocodeFastPath`, :class:`IntakeFastPath` does the
stack's work itself — the guard's checks in the same order, the body limit,
CORS and security headers, problem+json for every error — and waits for the
commit on the event loop, not in a thread. The FastAPI route in
:mod:`api.routers.incidents` documents the endpoint in OpenAPI; both answer
through :func:`api.routers.incidents.intake_answer`.
"""

from __future__ import annotations

import asyncio
import dataclasses
from email.message import Message as MediaType
from typing import Any

import orjson
from pydantic import TypeAdapter, ValidationError
from starlette.concurrency import run_in_threadpool

from api.errors import domain_problem, problem_headers, validation_problem
from api.fastpath import (
    _CREDENTIALS,
    _JSON,
    _PROBLEM,
    ASGIScope,
    GeocodeFastPath,
    Receive,
    Send,
    _content_length,
    _too_large,
)
from api.permissions import permission_for
from api.routers.incidents import draft_of, intake_answer
from api.schemas.incidents import IncidentIn, IncidentOut, IncidentReceipt
from gis.errors import TonggeError
from gis.incidents import service

PATH = "/api/v1/incidents"
MAX_KEY = 200
#: What FastAPI's ``response_model`` makes of the answer (the same JSON).
_ANSWER: TypeAdapter[IncidentOut | IncidentReceipt] = TypeAdapter(IncidentOut | IncidentReceipt)


class IntakeFastPath(GeocodeFastPath):
    """Answers ``POST /api/v1/incidents`` for ``owner`` (the application, for its state)."""

    path = PATH

    @staticmethod
    def handles(scope: ASGIScope) -> bool:
        """Whether ``scope`` is the intake request this path answers."""
        return scope["type"] == "http" and scope["path"] == PATH and scope["method"] == "POST"

    async def _answer(
        self, scope: ASGIScope, receive: Receive, send: Send, cors: dict[str, str]
    ) -> None:
        state = self.owner.state
        security = state.security
        headers = {
            name.decode("latin-1"): value.decode("latin-1")
            for name, value in scope.get("headers") or []
            if name in _CREDENTIALS or name in (b"idempotency-key", b"content-type")
        }
        try:
            # The same checks as api.security.guard, in the same order.
            principal = security.admit(headers)
            permission_for("POST", PATH).check(principal)
            client = scope.get("client")
            principal = dataclasses.replace(principal, client=client[0] if client else None)
            jurisdiction = security.jurisdictions.jurisdiction(principal)
        except TonggeError as error:
            await _problem(send, error, cors)
            return
        limit = state.settings.max_body_bytes
        declared = _content_length(scope)
        if declared is not None and declared > limit:
            await _send(send, 413, _too_large(limit), extra=cors)
            return
        body = bytearray()
        more = True
        while more:
            message = await receive()
            body += message.get("body", b"")
            more = message.get("more_body", False)
            if len(body) > limit:
                await _send(send, 413, _too_large(limit), extra=cors)
                return
        key = headers.get("idempotency-key")
        invalid = _invalid_request(headers.get("content-type"), key)
        if invalid is not None:
            await _send(send, 422, validation_problem(invalid), extra=cors)
            return
        try:
            parsed = IncidentIn.model_validate_json(bytes(body))
        except ValidationError as error:
            problem = validation_problem(error.errors(include_url=False))
            await _send(send, 422, problem, extra=cors)
            return
        db, locator = state.db, state.locator
        try:
            draft = draft_of(parsed)
            arguments = {"idempotency_key": key, "locator": locator}
            if locator.ready(at=draft.event_time, address=draft.location is None):
                job = service.prepare_intake(db, principal, draft, **arguments)
            else:
                # The indexes for that time must be built first (seconds): off
                # the event loop, so that every other request goes on meanwhile.
                job = await run_in_threadpool(
                    service.prepare_intake, db, principal, draft, **arguments
                )
            stored = await asyncio.wrap_future(service.enqueue_intake(db, job))
        except TonggeError as error:
            await _problem(send, error, cors)
            return
        result = service.intake_result(stored)
        status, extra, answer = intake_answer(result, principal, jurisdiction)
        content = _ANSWER.dump_python(_ANSWER.validate_python(answer), mode="json")
        await _send(send, status, content, extra={**extra, **cors})


def _invalid_request(media: str | None, key: str | None) -> list[dict[str, Any]] | None:
    """Return the validation errors FastAPI would give for the media type and key, or None."""
    if key is not None and len(key) > MAX_KEY:
        return [
            {
                "loc": ("header", "Idempotency-Key"),
                "msg": f"String should have at most {MAX_KEY} characters",
            }
        ]
    if media:
        parsed = MediaType()
        parsed["content-type"] = media
        subtype = parsed.get_content_subtype()
        if parsed.get_content_maintype() != "application" or not (
            subtype == "json" or subtype.endswith("+json")
        ):
            return [
                {
                    "loc": ("body",),
                    "msg": "Input should be a valid dictionary or object to extract fields from",
                }
            ]
    return None


async def _problem(send: Send, error: TonggeError, cors: dict[str, str]) -> None:
    problem = domain_problem(error)
    await _send(send, int(problem["status"]), problem, extra={**problem_headers(error), **cors})


async def _send(send: Send, status: int, body: Any, *, extra: dict[str, str] | None = None) -> None:
    payload = orjson.dumps(body)
    headers = [
        *(_JSON if status < 300 else _PROBLEM),
        (b"content-length", b"%d" % len(payload)),
    ]
    if extra:
        headers += [(k.lower().encode(), v.encode()) for k, v in extra.items()]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": payload})
