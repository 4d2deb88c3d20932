"""The edit service: run an operation on the stored layer, preview it, apply it, revert it.

Previewing and applying are one code path (:func:`apply_changeset`): the
change set's new state goes through the import pipeline
(:func:`gis.units.import_units`: validation, nesting, the buildings that
move, one write transaction), with ``dry_run`` for a preview. Applying
re-checks, inside the write transaction, that every unit version the change
set was computed against is still current (else :class:`StaleVersionError`
naming the units changed since) and stores the change set there too
(table ``changesets``: author, time, reason, effective date, operation and
parameters, every unit before and after, the import holding the moves).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from gis.access.audit import append_audit
from gis.access.principal import SYSTEM, Principal
from gis.assign import DEFAULT_TARGETS, assign_buildings
from gis.edits._model import (
    UNIT_COLUMNS,
    ChangeSet,
    EditOptions,
    LayerState,
    LevelChange,
    as_multipolygon,
    concat_units,
    unit_etag,
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
from gis.errors import ConflictError, InputError, NotFoundError, StaleVersionError
from gis.repository import Database, Repository
from gis.times import TimeLike, parse_time, utc_now
from gis.units import ImportResult, import_units

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
#: The layer pair the same-grid (同格) check compares by default.
_ALIGNMENT_PAIR = (("governance", "grid"), ("police", "beat"))


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
    """Read the current units of every level of ``layer``, the codes used and the places.

    Parameters
    ----------
    db : Database
        Where the layer is stored.
    layer : str
        The layer's name.
    at : datetime, optional
        The instant whose units are current (default: now).
    """
    with db.reader() as repo:
        return read_state(repo, layer=layer, at=at, read_buildings=_buildings_reader(db))


def read_state(
    repo: Repository,
    *,
    layer: str,
    at: datetime | None = None,
    read_buildings: Callable[[tuple[float, float, float, float]], gpd.GeoDataFrame] | None = None,
) -> LayerState:
    """Read a layer's state inside an open repository transaction (see :func:`load_state`)."""
    if layer not in {summary.name for summary in repo.list_layers()}:
        raise NotFoundError(f"no layer {layer!r}", field="layer")
    at = at or utc_now()
    revision = repo.revisions().get("boundaries", 0)
    spec = repo.layer_spec(name=layer)
    levels = {}
    taken = {}
    etags: dict[str, str] = {}
    latest: dict[str, datetime] = {}
    every = repo.units_frame(layer=layer, all_versions=True)
    for level in spec.levels:
        frame = repo.units_frame(layer=layer, level=level.name, at=at)
        etags.update(
            (str(c), unit_etag(str(c), v))
            for c, v in zip(frame["code"], frame["valid_from"], strict=True)
        )
        levels[level.name] = frame[[*UNIT_COLUMNS, frame.geometry.name]].reset_index(drop=True)
        versions = every[every["level"] == level.name]
        taken[level.name] = set(versions["code"].astype(str))
        if len(versions):
            latest[level.name] = max(versions["valid_from"])
    return LayerState(
        spec=spec,
        levels=levels,
        taken=taken,
        pois=repo.places.pois_table(),
        etags=etags,
        revision=revision,
        latest=latest,
        read_buildings=read_buildings,
        at=at,
    )


