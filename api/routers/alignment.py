"""Same-grid (同格) alignment report between two layers."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel, Field

from api.deps import event_time, get_db
from api.security import current_jurisdiction
from gis.access import Jurisdiction
from gis.alignment import alignment_report
from gis.repository import Database

router = APIRouter(prefix="/api/v1", tags=["alignment"])


class AlignmentResponse(BaseModel):
    """Whether layer A nests in layer B, the violations, and optionally the fix."""

    aligned: bool
    counts: dict[str, int] = Field(description="Violations per kind.")
    violations: list[dict[str, Any]] = Field(
        description="kind, codes, shares, lon/lat (CGCS2000), area_m2, households, message."
    )
    slivers: dict[str, Any] | int | None = Field(
        default=None, description="Pieces under the tolerance (counted, not reported)."
    )
    proposal: dict[str, Any] | None = Field(
        default=None, description="Moves of whole units and their impact (when asked)."
    )


@router.get(
    "/alignment",
    summary="Same-grid check between two layers 同格校核",
    response_model=AlignmentResponse,
    responses={400: {"description": "Unknown layer or level"}},
)
def alignment(
    db: Database = Depends(get_db),
    jurisdiction: Jurisdiction = Depends(current_jurisdiction),
    layer_a: Annotated[str, Query(description="LAYER:LEVEL that must nest.")] = "governance:grid",
    layer_b: Annotated[str, Query(description="LAYER:LEVEL it must nest in.")] = "police:beat",
    at: datetime | None = Depends(event_time),
    proposal: Annotated[bool, Query(description="Include the least change that fixes it.")] = False,
) -> dict[str, Any]:
    """Report, for every unit of layer A, whether it lies in exactly one unit of layer B.

    Violations: grids split across beats, beats that are not unions of whole
    grids, beats crossing a community, stations cutting a community. With
    `proposal=true` the answer includes the least change that restores
    nesting (applying it is a write: use the CLI `tongge align --apply`).
    """
    return alignment_report(
        db, a=layer_a, b=layer_b, at=at, proposal=proposal, jurisdiction=jurisdiction
    )
