"""Liveness endpoint."""

from __future__ import annotations

from fastapi import APIRouter, Depends

from api.deps import get_db
from api.schemas import Health
from gis import __version__
from gis.repository import Database

router = APIRouter(tags=["health"])


@router.get("/health", summary="Service health 健康检查")
def health(db: Database = Depends(get_db)) -> Health:
    """Return ``ok`` when the service is up."""
    return Health(version=__version__, database=db.dialect)