def _buildings_reader(
    db: Database,
) -> Callable[[tuple[float, float, float, float]], gpd.GeoDataFrame]:
    def read(bbox: tuple[float, float, float, float]) -> gpd.GeoDataFrame:
        with db.reader() as repo:
            frame = repo.places.buildings_frame(bbox=bbox)
        columns = ["key", "households", "persons", "entrance_lon", "entrance_lat"]
        return frame[[*columns, frame.geometry.name]]

    return read


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
    """
    state, when = effective_state(db, layer=layer, valid_from=valid_from)
    check_etags(state, if_match)
    named = [*units, *([to] if isinstance(to, str) else list(to or []))]
    _require_visible(visible, layer, named)
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
    _require_visible(
        visible, layer, [c for change in changeset.levels for c in change.before["code"]]
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
    when = (
        parse_time(valid_from, field="valid_from")
        if valid_from is not None
        else _next_instant(state)
    )
    if state.at is None or when > state.at:
        state = load_state(db, layer=layer, at=when)
    return state, when


def check_etags(state: LayerState, tags: Sequence[str]) -> None:
    """Refuse (:class:`StaleVersionError`) ETags of unit versions that are no longer current."""
    stale = []
    for tag in tags:
        text = tag.strip()
        if text.startswith("W/"):
            text = text[2:]
        code = text.strip('"').split("@", 1)[0]
        if state.etags.get(code) != f'"{text.strip(chr(34))}"':
            stale.append(code)
    if stale:
        raise StaleVersionError(
            f"{len(stale)} unit(s) changed since you read them: {', '.join(sorted(stale)[:20])}",
            codes=sorted(stale),
        )


def _require_visible(
    visible: Callable[[str], bool] | None, layer: str, codes: Sequence[Any]
) -> None:
    if visible is None:
        return
    for code in codes:
        if not visible(str(code)):
            raise NotFoundError(f"no unit {code!r} in layer {layer!r}", field="units")


# -- applying ------------------------------------------------------------------------


class _MovedError(Exception):
    """Boundaries changed between reading the layer and writing: read again."""


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
) -> EditResult:
    """Write a change set as new dated versions, all or nothing (or preview it).

    Parameters
    ----------
    changeset : ChangeSet
        From an operation (or :func:`revert`).
    valid_from : time, optional
        When the new versions take effect (default: now).
    reason : str, optional
        Why (stored with the change set).
    dry_run : bool
        Do everything but write: the impact preview.
    state : LayerState, optional
        The layer as read for the change set (read again if it moved).
    reverts : int, optional
        The id of the change set this one reverts.

    Raises
    ------
    StaleVersionError
        A unit the change set changes has a newer version than the one it
        was computed against (or a code it creates exists now).
    ValidationFailedError, ConflictError
        From the import pipeline.
    """
    for attempt in range(_ATTEMPTS):
        if attempt == 0 and state is not None and state.revision is not None:
            fresh = state
            when = (
                parse_time(valid_from, field="valid_from")
                if valid_from is not None
                else _next_instant(fresh)
            )
        else:
            fresh, when = effective_state(db, layer=changeset.layer, valid_from=valid_from)
        _check_current(changeset, fresh)
        after = changeset.apply_to(fresh)
        units, levels_below = _import_frames(changeset, fresh, after)
        stored: dict[str, int] = {}

        def precondition(repo: Repository, fresh: LayerState = fresh) -> None:
            # The boundaries are as read (and checked) above: the versions are current.
            if repo.revisions().get("boundaries", 0) != fresh.revision:
                raise _MovedError

        def on_written(
            repo: Repository,
            result: ImportResult,
            stored: dict[str, int] = stored,
            when: datetime = when,
        ) -> None:
            stored["id"] = _store(
                repo, changeset, result, when=when, reason=reason, actor=actor, reverts=reverts
            )

        try:
            result = import_units(
                db,
                units=units,
                layer=changeset.layer,
                level=changeset.level,
                source=f"edit:{changeset.op}",
                valid_from=when,
                cascade=None,
                keep_attributes=True,
                dry_run=dry_run,
                levels_below=levels_below,
                actor=actor,
                exact=True,
                precondition=None if dry_run else precondition,
                on_written=None if dry_run else on_written,
            )
        except _MovedError:
            continue
        return EditResult(
            changeset=changeset,
            applied=not dry_run,
            changeset_id=stored.get("id"),
            valid_from=when,
            moves=result.moves,
            impact=impact(fresh, changeset, result.moves, db=db),
        )
    raise ConflictError(
        f"{changeset.layer}: boundaries kept changing while this edit was applied; try again"
    )


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
        current = dict(zip(frame["code"].astype(str), frame.geometry.values, strict=True))
        for code, geometry in zip(
            change.before["code"].astype(str), change.before.geometry.values, strict=True
        ):
            tag = changeset.etags.get(code)
            if (
                code not in current
                or (tag is not None and state.etags and state.etags.get(code) != tag)
                or not shapely.equals_exact(
                    shapely.normalize(as_multipolygon(current[code])),
                    shapely.normalize(as_multipolygon(geometry)),
                    tolerance=0.0,
                )
            ):
                stale.append(code)
        # A code made must be free; a revert brings back codes it retired itself.
        taken = set(current) if changeset.op == "revert" else state.codes_taken(change.level)
        stale.extend(code for code in change.created if code in taken)
    if stale:
        raise StaleVersionError(
            f"{len(stale)} unit(s) changed since this edit was computed: "
            + ", ".join(sorted(stale)[:20])
            + " — compute it again on the current boundaries",
            codes=sorted(stale),
        )


def _import_frames(
    changeset: ChangeSet, state: LayerState, after: LayerState
) -> tuple[gpd.GeoDataFrame, dict[str, gpd.GeoDataFrame]]:
    """Return the edited level's units under the touched parents, and the levels below."""
    level = changeset.level
    first = changeset.levels[0]
    frame = after.frame(level)
    if state.spec.parent_level(level) is None:
        units = frame
    else:
        scope = {
            str(p)
            for p in [*first.before["parent_code"], *first.after["parent_code"]]
            if p is not None
        }
        units = frame[frame["parent_code"].astype(str).isin(scope)]
    below = {change.level: after.frame(change.level) for change in changeset.levels[1:]}
    return units.reset_index(drop=True), below


