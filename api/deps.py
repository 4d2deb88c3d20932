"""Request dependencies (the database opened at start-up) and request-scoped helpers."""

from __future__ import annotations

import shutil
from pathlib import Path

from fastapi import Request

from gis.repository import Database
from gis.unit_places import UnitPlaces


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
