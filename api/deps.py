"""Request dependencies (the database opened at start-up) and request-scoped helpers."""

from __future__ import annotations

import shutil
from datetime import datetime
from pathlib import Path
from typing import Annotated

from fastapi import Query, Request
from fastapi.exceptions import RequestValidationError

from gis.places import UnitPlaces
from gis.repository import Database
from gis.times import parse_time


def get_db(request: Request) -> Database:
    """Return the application's database."""
    db: Database = request.app.state.db
    return db


def get_places(request: Request) -> UnitPlaces:
    """Return the application's cached buildings, households and workloads per unit."""
    places: UnitPlaces = request.app.state.places
    return places


def remove_folder(folder: Path) -> None:
    """Delete a request's scratch folder (after its file response is sent)."""
    shutil.rmtree(folder, ignore_errors=True)


def event_time(
    at: Annotated[
        str | None,
        Query(
            description="Boundaries valid at this time: ISO 8601 with offset, or a date "
            "(00:00 China time); default now.",
            examples=["2026-07-01", "2026-07-01T08:30:00+08:00"],
        ),
    ] = None,
) -> datetime | None:
    """Parse the ``at`` query parameter once, into an aware UTC time (None: now)."""
    return None if at is None else parse_time(at, field="at")


def _checked_page(request: Request, limit: int | None, default: int) -> int:
    # The largest page is a setting (TONGGE_PAGE_SIZE_LIMIT), so it cannot be a
    # static ``le=`` bound; refused the same way as any other invalid query value.
    largest: int = request.app.state.settings.page_size_limit
    if limit is None:
        return min(default, largest)
    if limit > largest:
        raise RequestValidationError(
            [
                {
                    "loc": ("query", "limit"),
                    "msg": f"at most {largest} (the server's TONGGE_PAGE_SIZE_LIMIT)",
                    "type": "less_than_equal",
                }
            ]
        )
    return limit


_LIMIT = Query(
    ge=1,
    description="Page size (default 100, or 500 for places; at most the server's "
    "TONGGE_PAGE_SIZE_LIMIT, 1000 unless configured).",
)


def page_size(request: Request, limit: Annotated[int | None, _LIMIT] = None) -> int:
    """Return the requested page size (default 100), checked against the largest page."""
    return _checked_page(request, limit, 100)


def large_page_size(request: Request, limit: Annotated[int | None, _LIMIT] = None) -> int:
    """Return the requested page size (default 500), checked against the largest page."""
    return _checked_page(request, limit, 500)
