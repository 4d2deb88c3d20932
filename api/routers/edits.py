"""Edits feature: planners' boundary operations, their previews, change sets and reverts."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Header, Query
from fastapi import Path as PathParameter

from api.deps import get_db, page_size
from api.schemas.edits import ChangeSetDetail, ChangeSetPage, EditAnswer, EditRequest
from api.security import current_jurisdiction, current_principal
from gis.access import Jurisdiction, Principal
from gis.edits import EditOptions, drafts
from gis.edits import service as edits
from gis.repository import Database

router = APIRouter(prefix="/api/v1", tags=["edits"])

LayerName = Annotated[str, PathParameter(max_length=64, description="Layer name.")]
ChangeSetId = Annotated[int, PathParameter(ge=1, le=2**31 - 1, description="Change set id.")]


def _visible(jurisdiction: Jurisdiction, principal: Principal, layer: str) -> Callable[[str], bool]:
    """Whether the caller may see a unit code of ``layer`` in a change set.

    A unit seen wholly now, or one the caller's grant names itself: a planner
    of two police stations who merged them still sees the station the merge
    retired (a top-level unit, with no parent to be seen through).
    """
    refs = (unit.partition(":") for unit in principal.units)
    granted = {code for name, _, code in refs if name == layer}
    return lambda code: jurisdiction.sees_wholly(layer, code) or code in granted


IfMatch = Annotated[
    str | None,
    Header(
        max_length=4000,
        description=(
            "ETags of the unit versions you saw (as the answers' `etags` give them), "
            "comma-separated; `*` for any current version. A tag this API never gave out "
            "is a 400 naming `If-Match`; one of a version changed since is a 412."
        ),
    ),
]


def _etags(if_match: str | None) -> list[str]:
    return [tag for tag in (if_match or "").split(",") if tag.strip()]


@dataclass(frozen=True)
class ChangeSetTarget:
    """One change set of a layer as the caller addresses it, with what they may see."""

    db: Database
    layer: str
    changeset_id: int
    actor: Principal
    visible: Callable[[str], bool]

    def scope(self) -> dict[str, Any]:
        """Return the keyword arguments every change-set service function takes."""
        return {"layer": self.layer, "changeset_id": self.changeset_id, "visible": self.visible}


def changeset_target(
    layer: LayerName,
    changeset_id: ChangeSetId,
    db: Database = Depends(get_db),
    jurisdiction: Jurisdiction = Depends(current_jurisdiction),
    principal: Principal = Depends(current_principal),
) -> ChangeSetTarget:
    """Resolve the change set named by the path for the signed-in caller."""
    return ChangeSetTarget(
        db, layer, changeset_id, principal, _visible(jurisdiction, principal, layer)
    )


_REFUSALS: dict[int | str, dict[str, Any]] = {
    400: {"description": "Unusable input (e.g. a malformed `If-Match`), `field` names it"},
    404: {"description": "No such layer, level or unit in your jurisdiction"},
    412: {"description": "A unit changed since the versions you name (If-Match) or read"},
    422: {"description": "The edit is refused: `problems` with rule, codes, lon, lat, geometry"},
}


@router.post(
    "/layers/{layer}/edits",
    summary="Edit boundaries 边界编辑 (preview or apply)",
    response_model=EditAnswer,
    responses=_REFUSALS,
)
def post_edit(
    layer: LayerName,
    body: EditRequest,
    db: Database = Depends(get_db),
    jurisdiction: Jurisdiction = Depends(current_jurisdiction),
    principal: Principal = Depends(current_principal),
    if_match: IfMatch = None,
) -> dict[str, Any]:
    """Run an operation; with `dry_run` nothing is written (the impact preview).

    With `draft` the change set is stored as a draft (status `draft`, with its
    preview) and nothing is applied: `POST …/changesets/{id}/apply` applies it
    later if no unit under it changed meanwhile, `DELETE …/changesets/{id}`
    discards it. Planners and administrators only, inside their jurisdiction;
    every applied change set and every draft is audited.
    """
    result = edits.edit(
        db,
        layer=layer,
        op=body.op,
        level=body.level,
        units=body.units,
        geometry=body.geometry,
        to=body.to,
        parts=body.parts,
        name=body.name,
        poi=body.poi,
        options=EditOptions(cascade=body.cascade, snap_m=body.snap_m, force=body.force),
        valid_from=body.valid_from,
        reason=body.reason,
        dry_run=body.dry_run,
        actor=principal,
        visible=_visible(jurisdiction, principal, layer),
        if_match=_etags(if_match),
        draft=body.draft,
    )
    return result.to_dict()


@router.get(
    "/layers/{layer}/changesets",
    summary="Change sets of a layer 变更集",
    response_model=ChangeSetPage,
)
def list_changesets(
    layer: LayerName,
    db: Database = Depends(get_db),
    jurisdiction: Jurisdiction = Depends(current_jurisdiction),
    unit: Annotated[str | None, Query(max_length=64, description="Only those touching it.")] = None,
    status: Annotated[
        Literal["applied", "draft", "reverted", "discarded"] | None,
        Query(description="Only change sets in this status."),
    ] = None,
    limit: int = Depends(page_size),
    offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0,
) -> dict[str, Any]:
    """Return the layer's change sets, newest first; only those touching your units."""
    visible = jurisdiction.wholly_codes(layer)
    rows, total = edits.changeset_history(
        db,
        layer=layer,
        unit=unit,
        visible=sorted(visible) if visible is not None else None,
        status=status,
        limit=limit,
        offset=offset,
    )
    return {"total": total, "changesets": [edits.changeset_json(r, units=False) for r in rows]}