def _store(
    repo: Repository,
    changeset: ChangeSet,
    result: ImportResult,
    *,
    when: datetime,
    reason: str | None,
    actor: Principal,
    reverts: int | None,
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
        "moved_buildings": len(result.moves),
        "moved_households": int(result.moves["households"].sum()) if len(result.moves) else 0,
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
        import_id=result.summary.import_id,
        reverts=reverts,
        summary=summary,
        units=units,
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
            "import_id": result.summary.import_id,
            "created": len(changeset.created),
            "changed": len(changeset.changed),
            "retired": len(changeset.retired),
            "moved_buildings": len(result.moves),
            **({"reverts": reverts} if reverts is not None else {}),
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
) -> tuple[list[dict[str, Any]], int]:
    """Return a layer's change sets, newest first (those touching ``unit`` if given).

    ``visible``, when given, keeps only change sets touching one of these codes.
    """
    with db.reader() as repo:
        return repo.changesets.history(
            layer=layer, unit=unit, codes=visible, limit=limit, offset=offset
        )


def changeset_detail(
    db: Database,
    *,
    layer: str,
    changeset_id: int,
    visible: Callable[[str], bool] | None = None,
) -> dict[str, Any]:
    """Return one stored change set with its units before and after (GeoDataFrame).

    With ``visible``, a change set touching a unit outside the caller's
    jurisdiction is "not found".
    """
    with db.reader() as repo:
        found = repo.changesets.get(changeset_id=changeset_id)
        missing = NotFoundError(f"no change set {changeset_id} in layer {layer!r}", field="id")
        if found is None or found["layer"] != layer:
            raise missing
        units = found["units"]
        existing = units[units["side"] == "before"]["code"]
        if visible is not None and not all(visible(str(c)) for c in existing):
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
    if stored["reverted_by"] is not None:
        raise ConflictError(
            f"change set {changeset_id} was reverted already (by {stored['reverted_by']})"
        )
    state, when = effective_state(db, layer=layer, valid_from=valid_from)
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
    changeset = ChangeSet(
        op="revert",
        params={"changeset": changeset_id},
        layer=layer,
        level=str(stored["level"]),
        levels=tuple(levels),
        etags={
            code: state.etags[code]
            for change in levels
            for code in change.before["code"]
            if code in state.etags
        },
    )
    # A revert brings back codes once retired: they are taken, but by this very change.
    return apply_changeset(
        db,
        changeset,
        valid_from=when,
        reason=reason or f"revert change set {changeset_id}",
        dry_run=dry_run,
        actor=actor,
        state=state,
        reverts=changeset_id,
    )


