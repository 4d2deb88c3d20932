"""Same-grid (同格) alignment report between two layers."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel, ConfigDict, Field

from api.deps import event_time, get_db
from api.security import current_jurisdiction, current_principal
from gis.access import Jurisdiction, Principal
from gis.alignment import DEFAULT_NOISE, alignment_report, apply_reviewed, noise_tolerance
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
    jurisdiction: Jurisdiction = Depends(current_jurisdiction),
    layer_a: Annotated[str, Query(description="LAYER:LEVEL that must nest.")] = "governance:grid",
    layer_b: Annotated[str, Query(description="LAYER:LEVEL it must nest in.")] = "police:beat",
    at: datetime | None = Depends(event_time),
    proposal: Annotated[bool, Query(description="Include the least change that fixes it.")] = False,
    noise_width_m: Annotated[
        float, Query(description="Pieces narrower than this (m) are boundary noise.")
    ] = DEFAULT_NOISE.width_m,
    noise_household_share: Annotated[
        float, Query(description="Pieces under this share of households (and area) are noise.")
    ] = DEFAULT_NOISE.household_share,
    noise_area_share: Annotated[
        float, Query(description="See noise_household_share: the area share.")
    ] = DEFAULT_NOISE.area_share,
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
    return alignment_report(
        db, a=layer_a, b=layer_b, at=at, proposal=proposal, jurisdiction=jurisdiction, noise=noise
    )


class ApplyRequest(BaseModel):
    """Store the proposal you reviewed as a new dated version of layer B."""

    model_config = ConfigDict(extra="forbid")

    layer_a: str = Field(default="governance:grid", max_length=130)
    layer_b: str = Field(default="police:beat", max_length=130)
    valid_from: str = Field(
        max_length=40,
        description="Effective date/time of the new version.",
        examples=["2027-01-01"],
    )
    moves: list[Annotated[str, Field(max_length=64)]] = Field(
        max_length=100_000,
        description="a_code of every move in the proposal you reviewed (refused with 412 when "
        "today's proposal differs).",
    )
    noise_width_m: float = DEFAULT_NOISE.width_m
    noise_household_share: float = DEFAULT_NOISE.household_share
    noise_area_share: float = DEFAULT_NOISE.area_share


class ApplyAnswer(BaseModel):
    """What was stored."""

    applied: bool
    proposal: dict[str, Any]
    imports: list[dict[str, Any]]


@router.post(
    "/alignment/apply",
    summary="Apply a same-grid proposal 同格调整 (administrators)",
    response_model=ApplyAnswer,
    responses={
        400: {"description": "Nothing to apply, or the proposal does not restore alignment"},
        403: {"description": "Not an administrator of the whole city"},
        412: {"description": "The proposal changed since you reviewed it"},
    },
)
def apply(
    body: ApplyRequest,
    db: Database = Depends(get_db),
    jurisdiction: Jurisdiction = Depends(current_jurisdiction),
    principal: Principal = Depends(current_principal),
) -> dict[str, Any]:
    """Recompute the proposal and store it as a new version of layer B (as `tongge align --apply`).

    Only when it still moves exactly the units you reviewed (`moves`); the
    import is audited.
    """
    noise = noise_tolerance(
        width_m=body.noise_width_m,
        household_share=body.noise_household_share,
        area_share=body.noise_area_share,
    )
    return apply_reviewed(
        db,
        a=body.layer_a,
        b=body.layer_b,
        valid_from=body.valid_from,
        moves=body.moves,
        noise=noise,
        actor=principal,
        jurisdiction=jurisdiction,
    )