@router.get(
    "/layers/{layer}/changesets/{changeset_id}",
    summary="One change set 变更集详情",
    response_model=ChangeSetDetail,
    responses={404: {"description": "No such change set in your jurisdiction"}},
)
def get_changeset(target: ChangeSetTarget = Depends(changeset_target)) -> dict[str, Any]:
    """Return a change set with every unit before and after (GeoJSON)."""
    return edits.changeset_json(edits.changeset_detail(target.db, **target.scope()))


@router.post(
    "/layers/{layer}/changesets/{changeset_id}/revert",
    summary="Revert a change set 撤回变更",
    response_model=EditAnswer,
    responses={**_REFUSALS, 409: {"description": "Reverted already"}},
)
def revert_changeset(
    target: ChangeSetTarget = Depends(changeset_target),
    reason: Annotated[str | None, Query(max_length=2000)] = None,
) -> dict[str, Any]:
    """Restore the geometry before the change set exactly, as a new change set (audited)."""
    result = edits.revert(target.db, **target.scope(), reason=reason, actor=target.actor)
    return result.to_dict()


@router.post(
    "/layers/{layer}/changesets/{changeset_id}/apply",
    summary="Apply a draft change set 应用草稿",
    response_model=EditAnswer,
    responses={**_REFUSALS, 409: {"description": "Not a draft (applied or discarded already)"}},
)
def apply_draft(
    target: ChangeSetTarget = Depends(changeset_target),
    valid_from: Annotated[
        str | None,
        Query(max_length=40, description="Effective date (default: the draft's, else now)."),
    ] = None,
    if_match: IfMatch = None,
) -> dict[str, Any]:
    """Apply a draft exactly as computed, if nothing under it changed since (else 412, audited)."""
    result = drafts.apply_draft(
        target.db,
        **target.scope(),
        valid_from=valid_from,
        actor=target.actor,
        if_match=_etags(if_match),
    )
    return result.to_dict()


@router.delete(
    "/layers/{layer}/changesets/{changeset_id}",
    summary="Discard a draft change set 放弃草稿",
    response_model=ChangeSetDetail,
    responses={
        404: {"description": "No such change set in your jurisdiction"},
        409: {"description": "Not a draft"},
    },
)
def discard_draft(target: ChangeSetTarget = Depends(changeset_target)) -> dict[str, Any]:
    """Discard a draft: it stays in the history with status `discarded` (audited)."""
    return edits.changeset_json(
        drafts.discard_draft(target.db, **target.scope(), actor=target.actor)
    )
