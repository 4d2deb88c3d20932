"""Request dependencies (the database opened at start-up) and request-scoped helpers."""

from __future__ import annotations

import shutil
from datetime import datetime
from pathlib import Path
from typing import Annotated

from fastapi import Query, Request

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