# -- impact --------------------------------------------------------------------------


def impact(
    state: LayerState,
    changeset: ChangeSet,
    moves: pd.DataFrame,
    *,
    db: Database | None = None,
) -> dict[str, Any]:
    """Return what a change set does to places, workload and alignment (JSON-ready).

    ``moves`` are the buildings whose lowest-level unit changes (from the
    import pipeline); POIs, staff of changed or retired units (ids, units and
    roles, no names), workload per touched unit against its level's target and
    the same-grid (同格) check before and after are computed here.
    """
    return {
        "buildings": len(moves),
        "households": int(moves["households"].sum()) if len(moves) else 0,
        "persons": int(moves["persons"].sum()) if len(moves) else 0,
        "pois": _poi_moves(state, changeset),
        "moves": _records(moves),
        "staff": _staff(changeset, db),
        "workload": _workload(state, changeset),
        "alignment": _alignment(state, changeset, db),
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


def _poi_moves(state: LayerState, changeset: ChangeSet) -> list[dict[str, Any]]:
    pois = state.pois
    deepest = changeset.levels[-1]
    if pois is None or pois.empty or deepest.level != state.spec.levels[-1].name:
        return []
    points = shapely.points(
        pois["lon"].astype(float).to_numpy(), pois["lat"].astype(float).to_numpy()
    )
    before = _locate(points, deepest.before)
    after = _locate(points, deepest.after)
    moved = []
    for i in np.flatnonzero((before != None) | (after != None)):  # noqa: E711 (elementwise)
        if before[i] != after[i] and after[i] is not None:
            moved.append(
                {
                    "key": str(pois["key"].iloc[i]),
                    "name": pois["name"].iloc[i],
                    "from_unit": before[i]
                    if before[i] is not None
                    else _owner(points[i], state, deepest.level),
                    "to_unit": after[i],
                }
            )
    return [m for m in moved if m["from_unit"] != m["to_unit"]]


def _locate(points: np.ndarray, units: gpd.GeoDataFrame) -> np.ndarray:
    found = np.full(len(points), None, dtype=object)
    if units.empty:
        return found
    geometries = np.asarray(units.geometry.values, dtype=object)
    tree = shapely.STRtree(geometries)
    point_index, unit_index = tree.query(points, predicate="covered_by")
    codes = units["code"].astype(str).to_numpy()
    for p, u in sorted(
        zip(point_index, unit_index, strict=True), key=lambda x: (x[0], codes[x[1]]), reverse=True
    ):
        found[p] = codes[u]  # the smallest code last: it wins on a shared edge
    return found


def _owner(point: shapely.Point, state: LayerState, level: str) -> str | None:
    frame = state.frame(level)
    hits = frame.sindex.query(point, predicate="covered_by")
    return min((str(frame["code"].iloc[h]) for h in hits), default=None)


def _workload(state: LayerState, changeset: ChangeSet) -> list[dict[str, Any]]:
    first = concat_units([changeset.levels[0].before, changeset.levels[0].after])
    area = shapely.union_all(shapely.envelope(np.asarray(first.geometry.values, dtype=object)))
    buildings = state.buildings_in(area)
    rows: list[dict[str, Any]] = []
    for change in changeset.levels:
        codes = list(
            dict.fromkeys([*change.before["code"].astype(str), *change.after["code"].astype(str)])
        )
        counts_before = _households(buildings, state.frame(change.level), change, side="before")
        counts_after = _households(buildings, state.frame(change.level), change, side="after")
        target = DEFAULT_TARGETS.get(change.level)
        for code in codes:
            rows.append(
                {
                    "code": code,
                    "level": change.level,
                    "before": counts_before.get(code) if code not in change.created else None,
                    "after": counts_after.get(code) if code not in change.retired else None,
                    "target_min": None if target is None else target.min_households,
                    "target_max": None if target is None else target.max_households,
                }
            )
    return rows


def _households(
    buildings: gpd.GeoDataFrame | None,
    frame: gpd.GeoDataFrame,
    change: LevelChange,
    *,
    side: str,
) -> dict[str, int]:
    """Households per unit of the touched area, before or after the change."""
    touched = concat_units([change.before, change.after])
    area = shapely.union_all(shapely.envelope(np.asarray(touched.geometry.values, dtype=object)))
    if buildings is None or buildings.empty:
        return {}
    near = frame.iloc[frame.sindex.query(shapely.buffer(area, 0.002), predicate="intersects")]
    if side == "after":
        gone = set(change.before["code"].astype(str)) | set(change.after["code"].astype(str))
        near = concat_units([near[~near["code"].astype(str).isin(gone)], change.after])
    else:
        near = concat_units([near])
    mine = buildings.iloc[buildings.sindex.query(area, predicate="intersects")].reset_index(
        drop=True
    )
    if mine.empty:
        return {}
    mine = mine.copy()
    entrances = [
        None if pd.isna(x) or pd.isna(y) else shapely.Point(float(x), float(y))
        for x, y in zip(mine["entrance_lon"], mine["entrance_lat"], strict=True)
    ]
    mine["entrance"] = entrances
    assigned = assign_buildings(mine, near, entrance="entrance").frame
    joined = assigned.merge(mine[["key", "households"]], on="key")
    return {str(k): int(v) for k, v in joined.groupby("unit")["households"].sum().items()}


def _alignment(state: LayerState, changeset: ChangeSet, db: Database | None) -> dict[str, Any]:
    """Same-grid (同格) violations around the change, before and after."""
    from gis.alignment import check_alignment

    empty: dict[str, Any] = {"before": 0, "after": 0, "added": [], "resolved": [], "checked": None}
    pair = dict(_ALIGNMENT_PAIR)
    change = changeset.level_change(pair.get(changeset.layer, ""))
    if db is None or changeset.layer not in pair or change is None:
        return empty
    other_layer = next(name for name in pair if name != changeset.layer)
    other_level = pair[other_layer]
    touched = concat_units([change.before, change.after])
    minx, miny, maxx, maxy = shapely.buffer(
        shapely.union_all(shapely.envelope(np.asarray(touched.geometry.values, dtype=object))),
        0.001,
    ).bounds
    with db.reader() as repo:
        if other_layer not in {s.name for s in repo.list_layers()}:
            return empty
        others = repo.units_frame(
            layer=other_layer, level=other_level, bbox=(minx, miny, maxx, maxy)
        )
    if others.empty:
        return empty
    frame = state.frame(change.level)
    box = shapely.box(minx, miny, maxx, maxy)
    near = frame.iloc[frame.sindex.query(box, predicate="intersects")]
    gone = set(change.before["code"].astype(str)) | set(change.after["code"].astype(str))
    sides = {
        "before": concat_units([near]),
        "after": concat_units([near[~near["code"].astype(str).isin(gone)], change.after]),
    }
    found: dict[str, set[tuple[str, tuple[str, ...]]]] = {}
    for side, units in sides.items():
        mine = units[["code", "parent_code", "geometry"]]
        theirs = others[["code", "parent_code", "geometry"]]
        a, b = (mine, theirs) if changeset.layer == _ALIGNMENT_PAIR[0][0] else (theirs, mine)
        report = check_alignment(a, b)
        found[side] = {(v.kind, tuple(v.codes)) for v in report.violations if gone & set(v.codes)}

    def listed(items: set[tuple[str, tuple[str, ...]]]) -> list[dict[str, Any]]:
        return [{"kind": k, "codes": list(c)} for k, c in sorted(items)]

    return {
        "before": len(found["before"]),
        "after": len(found["after"]),
        "added": listed(found["after"] - found["before"]),
        "resolved": listed(found["before"] - found["after"]),
        "checked": " in ".join(f"{layer}:{level}" for layer, level in _ALIGNMENT_PAIR),
    }


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
