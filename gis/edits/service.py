"""The edit service: run an operation on the stored layer, preview it, apply it, revert it.

Previewing, applying and reverting are one pipeline (:func:`apply_changeset`):
the layer as it stands (from the state cache, :mod:`gis.edits._cache`), the
change set checked against it (its unit versions current, every level a
valid nested coverage around it: :mod:`gis.edits._check`), its impact
computed around the touched units only (:mod:`gis.edits._impact`), and —
unless ``dry_run`` — one write transaction storing only the units that
change, the buildings that move, the change set (table ``changesets``:
author, time, reason, effective date, operation and parameters, every unit
before and after) and the audit entries. The write re-checks that the
boundaries and places are those the change set was checked on, else it
starts again from a fresh read (:class:`StaleVersionError` naming the units
changed since, when the change set no longer fits).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from gis.access.audit import append_audit
from gis.access.principal import SYSTEM, Principal
from gis.edits._arrays import level_arrays
from gis.edits._assigned import Assignments
from gis.edits._cache import cached_state, read_versions, state_at, state_cache
from gis.edits._check import check_levels
from gis.edits._impact import (
    alignment,
    alignment_box,
    alignment_other,
    building_moves,
    poi_moves,
    workload,
)
from gis.edits._model import (
    UNIT_COLUMNS,
    ChangeSet,
    EditOptions,
    LayerState,
    LevelChange,
    as_multipolygon,
)
from gis.edits._ops import (
    auto_split_children,
    carve,
    merge,
    reshape,
    retire,
    split,
    transfer,
)
from gis.errors import (
    ConflictError,
    ForbiddenError,
    InputError,
    NotFoundError,
    StaleVersionError,
)
from gis.repository import Database, ImportSummary, Repository
from gis.times import TimeLike, parse_time, utc_now

__all__ = [
    "EditResult",
    "apply_changeset",
    "changeset_detail",
    "changeset_history",
    "changeset_json",
    "check_etags",
    "edit",
    "effective_state",
    "load_state",
    "read_drawing",
    "read_state",
    "revert",
    "run_operation",
]

_ATTEMPTS = 3


@dataclass
class EditResult:
    """What an edit did (or, with ``dry_run``, would do).

    Attributes
    ----------
    changeset : ChangeSet
        Every affected unit before and after, every level.
    applied : bool
        Whether it was written.
    changeset_id : int or None
        The stored change set's id (``None`` for a preview).
    valid_from : datetime
        When the new versions take effect.
    moves : DataFrame
        Buildings whose lowest-level unit changes (see :data:`gis.units.MOVE_COLUMNS`).
    impact : dict
        Counts, POIs, workload and alignment before/after (JSON-ready).
    """

    changeset: ChangeSet
    applied: bool
    changeset_id: int | None
    valid_from: datetime
    moves: pd.DataFrame
    impact: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """Return the JSON answer of ``POST …/edits`` and ``tongge edit --format json``."""
        return {
            "changeset": self.changeset_id,
            "applied": self.applied,
            "op": self.changeset.op,
            "layer": self.changeset.layer,
            "level": self.changeset.level,
            "valid_from": self.valid_from.isoformat(),
            "created": self.changeset.created,
            "changed": self.changeset.changed,
            "retired": self.changeset.retired,
            "cut_buildings": list(self.changeset.cut_buildings),
            "etags": dict(self.changeset.etags),
            "impact": self.impact,
            "geometry": changeset_geojson(self.changeset),
            "warnings": [w.to_dict() for w in self.changeset.warnings],
            "problems": [],
        }


# -- reading the layer ---------------------------------------------------------------


def load_state(db: Database, *, layer: str, at: datetime | None = None) -> LayerState:
    """Return the current units of every level of ``layer``, the codes used and the places.

    From the state cache (:mod:`gis.edits._cache`): read from the database
    once per change of its boundaries (or places), then shared.

    Parameters
    ----------
    db : Database
        Where the layer is stored.
    layer : str
        The layer's name.
    at : datetime, optional
        The instant whose units are current (default: now).
    """
    return cached_state(db, layer=layer, at=at)


def read_state(
    repo: Repository,
    *,
    layer: str,
    at: datetime | None = None,
    read_buildings: Callable[[tuple[float, float, float, float]], gpd.GeoDataFrame] | None = None,
) -> LayerState:
    """Read a layer's state inside an open repository transaction (see :func:`load_state`).

    Not cached: what the transaction sees. Buildings are read through
    ``read_buildings`` (a bounding box in, the buildings in it out) when given.
    """
    revision = repo.revisions().get("boundaries", 0)
    state = state_at(read_versions(repo, layer=layer), at or utc_now(), revision)
    return replace(state, pois=repo.places.pois_table(), read_buildings=read_buildings)


# -- running an operation ----------------------------------------------------------


def run_operation(
    state: LayerState,
    *,
    op: str,
    level: str,
    units: Sequence[str] = (),
    geometry: Any = None,
    to: str | Sequence[str] | None = None,
    parts: int | None = None,
    name: str | None = None,
    poi: str | None = None,
    options: EditOptions | None = None,
) -> ChangeSet:
    """Run one operation by name with the parameters of ``POST …/edits``.

    Raises
    ------
    InputError
        An unknown operation or a parameter it needs is missing (named).
    EditRefusedError
        The operation's refusal.
    """
    options = options or EditOptions()
    codes = [str(u) for u in units]
    receivers = [to] if isinstance(to, str) else list(to or [])

    def need(value: Any, name_: str, what: str) -> Any:
        if value is None or (isinstance(value, list) and not value):
            raise InputError(f"{op} needs {what}", field=name_)
        return value

    def one_unit() -> str:
        if len(codes) != 1:
            raise InputError(f"{op} takes exactly one unit (got {len(codes)})", field="units")
        return codes[0]

    if op == "transfer":
        return transfer(
            state,
            level=level,
            geometry=need(geometry, "geometry", "the polygon to move"),
            to=need(receivers, "to", "the receiving unit (to)")[0],
            options=options,
        )
    if op == "reshape":
        return reshape(
            state,
            level=level,
            units=codes,
            geometry=need(geometry, "geometry", "the new edge (a line)"),
            options=options,
        )
    if op == "split":
        return split(
            state,
            level=level,
            unit=one_unit(),
            geometry=need(geometry, "geometry", "the cutting line"),
            options=options,
        )
    if op == "merge":
        return merge(state, level=level, units=codes, options=options)
    if op == "carve":
        if geometry is None and poi is None:
            raise InputError("carve needs a polygon (geometry) or a POI (poi)", field="geometry")
        return carve(state, level=level, geometry=geometry, poi=poi, name=name, options=options)
    if op == "retire":
        return retire(
            state,
            level=level,
            unit=one_unit(),
            to=need(receivers, "to", "the neighbours receiving the ground (to)"),
            options=options,
        )
    if op == "auto_split":
        return auto_split_children(
            state,
            level=level,
            unit=one_unit(),
            parts=need(parts, "parts", "how many parts (parts)"),
            options=options,
        )
    known = "transfer, reshape, split, merge, carve, retire, auto_split"
    raise InputError(f"unknown operation {op!r}; use one of {known}", field="op")


def edit(
    db: Database,
    *,
    layer: str,
    op: str,
    level: str,
    units: Sequence[str] = (),
    geometry: Any = None,
    to: str | Sequence[str] | None = None,
    parts: int | None = None,
    name: str | None = None,
    poi: str | None = None,
    options: EditOptions | None = None,
    valid_from: TimeLike = None,
    reason: str | None = None,
    dry_run: bool = False,
    actor: Principal = SYSTEM,
    visible: Callable[[str], bool] | None = None,
    if_match: Sequence[str] = (),
    draft: bool = False,
) -> EditResult:
    """Run an operation on the stored layer and preview it (``dry_run``) or apply it.

    Parameters
    ----------
    visible : callable, optional
        Whether the caller may see a unit code (its jurisdiction): a named
        unit, or a unit the edit would change, outside it is "not found".
    if_match : sequence of str
        ETags of unit versions the caller saw (:func:`gis.edits.unit_etag`):
        refused with :class:`StaleVersionError` if any is no longer current.
    draft : bool
        Store the change set as a draft, writing nothing to the units
        (:mod:`gis.edits.drafts`: applied later if nothing under it changed).
    """
    if draft and dry_run:
        raise InputError("a draft is stored: it cannot also be a dry run", field="draft")
    state, when = effective_state(db, layer=layer, valid_from=valid_from)
    check_etags(state, if_match)
    named = [*units, *([to] if isinstance(to, str) else list(to or []))]
    # The walk up the parents is only needed to check a jurisdiction (a map
    # of every unit: not built for the callers that see everything).
    parents = (
        {
            str(code): parent
            for frame in state.levels.values()
            for code, parent in zip(frame["code"], frame["parent_code"], strict=True)
        }
        if visible is not None
        else {}
    )
    _require_visible(visible, layer, named, parents)
    changeset = run_operation(
        state,
        op=op,
        level=level,
        units=units,
        geometry=geometry,
        to=to,
        parts=parts,
        name=name,
        poi=poi,
        options=options,
    )
    _require_ground_visible(visible, changeset, parents)
    if draft:
        from gis.edits.drafts import save_draft

        return save_draft(
            db, changeset, state=state, when=when, requested=valid_from, reason=reason, actor=actor
        )
    return apply_changeset(
        db,
        changeset,
        valid_from=when,
        reason=reason,
        dry_run=dry_run,
        actor=actor,
        state=state,
    )


def effective_state(
    db: Database, *, layer: str, valid_from: TimeLike = None
) -> tuple[LayerState, datetime]:
    """Return the layer as it stands when an edit takes effect, and that instant.

    Without ``valid_from`` an edit takes effect now, or just after the
    layer's newest version when that starts later (two versions of a unit
    never share a start); the state is read at that instant.
    """
    state = load_state(db, layer=layer)
    when = _when(state, valid_from)
    if state.at is None or when > state.at:
        state = load_state(db, layer=layer, at=when)
    return state, when


def check_etags(state: LayerState, tags: Sequence[str]) -> None:
    """Refuse (:class:`StaleVersionError`) ETags of unit versions that are no longer current.

    Each tag is an ETag as :func:`~gis.edits._model.unit_etag` gives it
    (``"<code>@<valid from>"``, optionally weak, ``W/"…"``); ``*`` matches any
    current version (RFC 9110). Anything else is not an ETag of ours and is
    refused as bad input naming ``If-Match`` (a 400, not a 412: nothing changed,
    the client sent something we never gave out).

    Examples
    --------
    >>> _etag_code('W/"350502001001@2026-01-01T00:00:00+00:00"')
    '350502001001'
    >>> _etag_code("*") is None
    True
    """
    stale = []
    for tag in tags:
        code = _etag_code(tag)
        if code is None:
            continue
        if state.etags.get(code) != _strong(tag):
            stale.append(code)
    if stale:
        raise StaleVersionError(
            f"{len(stale)} unit(s) changed since you read them: {', '.join(sorted(stale)[:20])}",
            codes=sorted(stale),
        )


def _strong(tag: str) -> str:
    text = tag.strip()
    return text[2:] if text.startswith("W/") else text


def _etag_code(tag: str) -> str | None:
    """Return the unit code an ETag names (``None`` for ``*``), or refuse a malformed tag."""
    text = _strong(tag)
    if text == "*":
        return None
    inner = text[1:-1] if len(text) >= 2 and text[0] == text[-1] == '"' else ""
    code, at, stamp = inner.partition("@")
    if not (code and at and stamp) or '"' in inner:
        shown = tag.strip()[:60]
        raise InputError(
            f"If-Match: {shown!r} is not an ETag given out by this API; send the ETags of the "
            'unit versions you read (e.g. "350502001001@2026-01-01T00:00:00+00:00"), '
            "comma-separated, or * for any current version",
            field="If-Match",
        )
    return code


def _require_visible(
    visible: Callable[[str], bool] | None,
    layer: str,
    codes: Sequence[Any],
    parents: Mapping[str, Any] | None = None,
) -> None:
    if visible is None:
        return
    for code in codes:
        if not _sees(visible, str(code), parents or {}):
            raise NotFoundError(f"no unit {code!r} in layer {layer!r}", field="units")


def _require_ground_visible(
    visible: Callable[[str], bool] | None, changeset: ChangeSet, parents: Mapping[str, Any]
) -> None:
    """Refuse a change set that moves ground of a unit outside the caller's jurisdiction.

    Noding may give a neighbour across the jurisdiction's edge a vertex where
    a drawn line meets their shared edge (so that edge stays identical on both
    sides): its ground and parent are unchanged, so that is allowed. Anything
    else done to such a unit is refused without naming it (a hidden unit's
    code is not disclosed).
    """
    if visible is None:
        return
    outside = 0
    for change in changeset.levels:
        after = dict(zip(change.after["code"], change.after.geometry.values, strict=True))
        after_parent = dict(zip(change.after["code"], change.after["parent_code"], strict=True))
        rows = zip(
            change.before["code"],
            change.before.geometry.values,
            change.before["parent_code"],
            strict=True,
        )
        for code, geometry, parent in rows:
            if _sees(visible, str(code), parents):
                continue
            kept = after.get(code)
            new_parent = after_parent.get(code)
            same_parent = new_parent == parent or (pd.isna(new_parent) and pd.isna(parent))
            if kept is None or not same_parent or not shapely.equals(kept, geometry):
                outside += 1
    if outside:
        raise ForbiddenError(
            f"the edit moves ground of {outside} unit(s) outside your jurisdiction; "
            "a planner whose jurisdiction holds both sides can make it",
            field="geometry",
        )


def _sees(visible: Callable[[str], bool], code: str, parents: Mapping[str, Any]) -> bool:
    """Whether ``code`` lies in the caller's jurisdiction: it, or an ancestor, is seen wholly.

    Jurisdictions follow the units valid now; a unit an edit made a moment
    ago (taking effect a second later) or retired (a change set to revert) is
    seen through its parent, as it will be (or was).
    """
    seen: set[str] = set()
    current: Any = code
    while current is not None and current == current and str(current) not in seen:
        if visible(str(current)):
            return True
        seen.add(str(current))
        current = parents.get(str(current))
    return False


# -- one pipeline: check, impact, write -----------------------------------------------


class _MovedError(Exception):
    """Boundaries or places changed between reading the layer and writing: read again."""


def apply_changeset(
    db: Database,
    changeset: ChangeSet,
    *,
    valid_from: TimeLike = None,
    reason: str | None = None,
    dry_run: bool = False,
    actor: Principal = SYSTEM,
    state: LayerState | None = None,
    reverts: int | None = None,
    from_draft: int | None = None,
) -> EditResult:
    """Write a change set as new dated versions, all or nothing (or preview it).

    The one pipeline of every edit, preview and revert: the change set is
    checked against the layer as it stands (its unit versions still current,
    every level still a valid nested coverage around it), its impact computed
    around the touched units (:mod:`gis.edits._impact`), and, unless
    ``dry_run``, written in one transaction: only the units it changes, the
    buildings that move, the change set and the audit entries. The write
    re-checks that the boundaries and places are those the change set was
    checked on (else it starts again from a fresh read).

    Parameters
    ----------
    changeset : ChangeSet
        From an operation (or :func:`revert`).
    valid_from : time, optional
        When the new versions take effect (default: now, or just after the
        layer's newest version).
    reason : str, optional
        Why (stored with the change set).
    dry_run : bool
        Do everything but write: the impact preview.
    state : LayerState, optional
        The layer as read for the change set (read again if it moved).
    reverts : int, optional
        The id of the change set this one reverts.
    from_draft : int, optional
        The id of the stored draft this change set applies (it becomes applied).

    Raises
    ------
    StaleVersionError
        A unit the change set changes has a newer version than the one it
        was computed against (or a code it creates exists now).
    EditRefusedError
        A level would not be a valid nested coverage.
    ConflictError
        Boundaries kept changing while the edit was applied, or a level
        already has a version starting later.
    """
    for attempt in range(_ATTEMPTS):
        if attempt == 0 and state is not None and state.revision is not None:
            when = _when(state, valid_from)
        else:
            state, when = effective_state(db, layer=changeset.layer, valid_from=valid_from)
        _check_current(changeset, state)
        check_levels(state, changeset)
        # The buildings around each level, assigned before and after once: the
        # moves and the workload both read them.
        assignments = Assignments(state)
        moves = building_moves(state, changeset, assignments)
        result = EditResult(
            changeset=changeset,
            applied=not dry_run,
            changeset_id=None,
            valid_from=when,
            moves=moves,
            impact=impact(state, changeset, moves, db=db, assignments=assignments),
        )
        if dry_run:
            return result
        try:
            result.changeset_id = _write(
                db,
                changeset,
                state=state,
                when=when,
                moves=moves,
                reason=reason,
                actor=actor,
                reverts=reverts,
                from_draft=from_draft,
            )
        except _MovedError:
            continue
        return result
    raise ConflictError(
        f"{changeset.layer}: boundaries kept changing while this edit was applied; try again"
    )


def _when(state: LayerState, valid_from: TimeLike) -> datetime:
    """Return when an edit takes effect: the instant given, else :func:`_next_instant`."""
    if valid_from is not None:
        return parse_time(valid_from, field="valid_from")
    return _next_instant(state)


def _next_instant(state: LayerState) -> datetime:
    """Now, or just after the layer's newest version (versions never share a start)."""
    now = utc_now().replace(microsecond=0)  # stored to the second
    latest = list(state.latest.values())
    if latest and max(latest) >= now:
        return max(latest) + timedelta(seconds=1)
    return now


def _check_current(changeset: ChangeSet, state: LayerState) -> None:
    """Refuse a change set computed against unit versions that are no longer current."""
    stale = []
    for change in changeset.levels:
        frame = state.frame(change.level)
        codes = change.before["code"].astype(str).to_numpy()
        rows = level_arrays(frame).rows
        for code, geometry in zip(codes, change.before.geometry.values, strict=True):
            tag = changeset.etags.get(code)
            row = rows.get(code)
            if (
                row is None
                or (tag is not None and state.etags and state.etags.get(code) != tag)
                or not shapely.equals_exact(
                    shapely.normalize(as_multipolygon(frame.geometry.values[row])),
                    shapely.normalize(as_multipolygon(geometry)),
                    tolerance=0.0,
                )
            ):
                stale.append(code)
        # A code made must be free; a revert brings back codes it retired itself.
        taken = set(rows) if changeset.op == "revert" else state.codes_taken(change.level)
        stale.extend(code for code in change.created if code in taken)
    if stale:
        raise StaleVersionError(
            f"{len(stale)} unit(s) changed since this edit was computed: "
            + ", ".join(sorted(stale)[:20])
            + " — compute it again on the current boundaries",
            codes=sorted(stale),
        )


def _write(
    db: Database,
    changeset: ChangeSet,
    *,
    state: LayerState,
    when: datetime,
    moves: pd.DataFrame,
    reason: str | None,
    actor: Principal,
    reverts: int | None,
    from_draft: int | None = None,
) -> int:
    """Store the change set in one transaction: only the units it changes; its id."""
    layer = changeset.layer
    source = f"edit:{changeset.op}"
    with db.transaction() as repo:
        repo.lock_layer(layer=layer)  # writers of this layer wait here, in turn
        counters = repo.revisions()
        if counters.get("boundaries", 0) != state.revision or (
            state.places_revision is not None and counters.get("places", 0) != state.places_revision
        ):
            raise _MovedError
        stored: list[ImportSummary] = []
        written: list[tuple[ImportSummary, gpd.GeoDataFrame]] = []
        for change in changeset.levels:
            if stored and not change.touched:
                continue
            stored.append(
                repo.replace_units(
                    layer=layer,
                    level=change.level,
                    units=change.after[[*UNIT_COLUMNS, change.after.geometry.name]],
                    valid_from=when,
                    source=source,
                    scope_parents=None,
                    scope_codes=[
                        *change.before["code"].astype(str),
                        *change.after["code"].astype(str),
                    ],
                    # The levels below that followed belong to the first import.
                    part_of=stored[0].import_id if stored else None,
                )
            )
            written.append((stored[-1], change.after))
        main = stored[0]
        if len(moves):
            repo.places.store_moves(import_id=main.import_id, layer=layer, moves=moves)
        append_audit(
            repo,
            actor=actor,
            action="boundaries.import",
            target=f"layer:{layer}:{changeset.level}",
            detail={
                "source": source,
                "import_id": main.import_id,
                **main.counts(),
                "cascaded": {s.level: s.counts() for s in stored[1:]},
                "moved_buildings": len(moves),
            },
        )
        changeset_id = _store(
            repo,
            changeset,
            import_id=main.import_id,
            moves=moves,
            when=when,
            reason=reason,
            actor=actor,
            reverts=reverts,
            from_draft=from_draft,
        )
        # The counter as this transaction leaves it (the layer is locked: ours alone).
        revision = repo.revisions().get("boundaries", 0)
    if state.revision is not None:
        state_cache(db).advance(
            layer=layer, revision=state.revision, to_revision=revision, written=written
        )
    return changeset_id


def _store(
    repo: Repository,
    changeset: ChangeSet,
    *,
    import_id: int | None,
    moves: pd.DataFrame,
    when: datetime,
    reason: str | None,
    actor: Principal,
    reverts: int | None,
    from_draft: int | None = None,
) -> int:
    rows = []
    for change in changeset.levels:
        for side, frame in (("before", change.before), ("after", change.after)):
            part = frame[[*UNIT_COLUMNS, frame.geometry.name]].copy()
            part.insert(0, "side", side)
            part.insert(1, "level", change.level)
            part["version_from"] = when if side == "after" else None
            rows.append(part)
    units = gpd.GeoDataFrame(pd.concat(rows, ignore_index=True), geometry="geometry", crs=4490)
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
    changeset_id = repo.changesets.add(
        layer=changeset.layer,
        level=changeset.level,
        op=changeset.op,
        params=_jsonable(changeset.params),
        author=actor.actor,
        reason=reason,
        created_at=utc_now(),
        valid_from=when,
        import_id=import_id,
        reverts=reverts,
        summary=summary,
        units=units,
        from_draft=from_draft,
    )
    # Patrol routes planned on a boundary that moved need re-planning.
    repo.routes.mark_stale(
        layer=changeset.layer,
        codes=_moved_codes(changeset),
        reason=f"change set {changeset_id} moved the unit's boundary",
    )
    append_audit(
        repo,
        actor=actor,
        action="boundaries.revert" if reverts is not None else "boundaries.edit",
        target=f"layer:{changeset.layer}:{changeset.level}",
        detail={
            "changeset": changeset_id,
            "op": changeset.op,
            "import_id": import_id,
            "created": len(changeset.created),
            "changed": len(changeset.changed),
            "retired": len(changeset.retired),
            "moved_buildings": len(moves),
            **({"reverts": reverts} if reverts is not None else {}),
            **({"draft": from_draft} if from_draft is not None else {}),
        },
    )
    return changeset_id


def _moved_codes(changeset: ChangeSet) -> list[str]:
    # Units retired, or whose boundary after the change differs from before.
    moved: list[str] = []
    for change in changeset.levels:
        after = dict(zip(change.after["code"], change.after.geometry.values, strict=True))
        for code, before in zip(change.before["code"], change.before.geometry.values, strict=True):
            now = after.get(code)
            if now is None or not shapely.equals(before, now):
                moved.append(str(code))
    return moved


# -- history and revert --------------------------------------------------------------


def changeset_history(
    db: Database,
    *,
    layer: str,
    unit: str | None = None,
    visible: Sequence[str] | None = None,
    limit: int = 100,
    offset: int = 0,
    status: str | None = None,
) -> tuple[list[dict[str, Any]], int]:
    """Return a layer's change sets, newest first (those touching ``unit`` if given).

    ``visible``, when given, keeps only change sets touching one of these codes;
    ``status`` only those in it (``applied``, ``draft``, ``reverted``, ``discarded``).
    """
    with db.reader() as repo:
        if visible is not None:
            visible = sorted(_with_retired_descendants(repo, layer=layer, visible=visible))
        return repo.changesets.history(
            layer=layer, unit=unit, codes=visible, status=status, limit=limit, offset=offset
        )


def _with_retired_descendants(repo: Repository, *, layer: str, visible: Sequence[str]) -> set[str]:
    """Add to ``visible`` the retired units that lay under one of them (at any time).

    Jurisdictions name the units valid now; a change set whose units were all
    retired since (a split merged again) is still the caller's history, as
    :func:`changeset_detail` sees it through the parents. Units valid now keep
    the jurisdiction's own answer.
    """
    seen = set(visible)
    current = {code for code, _ in repo.unit_tree(layer=layer, at=utc_now())}
    parents: dict[str, set[str]] = {}
    for code, parent in repo.unit_tree(layer=layer, at=None):
        if code not in current and parent is not None:
            parents.setdefault(code, set()).add(parent)
    grew = True
    while grew:  # one pass per level of the layer
        grew = False
        for code, ups in parents.items():
            if code not in seen and ups & seen:
                seen.add(code)
                grew = True
    return seen


def changeset_detail(
    db: Database,
    *,
    layer: str,
    changeset_id: int,
    visible: Callable[[str], bool] | None = None,
) -> dict[str, Any]:
    """Return one stored change set with its units before and after (GeoDataFrame).

    With ``visible``, a change set touching a unit outside the caller's
    jurisdiction is "not found". A unit the change set retired (a merged or
    split micro-grid) is no longer in any jurisdiction: it counts as visible
    when its parent is.
    """
    with db.reader() as repo:
        found = repo.changesets.get(changeset_id=changeset_id)
        missing = NotFoundError(f"no change set {changeset_id} in layer {layer!r}", field="id")
        if found is None or found["layer"] != layer:
            raise missing
        units = found["units"]
        existing = units[units["side"] == "before"]["code"]
        parents = dict(zip(units["code"].astype(str), units["parent_code"], strict=True))
        if visible is not None and not all(_sees(visible, str(c), parents) for c in existing):
            # A unit of the change set whose parent it does not list (a noded
            # neighbour made by an earlier edit, valid from a second later and
            # so in no jurisdiction yet): walk up the layer as it was then.
            when = found["valid_from"]
            for at in (when, when - timedelta(microseconds=1)):
                for code, parent in repo.unit_tree(layer=layer, at=at):
                    parents.setdefault(str(code), parent)
            if not all(_sees(visible, str(c), parents) for c in existing):
                raise missing
        found["reverted_by"] = repo.changesets.reverted_by(changeset_id=changeset_id)
    return found


def revert(
    db: Database,
    *,
    layer: str,
    changeset_id: int,
    valid_from: TimeLike = None,
    reason: str | None = None,
    dry_run: bool = False,
    actor: Principal = SYSTEM,
    visible: Callable[[str], bool] | None = None,
) -> EditResult:
    """Restore the geometry before a change set exactly, as a new change set.

    Refused with :class:`StaleVersionError` when a unit it made or changed has
    changed since (revert the later change sets first), and with
    :class:`ConflictError` when it was reverted already.
    """
    stored = changeset_detail(db, layer=layer, changeset_id=changeset_id, visible=visible)
    if stored.get("status", "applied") in ("draft", "discarded"):
        raise ConflictError(f"change set {changeset_id} is {stored['status']}: nothing to revert")
    if stored["reverted_by"] is not None:
        raise ConflictError(
            f"change set {changeset_id} was reverted already (by {stored['reverted_by']})"
        )
    state, when = effective_state(db, layer=layer, valid_from=valid_from)
    return apply_changeset(
        db,
        _reverse(stored, state, changeset_id=changeset_id),
        valid_from=when,
        reason=reason or f"revert change set {changeset_id}",
        dry_run=dry_run,
        actor=actor,
        state=state,
        reverts=changeset_id,
    )


def _reverse(stored: Mapping[str, Any], state: LayerState, *, changeset_id: int) -> ChangeSet:
    """Return the change set undoing a stored one (what it made goes, the rest comes back)."""
    units = stored["units"]
    levels = []
    for level in dict.fromkeys(units["level"]):
        mine = units[units["level"] == level]
        before = mine[mine["side"] == "after"]  # what is there now
        after = mine[mine["side"] == "before"]  # what comes back
        after_codes = set(after["code"])
        before_codes = set(before["code"])
        levels.append(
            LevelChange(
                level=str(level),
                before=before[[*UNIT_COLUMNS, "geometry"]].reset_index(drop=True),
                after=after[[*UNIT_COLUMNS, "geometry"]].reset_index(drop=True),
                created=tuple(sorted(after_codes - before_codes)),
                changed=tuple(sorted(after_codes & before_codes)),
                retired=tuple(sorted(before_codes - after_codes)),
            )
        )
    return ChangeSet(
        op="revert",
        params={"changeset": changeset_id},
        layer=str(stored["layer"]),
        level=str(stored["level"]),
        levels=tuple(levels),
        # A revert brings back codes once retired: they are taken, but by this very change.
        etags={
            code: state.etags[code]
            for change in levels
            for code in change.before["code"]
            if code in state.etags
        },
    )


# -- impact --------------------------------------------------------------------------


def impact(
    state: LayerState,
    changeset: ChangeSet,
    moves: pd.DataFrame,
    *,
    db: Database | None = None,
    assignments: Assignments | None = None,
) -> dict[str, Any]:
    """Return what a change set does to places, workload and alignment (JSON-ready).

    ``moves`` are the buildings whose lowest-level unit changes
    (:func:`gis.edits._impact.building_moves`); POIs, staff of changed or
    retired units (ids, units and roles, no names), workload per touched unit
    against its level's target and the same-grid (同格) check before and after
    are computed here, around the touched units only.
    """
    found = (
        state_cache(db).places(state.places_revision)
        if db is not None and state.places_revision is not None
        else None
    )
    if found is not None and found.pois is not state.pois:
        found = None  # not the POIs the state was read with: index them afresh
    return {
        "buildings": len(moves),
        "households": int(moves["households"].sum()) if len(moves) else 0,
        "persons": int(moves["persons"].sum()) if len(moves) else 0,
        "pois": poi_moves(
            state,
            changeset,
            points=found.poi_points if found is not None else None,
            tree=found.poi_tree if found is not None else None,
            columns=(found.poi_keys, found.poi_names) if found is not None else None,
        ),
        "moves": _records(moves),
        "staff": _staff(changeset, db),
        "workload": workload(state, changeset, assignments),
        "alignment": alignment(state, changeset, _alignment_others(state, changeset, db)),
    }


def _staff(changeset: ChangeSet, db: Database | None) -> list[dict[str, Any]]:
    """Staff whose unit is retired (they need a new one) or changes ground."""
    if db is None:
        return []
    from gis.staff import list_staff

    retired = set(changeset.retired)
    touched = [*changeset.changed, *changeset.retired]
    if not touched:
        return []
    return [
        {
            "id": member.id,
            "unit_code": member.unit_code,
            "role": member.role,
            "change": "retired" if member.unit_code in retired else "changed",
        }
        for member in list_staff(db, layer=changeset.layer, unit_codes=touched)
    ]


def _alignment_others(
    state: LayerState, changeset: ChangeSet, db: Database | None
) -> gpd.GeoDataFrame | None:
    """Return the units of the other layer of the same-grid pair around the change, if any."""
    other = alignment_other(changeset)
    if db is None or other is None:
        return None
    layer, level = other
    # The other layer from the state cache (read once per revision), the units
    # whose box meets the check's box, as the database's box filter gives them.
    try:
        theirs = cached_state(db, layer=layer, at=state.at).frame(level)
    except NotFoundError:
        return None
    if theirs.empty:
        return theirs
    box = alignment_box(changeset)
    return theirs.iloc[np.sort(theirs.sindex.query(box))]


def read_drawing(path: str, *, label: str | None = None) -> Any:
    """Read a planner's drawing from a vector file (GeoJSON, GeoPackage...) in EPSG:4490.

    Every feature's geometry is joined: polygons into one (Multi)Polygon,
    lines into one (Multi)LineString.

    Raises
    ------
    InputError
        Unreadable file, no CRS, no geometry, or points.
    """
    from gis.crs import to_storage_crs
    from gis.files import open_source, read_frame

    frame = to_storage_crs(read_frame(open_source(path, label=label)))
    geometries = [g for g in frame.geometry.values if g is not None and not g.is_empty]
    if not geometries:
        raise InputError(f"{label or path}: no geometry", field="geometry")
    kinds = {g.geom_type.replace("Multi", "") for g in geometries}
    if kinds == {"Polygon"}:
        return shapely.union_all(geometries)
    if kinds == {"LineString"}:
        parts = [p for g in geometries for p in shapely.get_parts(g)]
        return parts[0] if len(parts) == 1 else shapely.MultiLineString(parts)
    raise InputError(
        f"{label or path}: the drawing must be polygons or lines, not {', '.join(sorted(kinds))}",
        field="geometry",
    )


# -- output --------------------------------------------------------------------------


def changeset_geojson(changeset: ChangeSet) -> dict[str, Any]:
    """Return every affected unit before and after as one GeoJSON FeatureCollection."""
    features = []
    for change in changeset.levels:
        for side, frame in (("before", change.before), ("after", change.after)):
            for record, geometry in zip(
                frame[list(UNIT_COLUMNS)].to_dict("records"), frame.geometry.values, strict=True
            ):
                features.append(
                    {
                        "type": "Feature",
                        "properties": {
                            "side": side,
                            "level": change.level,
                            **{k: record[k] for k in ("code", "name", "parent_code", "kind")},
                        },
                        "geometry": shapely.geometry.mapping(geometry),
                    }
                )
    return {"type": "FeatureCollection", "features": features}


def changeset_json(stored: Mapping[str, Any], *, units: bool = True) -> dict[str, Any]:
    """Return a stored change set as JSON (its units before/after as a FeatureCollection)."""
    answer = {
        k: (v.isoformat() if isinstance(v, datetime) else v)
        for k, v in stored.items()
        if k != "units"
    }
    if units and "units" in stored:
        frame = stored["units"]
        answer["geometry"] = {
            "type": "FeatureCollection",
            "features": [
                {
                    "type": "Feature",
                    "properties": {
                        k: (v.isoformat() if isinstance(v, datetime) else v)
                        for k, v in record.items()
                        if k in ("side", "level", "code", "name", "parent_code", "kind")
                    },
                    "geometry": shapely.geometry.mapping(geometry),
                }
                for record, geometry in zip(
                    frame.drop(columns=frame.geometry.name).to_dict("records"),
                    frame.geometry.values,
                    strict=True,
                )
            ],
        }
    return answer


def _records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    return [
        {k: (None if isinstance(v, float) and np.isnan(v) else v) for k, v in row.items()}
        for row in frame.astype(object).to_dict("records")
    ]


def _jsonable(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, float | int | str | bool) or value is None:
        return value
    if isinstance(value, np.generic):
        return value.item()
    return str(value)
