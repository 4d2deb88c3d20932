"""Layer endpoints."""

from __future__ import annotations

from fastapi import APIRouter, Depends

from api.deps import get_db
from api.schemas import Layer, layer_schema
from gis import registry
from gis.repository import Database

router = APIRouter(tags=["layers"])


@router.get("/layers", summary="List layers 图层列表")
def list_layers(db: Database = Depends(get_db)) -> list[Layer]:
    """Return every layer with its ordered levels and the number of current units."""
    return [layer_schema(summary) for summary in registry.list_layers(db)]
