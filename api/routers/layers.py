"""Layer endpoints."""

from __future__ import annotations

import dataclasses

from fastapi import APIRouter, Depends

from api.deps import get_db
from api.schemas import Layer, layer_schema
from api.security import current_scope
from gis import registry
from gis.access import Scope
from gis.repository import Database

router = APIRouter(prefix="/api/v1", tags=["layers"])


@router.get("/layers", summary="List layers 图层列表")
def list_layers(
    db: Database = Depends(get_db), scope: Scope = Depends(current_scope)
) -> list[Layer]:
    """Return every layer with its ordered levels and the number of current units you may see."""
    summaries = registry.list_layers(db)
    if not scope.unrestricted:
        # Counts of your jurisdiction only: totals would tell about other units.
        restricted = []
        for summary in summaries:
            codes = scope.codes(summary.name) or frozenset()
            counts = registry.level_counts(db, layer=summary.name, codes=codes) if codes else {}
            levels = tuple(
                dataclasses.replace(lv, unit_count=counts.get(lv.name, 0)) for lv in summary.levels
            )
            restricted.append(dataclasses.replace(summary, levels=levels))
        summaries = restricted
    return [layer_schema(summary) for summary in summaries]
