"""Same-grid (同格) alignment report between two layers."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel, Field

from api.deps import event_time, get_db
from api.security import current_scope
from gis.access import Scope
from gis.alignment import align, propose
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
    scope: Scope = Depends(current_scope),
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
    state = align(db, a=layer_a, b=layer_b, at=at)
    body = state.report.to_dict()
    result = {key: body.get(key) for key in ("aligned", "counts", "violations", "slivers")}
    if not scope.unrestricted:
        return _restricted(result, scope, layer_a.partition(":")[0], layer_b.partition(":")[0])
    if proposal and not state.report.aligned:
        result["proposal"] = propose(state).to_dict()
    return result


def _restricted(result: dict[str, Any], scope: Scope, a: str, b: str) -> dict[str, Any]:
    # Only violations wholly inside the caller's units of both layers; no
    # city-wide counts, slivers or proposal (they describe other units).
    violations = [
        v
        for v in result["violations"]
        if all(scope.sees(a, code) for code in v["a_codes"])
        and all(scope.sees(b, code) for code in v["b_codes"])
    ]
    for v in violations:
        v["a_parent_codes"] = [c for c in v["a_parent_codes"] if scope.sees(a, c)]
        v["b_parent_codes"] = [c for c in v["b_parent_codes"] if scope.sees(b, c)]
        v["codes"] = [c for c in v["codes"] if scope.sees(a, c) or scope.sees(b, c)]
        # The full message may name neighbouring units: rebuild it from what is visible.
        v["message"] = f"{v['kind']}: {', '.join(v['a_codes'] + v['b_codes'])}"
    counts: dict[str, int] = {}
    for violation in violations:
        counts[violation["kind"]] = counts.get(violation["kind"], 0) + 1
    return {"aligned": not violations, "counts": counts, "violations": violations, "slivers": None}
