"""Same-grid (同格) alignment report between two layers."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel, Field

from api.deps import event_time, get_db
from api.security import current_scope
from gis.access import Scope
from gis.alignment import align, noise_tolerance, propose
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
    noise: list[dict[str, Any]] = Field(
        default_factory=list,
        description="Boundary noise per pair of units: a_code, b_code, area_m2, width_m, "
        "area_share, household_share, lon/lat (not violations).",
    )
    datum_offset: dict[str, Any] | None = Field(
        default=None,
        description="Layer B offset as a whole by the GCJ-02/BD-09 shift: measured offset (m).",
    )
    stale: list[dict[str, Any]] = Field(
        default_factory=list, description="Units of B naming grids/communities no longer valid."
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
    noise_width_m: Annotated[
        float, Query(description="Pieces narrower than this (m) are boundary noise.")
    ] = 10.0,
    noise_household_share: Annotated[
        float, Query(description="Pieces under this share of households (and area) are noise.")
    ] = 0.02,
    noise_area_share: Annotated[
        float, Query(description="See noise_household_share: the area share.")
    ] = 0.15,
) -> dict[str, Any]:
    """Report, for every unit of layer A, whether it lies in exactly one unit of layer B.

    Violations: grids split across beats, beats that are not unions of whole
    grids, beats crossing a community, stations cutting a community. With
    `proposal=true` the answer includes the least change that restores
    nesting (applying it is a write: use the CLI `tongge align --apply`).

    Thin or light pieces (boundary noise of two separately digitised layers:
    under `noise_width_m` wide, or under `noise_household_share` of a grid's
    households and `noise_area_share` of its area) are listed in `noise`, not
    violations; the proposal then also snaps them onto layer A's edges
    (`snapped`). `datum_offset`: layer B offset as a whole by the GCJ-02 or
    BD-09 shift (its violations are then those of B converted back).
    `stale`: units of B naming or following grids no longer valid.
    """
    noise = noise_tolerance(
        width_m=noise_width_m, household_share=noise_household_share, area_share=noise_area_share
    )
    state = align(db, a=layer_a, b=layer_b, at=at, noise=noise)
    body = state.report.to_dict()
    keys = ("aligned", "counts", "violations", "slivers", "noise", "datum_offset", "stale")
    result = {key: body.get(key) for key in keys}
    if not scope.unrestricted:
        return _restricted(result, scope, layer_a.partition(":")[0], layer_b.partition(":")[0])
    if proposal and (not state.report.aligned or state.report.noise):
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
    noise = [
        n
        for n in result["noise"]
        if n["level"] == "units"
        and n["a_code"] is not None
        and n["b_code"] is not None
        and scope.sees(a, n["a_code"])
        and scope.sees(b, n["b_code"])
    ]
    stale = [s for s in result["stale"] if scope.sees(b, s["b_code"])]
    return {
        "aligned": not violations and not stale and result["datum_offset"] is None,
        "counts": counts,
        "violations": violations,
        "slivers": None,
        "noise": noise,
        "datum_offset": result["datum_offset"],
        "stale": stale,
    }
