"""Request dependencies: the database opened at start-up."""

from __future__ import annotations

from fastapi import Request

from gis.repository import Database


def get_db(request: Request) -> Database:
    """Return the application's database."""
    db: Database = request.app.state.db
    return db
