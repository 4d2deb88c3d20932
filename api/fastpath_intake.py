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
from email.message import Message as MediaType
from typing import Any

from pydantic import TypeAdapter, ValidationError
from starlette.concurrency import run_in_threadpool

from api.errors import validation_problem
from api.fastpath import ASGIScope, GeocodeFastPath, Receive, Send, _send, _send_problem
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
        admitted = await self._admit(
            scope, receive, send, cors, headers=(b"idempotency-key", b"content-type")
        )
        if admitted is None:
            return
        state, headers = self.owner.state, admitted.headers
        principal, jurisdiction = admitted.principal, admitted.jurisdiction
        key = headers.get("idempotency-key")
        invalid = _invalid_request(headers.get("content-type"), key)
        if invalid is not None:
            await _send(send, 422, validation_problem(invalid), extra=cors)
            return
        try:
            parsed = IncidentIn.model_validate_json(admitted.body)
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
            await _send_problem(send, error, cors)
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
