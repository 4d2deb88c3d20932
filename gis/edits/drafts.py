"""Draft change sets: an edit stored without touching the units, applied later or discarded.

A planner may save an edit as a *draft* (``POST …/edits`` with ``"draft":
true``): it is computed and previewed exactly like an applied edit (the same
import pipeline, as a dry run) and stored as a change set with status
``draft``; no unit gets a new version. Applying it later
(:func:`apply_draft`) writes it as it was computed — same units, same
vertices — **if nothing under it changed**: every unit, at every level, whose
ground touches the ground the draft changes (the units it changes, their
neighbours, parents and children) must still be the version the draft was
computed on, and the codes it creates must still be free. Otherwise the
draft is refused with :class:`gis.errors.StaleVersionError` (HTTP 412)
naming the units changed since, the rule an ``If-Match`` ETag follows.
:func:`discard_draft` drops a draft (status ``discarded``, kept in the
history). Saving, applying and discarding are audited
(``boundaries.draft``, ``boundaries.edit`` with the draft's id,
``boundaries.discard``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from gis.access.audit import append_audit
from gis.access.principal import SYSTEM, Principal
from gis.edits._model import UNIT_COLUMNS, ChangeSet, LayerState, LevelChange
from gis.edits.service import (
    EditResult,
    _jsonable,
    apply_changeset,
    changeset_detail,
    check_etags,
    effective_state,
)
from gis.errors import ConflictError, StaleVersionError
from gis.repository import Database
from gis.times import TimeLike, utc_now

__all__ = ["DraftResult", "apply_draft", "discard_draft", "save_draft", "watched_versions"]


def save_draft(
    db: Database,
    changeset: ChangeSet,
    *,
    state: LayerState,
    when: datetime,
    requested: TimeLike = None,
    reason: str | None = None,
    actor: Principal = SYSTEM,
) -> DraftResult:
    """Preview ``changeset`` and store it as a draft; return the preview with the draft's id.

    Parameters
    ----------
    changeset : ChangeSet
        Computed on ``state``.
    state : LayerState
        The layer as the change set was computed on (at ``when``).
    when : datetime
        When the change would take effect had it been applied now.
    requested : time, optional
        The effective date the planner asked for; applying the draft uses it
        (none: the draft takes effect when applied).

    Raises
    ------
    ValidationFailedError, EditRefusedError
        The change set could not be applied now either (nothing is stored).
    """
    preview = apply_changeset(
        db, changeset, valid_from=when, reason=reason, dry_run=True, actor=actor, state=state
    )
    info = {
        "etags": dict(changeset.etags),
        "watched": watched_versions(state, changeset),
        "valid_from": None if requested is None else preview.valid_from.isoformat(),
    }
    moves = preview.moves
    summary = {
        "created": changeset.created,
        "changed": changeset.changed,
        "retired": changeset.retired,
        "levels": [
            {
                "level": c.level,
                "created": list(c.created),
                "changed": list(c.changed),
                "retired": list(c.retired),
            }
            for c in changeset.levels
        ],
        "cut_buildings": list(changeset.cut_buildings),
        "moved_buildings": len(moves),
        "moved_households": int(moves["households"].sum()) if len(moves) else 0,
    }
    with db.transaction() as repo:
        changeset_id = repo.changesets.add(
            layer=changeset.layer,
            level=changeset.level,
            op=changeset.op,
            params=_jsonable(changeset.params),
            author=actor.actor,
            reason=reason,
            created_at=utc_now(),
            valid_from=preview.valid_from,
            import_id=None,
            reverts=None,
            summary=summary,
            units=_units_frame(changeset),
            status="draft",
            draft=info,
        )
        append_audit(
            repo,
            actor=actor,
            action="boundaries.draft",
            target=f"layer:{changeset.layer}:{changeset.level}",
            detail={
                "changeset": changeset_id,
                "op": changeset.op,
                "created": len(changeset.created),
                "changed": len(changeset.changed),
                "retired": len(changeset.retired),
            },
        )
    return DraftResult(
        changeset=changeset,
        applied=False,
        changeset_id=changeset_id,
        valid_from=preview.valid_from,
        moves=preview.moves,
        impact=preview.impact,
    )


def apply_draft(
    db: Database,
    *,
    layer: str,
    changeset_id: int,
    valid_from: TimeLike = None,
    actor: Principal = SYSTEM,
    visible: Callable[[str], bool] | None = None,
    if_match: Sequence[str] = (),
) -> EditResult:
    """Apply a stored draft as it was computed, if nothing under it changed since.

    Parameters
    ----------
    valid_from : time, optional
        When it takes effect: default the date given with the draft, else now.
    visible : callable, optional
        The caller's jurisdiction (a draft touching other units is "not found";
        units outside it changed since are counted, not named).
    if_match : sequence of str
        ETags the caller saw (refused like an edit's when no longer current).

    Raises
    ------
    NotFoundError
        No such change set in the layer (or the caller's jurisdiction).
    ConflictError
        It is not a draft (applied, reverted or discarded already).
    StaleVersionError
        A unit under it changed since it was computed (named), or a code it
        creates is taken.
    """
    stored = changeset_detail(db, layer=layer, changeset_id=changeset_id, visible=visible)
    if stored["status"] != "draft":
        raise ConflictError(f"change set {changeset_id} is {stored['status']}, not a draft")
    with db.reader() as repo:
        info = repo.changesets.draft_info(changeset_id=changeset_id)
    requested = valid_from if valid_from is not None else info.get("valid_from")
    state, when = effective_state(db, layer=layer, valid_from=requested)
    check_etags(state, if_match)
    changeset = _rebuild(stored, info)
    _require_unchanged(state, changeset, info.get("watched") or {}, visible)
    return apply_changeset(
        db,
        changeset,
        valid_from=when,
        reason=stored["reason"],
        actor=actor,
        state=state,
        from_draft=changeset_id,
    )


def discard_draft(
    db: Database,
    *,
    layer: str,
    changeset_id: int,
    actor: Principal = SYSTEM,
    visible: Callable[[str], bool] | None = None,
) -> dict[str, Any]:
    """Discard a draft (status ``discarded``; it stays in the history); return it.

    Raises
    ------
    NotFoundError
        No such change set in the layer (or the caller's jurisdiction).
    ConflictError
        It is not a draft.
    """
    stored = changeset_detail(db, layer=layer, changeset_id=changeset_id, visible=visible)
    if stored["status"] != "draft":
        raise ConflictError(f"change set {changeset_id} is {stored['status']}, not a draft")
    with db.transaction() as repo:
        repo.changesets.set_status(changeset_id=changeset_id, status="discarded", expected="draft")
        append_audit(
            repo,
            actor=actor,
            action="boundaries.discard",
            target=f"layer:{layer}:{stored['level']}",
            detail={"changeset": changeset_id, "op": stored["op"]},
        )
    return {**stored, "status": "discarded"}


def watched_versions(state: LayerState, changeset: ChangeSet) -> dict[str, str]:
    """Return the ETag of every unit, any level, whose ground touches what ``changeset`` changes.

    The units it changes, their neighbours (they share its edges), their
    parents and their children: a draft may be applied while all of these
    are the versions it was computed on.
    """
    geometries = [
        g
        for change in changeset.levels
        for frame in (change.before, change.after)
        for g in frame.geometry.values
        if g is not None and not g.is_empty
    ]
    if not geometries:
        return {}
    area = shapely.union_all(np.asarray(geometries, dtype=object))
    watched: dict[str, str] = {}
    for level in state.spec.levels:
        frame = state.frame(level.name)
        if frame.empty:
            continue
        hits = frame.sindex.query(area, predicate="intersects")
        for code in frame["code"].iloc[np.sort(hits)].astype(str):
            watched[code] = state.etags.get(code, "")
    return watched


def _require_unchanged(
    state: LayerState,
    changeset: ChangeSet,
    watched: dict[str, str],
    visible: Callable[[str], bool] | None,
) -> None:
    now = watched_versions(state, changeset)
    changed = sorted(c for c in set(now) | set(watched) if now.get(c) != watched.get(c))
    if not changed:
        return
    named = [c for c in changed if visible is None or visible(c)]
    hidden = len(changed) - len(named)
    message = f"{len(changed)} unit(s) changed since this draft was computed"
    if named:
        message += ": " + ", ".join(named[:20])
    if hidden:
        message += f" ({hidden} outside your jurisdiction)"
    raise StaleVersionError(message + " — discard it and edit again", codes=named)


def _rebuild(stored: dict[str, Any], info: dict[str, Any]) -> ChangeSet:
    """Return the stored draft as the change set it was computed as (exact geometry)."""
    units: gpd.GeoDataFrame = stored["units"]
    summary = stored["summary"]
    levels = []
    for entry in summary.get("levels", []):
        mine = units[units["level"] == entry["level"]]
        sides = {
            side: gpd.GeoDataFrame(
                mine[mine["side"] == side][[*UNIT_COLUMNS, "geometry"]].reset_index(drop=True),
                geometry="geometry",
                crs=units.crs,
            )
            for side in ("before", "after")
        }
        levels.append(
            LevelChange(
                level=str(entry["level"]),
                before=sides["before"],
                after=sides["after"],
                created=tuple(entry.get("created", [])),
                changed=tuple(entry.get("changed", [])),
                retired=tuple(entry.get("retired", [])),
            )
        )
    return ChangeSet(
        op=str(stored["op"]),
        params=stored["params"],
        layer=str(stored["layer"]),
        level=str(stored["level"]),
        levels=tuple(levels),
        cut_buildings=tuple(summary.get("cut_buildings", [])),
        etags=dict(info.get("etags") or {}),
    )


def _units_frame(changeset: ChangeSet) -> gpd.GeoDataFrame:
    """Every unit before and after, as a change set stores them (no version yet after)."""
    rows = []
    for change in changeset.levels:
        for side, frame in (("before", change.before), ("after", change.after)):
            part = frame[[*UNIT_COLUMNS, frame.geometry.name]].copy()
            part.insert(0, "side", side)
            part.insert(1, "level", change.level)
            part["version_from"] = None
            rows.append(part)
    return gpd.GeoDataFrame(pd.concat(rows, ignore_index=True), geometry="geometry", crs=4490)


class DraftResult(EditResult):
    """An edit stored as a draft: the preview, with the draft's id and ``status: draft``."""

    def to_dict(self) -> dict[str, Any]:
        """Return the JSON answer of ``POST …/edits`` with ``"draft": true``."""
        return {**super().to_dict(), "status": "draft"}
