"""Map domain errors to HTTP problem details (RFC 9457), in one place."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from gis.errors import ConflictError, InputError, NotFoundError, TonggeError, ValidationFailedError

PROBLEM_JSON = "application/problem+json"
_STATUS: list[tuple[type[TonggeError], int]] = [
    (NotFoundError, 404),
    (ConflictError, 409),
    (ValidationFailedError, 422),
    (InputError, 400),
]


def problem(status: int, title: str, detail: str, **extra: Any) -> JSONResponse:
    """Return a problem+json response."""
    body = {"type": "about:blank", "title": title, "status": status, "detail": detail, **extra}
    return JSONResponse(body, status_code=status, media_type=PROBLEM_JSON)


def install(app: FastAPI) -> None:
    """Register the handlers that turn every error into problem+json."""

    @app.exception_handler(TonggeError)
    async def _domain(_request: Request, error: TonggeError) -> JSONResponse:
        status = next((code for kind, code in _STATUS if isinstance(error, kind)), 400)
        extra: dict[str, Any] = {}
        if error.details.get("field"):
            extra["field"] = error.details["field"]
        if isinstance(error, ValidationFailedError):
            extra["report"] = error.report.to_dict()
        return problem(status, error.title, error.message, **extra)

    @app.exception_handler(RequestValidationError)
    async def _invalid(_request: Request, error: RequestValidationError) -> JSONResponse:
        errors = [
            {
                "field": ".".join(
                    str(p) for p in e.get("loc", ()) if p not in ("query", "path", "body")
                ),
                "message": e.get("msg", ""),
            }
            for e in error.errors()
        ]
        detail = "; ".join(f"{e['field']}: {e['message']}" for e in errors)
        return problem(422, "Invalid request", detail, errors=errors)

    @app.exception_handler(StarletteHTTPException)
    async def _http(_request: Request, error: StarletteHTTPException) -> JSONResponse:
        return problem(error.status_code, "HTTP error", str(error.detail))
