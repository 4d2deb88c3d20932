"""Boundary change history: each import's versions and the buildings it moved."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query
from pydantic import BaseModel, Field

from api.deps import get_db
from api.schemas import plain
from api.security import current_scope
from gis import registry
from gis.access import Scope
from gis.repository import Database

router = APIRouter(prefix="/api/v1", tags=["layers"])


class ImportEntry(BaseModel):
    """One import: a batch of new unit versions of one level."""

    id: int
    level: str
    source: str = Field(description="File name (or what made the change).")
    valid_from: datetime
    created_at: datetime
    counts: dict[str, int] = Field(
        description="created/updated/retired/unchanged (layer-wide), or units (yours only); "
        "part_of: the import of the level above whose new edges this level followed."
    )
    codes: list[str] = Field(description="Units it wrote a version of (in your jurisdiction).")


class Move(BaseModel):
    """A building that changed unit with an import (re-assignment diff)."""

    key: str
    level: str = Field(description="Level of from_unit/to_unit (the lowest, where buildings hang).")
    from_unit: str | None = None
    to_unit: str | None = None
    changed_level: str = Field(description="The level the import changed.")
    from_code: str | None = Field(default=None, description="Unit of changed_level before.")
    to_code: str | None = Field(default=None, description="Unit of changed_level after.")
    households: int
    persons: int


class MovePage(BaseModel):
    """Every building an import moved (within your jurisdiction)."""

    import_id: int
    total: int
    households: int
    moves: list[Move]


@router.get(
    "/layers/{layer}/imports",
    summary="Boundary change history 边界变更记录",
    response_model=list[ImportEntry],
    responses={404: {"description": "No such layer"}},
)
def list_imports(
    layer: str,
    db: Database = Depends(get_db),
    scope: Scope = Depends(current_scope),
    limit: Annotated[int, Query(ge=1, le=1000, description="Page size.")] = 100,
    offset: Annotated[int, Query(ge=0, le=10_000_000, description="Imports to skip.")] = 0,
) -> list[dict[str, Any]]:
    """Return the layer's imports, newest first; only those touching your units."""
    return registry.import_history(
        db, layer=layer, visible=scope.codes(layer), limit=limit, offset=offset
    )


@router.get(
    "/layers/{layer}/imports/{import_id}/moves",
    summary="Buildings an import moved 变更涉及房屋",
    response_model=MovePage,
    responses={404: {"description": "No such import in your jurisdiction"}},
)
def import_moves(
    layer: str,
    import_id: Annotated[int, Path(ge=1, le=2**31 - 1)],
    db: Database = Depends(get_db),
    scope: Scope = Depends(current_scope),
) -> dict[str, Any]:
    """Return every building the import moved to another unit, with its households.

    Only moves from or to your units; a unit outside your jurisdiction is blank.
    """
    moves = registry.import_moves(
        db, layer=layer, import_id=import_id, visible=scope.codes(layer)
    )
    return {
        "import_id": import_id,
        "total": len(moves),
        "households": int(moves["households"].sum()) if len(moves) else 0,
        "moves": [plain(row) for row in moves.to_dict("records")],
    }
