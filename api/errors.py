"""Map domain errors to HTTP problem details (RFC 9457), in one place."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ConfigDict, Field
from starlette.exceptions import HTTPException as StarletteHTTPException

from api.jsontext import StrictJSONResponse, dumps
from gis.edits import problem_geojson
from gis.errors import (
    AuthenticationError,
    ConflictError,
    EditRefusedError,
    ForbiddenError,
    InputError,
    NotFoundError,
    NotInitializedError,
    RateLimitedError,
    StaleVersionError,
    TonggeError,
    UnavailableError,
    ValidationFailedError,
)

_log = logging.getLogger("tongge.api")
PROBLEM_JSON = "application/problem+json"
_STATUS: list[tuple[type[TonggeError], int]] = [
    (AuthenticationError, 401),
    (ForbiddenError, 403),
    (RateLimitedError, 429),
    (UnavailableError, 503),
    (NotInitializedError, 503),
    (NotFoundError, 404),
    (ConflictError, 409),
    (StaleVersionError, 412),
    (EditRefusedError, 422),
    (ValidationFailedError, 422),
    (InputError, 400),
]


class FieldProblem(BaseModel):
    """One invalid field of a request."""

    field: str = Field(description="Dotted path of the field, e.g. `x` or `units.0`.")
    message: str


class Problem(BaseModel):
    """An error (RFC 9457 problem details); ``detail`` names the field and the problem."""

    model_config = ConfigDict(extra="allow")

    type: str = "about:blank"
    title: str = Field(examples=["Invalid input"])
    status: int = Field(examples=[400])
    detail: str = Field(examples=["at: '2026-13-01' is not a date (YYYY-MM-DD) or ISO 8601 time"])
    field: str | None = Field(default=None, description="The request field at fault.")
    errors: list[FieldProblem] | None = Field(
        default=None, description="Every invalid field (422 only)."
    )
    report: dict[str, Any] | None = Field(
        default=None, description="The validation report of refused boundaries (422)."
    )
    problems: list[dict[str, Any]] | None = Field(
        default=None,
        description="A refused edit's problems (422): rule, codes, lon, lat, message, geometry.",
    )
    codes: list[str] | None = Field(
        default=None, description="Units changed since the edit was computed (412)."
    )


#: Documented for every operation (problem+json); 401/403/429 come from the guard.
ERROR_RESPONSES = {
    "400": "Unusable input: the detail names the field and the problem",
    "422": "Malformed request, or data refused by validation (see `errors`/`report`)",
}


def problem_body(status: int, title: str, detail: str, **extra: Any) -> dict[str, Any]:
    """Return the problem+json body."""
    return {"type": "about:blank", "title": title, "status": status, "detail": detail, **extra}


def problem(status: int, title: str, detail: str, **extra: Any) -> JSONResponse:
    """Return a problem+json response."""
    return StrictJSONResponse(
        problem_body(status, title, detail, **extra), status_code=status, media_type=PROBLEM_JSON
    )


def domain_problem(error: TonggeError) -> dict[str, Any]:
    """Return the problem body for a domain error (its ``status`` says the HTTP status)."""
    status = error.details.get("status") or next(
        (code for kind, code in _STATUS if isinstance(error, kind)), 400
    )
    extra: dict[str, Any] = {}
    if error.details.get("field"):
        extra["field"] = error.details["field"]
    if isinstance(error, ValidationFailedError):
        extra["report"] = error.report.to_dict()
    if isinstance(error, EditRefusedError):
        extra["problems"] = [problem_geojson(p) for p in error.problems]
    if isinstance(error, StaleVersionError):
        extra["codes"] = list(error.codes)
    return problem_body(status, error.title, error.message, **extra)


def problem_headers(error: TonggeError) -> dict[str, str]:
    """Return the headers a domain error's response needs (challenge, retry time)."""
    if isinstance(error, AuthenticationError):
        return {"WWW-Authenticate": 'Bearer realm="tongge"'}
    if isinstance(error, RateLimitedError) or "retry_after" in error.details:
        return {"Retry-After": str(int(error.details.get("retry_after", 1)))}
    return {}


def validation_problem(errors: Sequence[Any]) -> dict[str, Any]:
    """Return the 422 problem body for request validation errors."""
    fields = [
        {
            "field": ".".join(
                str(p) for p in e.get("loc", ()) if p not in ("query", "path", "body")
            ),
            "message": e.get("msg", ""),
        }
        for e in errors
    ]
    detail = "; ".join(f"{e['field']}: {e['message']}" for e in fields)
    return problem_body(422, "Invalid request", detail, errors=fields)


#: Paths answering errors as Open311 GeoReport v2's error list, not problem+json.
OPEN311_PREFIX = "/open311/"


def open311_error_body(path: str, status: int, descriptions: Sequence[str]) -> tuple[bytes, str]:
    """Return the Open311 error list and its media type (XML when the path ends ``.xml``).

    Examples
    --------
    >>> open311_error_body("/open311/v2/requests.json", 403, ["api_key: not valid"])
    (b'[{"code":403,"description":"api_key: not valid"}]', 'application/json; charset=utf-8')
    """
    from gis.incidents.open311 import to_xml

    errors = [{"code": status, "description": d} for d in descriptions]
    if path.endswith(".xml"):
        return to_xml("errors", "error", errors).encode("utf-8"), "text/xml; charset=utf-8"
    return dumps(errors, separators=(",", ":")).encode("utf-8"), "application/json; charset=utf-8"


def _open311(request: Request, status: int, descriptions: Sequence[str], **kw: Any) -> Response:
    body, media = open311_error_body(request.url.path, status, descriptions)
    return Response(body, status_code=status, media_type=media, **kw)


def install(app: FastAPI) -> None:
    """Register the handlers that turn every error into problem+json (Open311: its error list)."""

    @app.exception_handler(TonggeError)
    async def _domain(request: Request, error: TonggeError) -> Response:
        body = domain_problem(error)
        if request.url.path.startswith(OPEN311_PREFIX):
            if isinstance(error, AuthenticationError):
                # The standard's answer to a missing or invalid api_key.
                return _open311(request, 403, [error.message])
            return _open311(
                request, body["status"], [error.message], headers=problem_headers(error)
            )
        return StrictJSONResponse(
            body,
            status_code=body["status"],
            media_type=PROBLEM_JSON,
            headers=problem_headers(error),
        )

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, error: RequestValidationError) -> Response:
        body = validation_problem(error.errors())
        if request.url.path.startswith(OPEN311_PREFIX):
            # The standard answers a missing or malformed parameter with 400.
            return _open311(request, 400, [f"{e['field']}: {e['message']}" for e in body["errors"]])
        return StrictJSONResponse(body, status_code=422, media_type=PROBLEM_JSON)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, error: Exception) -> Response:
        # Never a traceback to the client; the server log has it.
        _log.exception("unhandled error", exc_info=error)
        detail = "the server could not handle this request"
        if request.url.path.startswith(OPEN311_PREFIX):
            return _open311(request, 500, [detail])
        return problem(500, "Internal error", detail)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, error: StarletteHTTPException) -> Response:
        if request.url.path.startswith(OPEN311_PREFIX):
            return _open311(request, error.status_code, [str(error.detail)])
        return problem(error.status_code, "HTTP error", str(error.detail))
