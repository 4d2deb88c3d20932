"""What a change set does to places, workload and alignment, computed around it only.

An edit touches a few units; everything here looks at those units, their
neighbours and their ancestors, never the whole layer:

- :func:`building_moves`: the buildings whose lowest-level unit changes (the
  same rule and answer as the import pipeline's re-assignment diff, on the
  units around the touched ground);
- :func:`poi_moves`: the POIs found by a spatial index over the touched ground;
- :func:`workload`: households per touched unit before and after;
- :func:`alignment`: same-grid (同格) violations around the change.

tests/test_edit_impact.py checks each against a recomputation over the whole
layer on real data.
"""

from __future__ import annotations

from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from numpy.typing import NDArray
from shapely.geometry.base import BaseGeometry

from gis.assign import DEFAULT_TARGETS
from gis.edits._arrays import after_frame, envelope, level_arrays, stored_frame
from gis.edits._assigned import Assignments
from gis.edits._model import ChangeSet, LayerState, LevelChange, as_multipolygon
from gis.units import MOVE_COLUMNS

__all__ = [
    "ALIGNMENT_PAIR",
    "after_units",
    "alignment",
    "building_moves",
    "effective_codes",
    "envelope",
    "near",
    "poi_moves",
    "workload",
]

#: The layer pair the same-grid (同格) check compares by default.
ALIGNMENT_PAIR = (("governance", "grid"), ("police", "beat"))


# -- the area around a change --------------------------------------------------------


def near(frame: gpd.GeoDataFrame, area: BaseGeometry) -> gpd.GeoDataFrame:
    """Return the units of ``frame`` meeting ``area``, in the frame's order (its spatial index)."""
    if frame.empty or area.is_empty:
        return frame.iloc[:0]
    return frame.iloc[np.sort(frame.sindex.query(area, predicate="intersects"))]


def after_units(
    frame: gpd.GeoDataFrame, change: LevelChange, area: BaseGeometry
) -> gpd.GeoDataFrame:
    """Return the units of a level meeting ``area`` as they are after ``change``, by code.

    ``frame`` is the level as stored; the change's units replace their stored
    versions and the units it makes join.
    """
    return after_frame(frame, change, area)


def effective_codes(change: LevelChange) -> set[str]:
    """Return the codes whose stored unit really changes (what the write will store anew).

    A unit an operation hands back with the same fields and the very same
    vertices keeps its stored version (:meth:`gis.repository.Repository.replace_units`).
    """
    before = {str(c): i for i, c in enumerate(change.before["code"])}
    found = set(change.created) | set(change.retired)
    # The fields compared, read once per column (a row of a frame costs a Series).
    fields = ("name", "parent_code", "kind", "attributes")
    olds, news = (_fields(frame, fields) for frame in (change.before, change.after))
    for j, code in enumerate(change.after["code"].astype(str)):
        i = before.get(code)
        if i is None:
            found.add(code)
            continue
        old = {k: olds[k][i] for k in fields}
        new = {k: news[k][j] for k in fields}
        same = (
            all(_same_value(old[k], new[k]) for k in ("name", "parent_code"))
            and (old["kind"] or "comprehensive") == (new["kind"] or "comprehensive")
            and (old["attributes"] or {}) == (new["attributes"] or {})
            and shapely.equals_exact(
                as_multipolygon(change.before.geometry.values[i]),
                as_multipolygon(change.after.geometry.values[j]),
                tolerance=0.0,
            )
        )
        if not same:
            found.add(code)
    return found


def _fields(frame: gpd.GeoDataFrame, names: tuple[str, ...]) -> dict[str, NDArray[np.object_]]:
    """Return each column as the values a row of ``frame`` holds (``None`` when absent)."""
    return {
        k: (
            np.asarray(frame[k].to_numpy(dtype=object), dtype=object)
            if k in frame.columns
            else np.full(len(frame), None, dtype=object)
        )
        for k in names
    }


def _same_value(a: Any, b: Any) -> bool:
    a = None if isinstance(a, float) and np.isnan(a) else a
    b = None if isinstance(b, float) and np.isnan(b) else b
    return bool(a == b)


# -- buildings -----------------------------------------------------------------------


def building_moves(
    state: LayerState, changeset: ChangeSet, assignments: Assignments | None = None
) -> pd.DataFrame:
    """Return the buildings whose lowest-level unit changes (:data:`gis.units.MOVE_COLUMNS`).

    Buildings hang on the lowest level that has units: when the change set
    stops above it (the units below did not have to change), nothing moves.
    Only the buildings on the changed ground can move: those around it are
    assigned to the units before and after (the import pipeline's rule;
    ``assignments`` shares them with :func:`workload`).
    """
    deepest = changeset.levels[-1]
    rank = state.spec.rank(deepest.level)
    if any(len(state.frame(lv.name)) for lv in state.spec.levels[rank + 1 :]):
        return _no_moves()
    changed = effective_codes(deepest)
    if not changed:
        return _no_moves()
    touched = [
        g
        for frame in (deepest.before, deepest.after)
        for g, c in zip(frame.geometry.values, frame["code"].astype(str), strict=True)
        if c in changed
    ]
    area = shapely.union_all(np.asarray(touched, dtype=object))
    assigned = (assignments or Assignments(state)).of(deepest)
    if assigned is None:
        return _no_moves()
    footprints = np.asarray(assigned.buildings.geometry.values, dtype=object)
    shapely.prepare(area)
    rows = np.flatnonzero(
        shapely.intersects(area, footprints) & (assigned.before != assigned.after)
    )
    if not len(rows):
        return _no_moves()
    mine = assigned.buildings.iloc[rows]
    moved = pd.DataFrame(
        {
            "key": mine["key"].to_numpy(),
            "level": deepest.level,
            "from_unit": pd.Series(assigned.before[rows], dtype=object),
            "to_unit": pd.Series(assigned.after[rows], dtype=object),
            "changed_level": changeset.levels[0].level,
            "households": np.nan_to_num(mine["households"].to_numpy(dtype=float)).astype(int),
            "persons": np.nan_to_num(mine["persons"].to_numpy(dtype=float)).astype(int),
        }
    )
    moved["from_code"] = _ancestors(state, changeset, moved["from_unit"], side="before")
    moved["to_code"] = _ancestors(state, changeset, moved["to_unit"], side="after")
    return moved[MOVE_COLUMNS].reset_index(drop=True)


def _no_moves() -> pd.DataFrame:
    return pd.DataFrame(columns=MOVE_COLUMNS)


def _ancestors(
    state: LayerState, changeset: ChangeSet, codes: pd.Series, *, side: str
) -> list[str | None]:
    """Return the unit of the edited (top) level above each lowest-level unit."""
    steps = []
    for change in reversed(changeset.levels[1:]):
        frame = change.before if side == "before" else change.after
        mine = dict(zip(frame["code"].astype(str), frame["parent_code"], strict=True))
        steps.append((change, mine))
    found: list[str | None] = []
    for code in codes.to_numpy(dtype=object):
        current = None if code is None or (isinstance(code, float) and np.isnan(code)) else code
        for change, mine in steps:
            if current is None:
                break
            if str(current) in mine:
                parent = mine[str(current)]
            elif side == "after" and str(current) in change.retired:
                parent = None
            else:
                parent = _stored_parent(state, change.level, str(current))
            current = None if parent is None or pd.isna(parent) else str(parent)
        found.append(None if current is None else str(current))
    return found


def _stored_parent(state: LayerState, level: str, code: str) -> str | None:
    arrays = level_arrays(state.frame(level))
    row = arrays.rows.get(code)
    return None if row is None else arrays.parents[row]


def poi_moves(
    state: LayerState,
    changeset: ChangeSet,
    *,
    points: np.ndarray | None = None,
    tree: shapely.STRtree | None = None,
    columns: tuple[np.ndarray, np.ndarray] | None = None,
) -> list[dict[str, Any]]:
    """Return the POIs whose lowest-level unit changes (``key``, ``name``, from, to).

    ``points`` (each POI's point), ``tree`` (an STRtree over them) and
    ``columns`` (each POI's key and name as objects) come from the places
    cache; without them they are made from ``state.pois``.
    """
    pois = state.pois
    deepest = changeset.levels[-1]
    if pois is None or pois.empty or deepest.level != state.spec.levels[-1].name:
        return []
    if points is None or tree is None:
        points = shapely.points(
            pois["lon"].astype(float).to_numpy(), pois["lat"].astype(float).to_numpy()
        )
        tree = shapely.STRtree(points)
    area = deepest.box
    candidates: np.ndarray = (
        np.sort(tree.query(area, predicate="intersects"))
        if not area.is_empty
        else np.zeros(0, dtype=np.int64)
    )
    if not len(candidates):
        return []
    mine = np.asarray(points, dtype=object)[candidates]
    before = _locate(mine, deepest.before)
    after = _locate(mine, deepest.after)
    moved = []
    # Without the cache's columns, the key and name columns are read once,
    # when a POI moves (each ``pois[column].iloc[i]`` makes a Series: a few
    # ms over dozens of POIs; the whole columns ~4 ms on the sample city).
    for j, i in enumerate(candidates):
        if before[j] == after[j] or after[j] is None:
            continue
        origin = before[j] if before[j] is not None else _owner(mine[j], state, deepest.level)
        if origin != after[j]:
            if columns is None:
                columns = (
                    pois["key"].to_numpy(dtype=object),
                    pois["name"].to_numpy(dtype=object),
                )
            moved.append(
                {
                    "key": str(columns[0][i]),
                    "name": columns[1][i],
                    "from_unit": origin,
                    "to_unit": after[j],
                }
            )
    return moved


def _locate(points: np.ndarray, units: gpd.GeoDataFrame) -> np.ndarray:
    found = np.full(len(points), None, dtype=object)
    if units.empty:
        return found
    tree = shapely.STRtree(np.asarray(units.geometry.values, dtype=object))
    point_index, unit_index = tree.query(points, predicate="covered_by")
    codes = units["code"].astype(str).to_numpy()
    for p, u in sorted(
        zip(point_index, unit_index, strict=True), key=lambda x: (x[0], codes[x[1]]), reverse=True
    ):
        found[p] = codes[u]  # the smallest code last: it wins on a shared edge
    return found


def _owner(point: BaseGeometry, state: LayerState, level: str) -> str | None:
    frame = state.frame(level)
    hits = frame.sindex.query(point, predicate="covered_by")
    return min((str(frame["code"].iloc[h]) for h in hits), default=None)


# -- workload ------------------------------------------------------------------------


def workload(
    state: LayerState, changeset: ChangeSet, assignments: Assignments | None = None
) -> list[dict[str, Any]]:
    """Households of every touched unit before and after, against its level's target.

    The buildings around each level's change are assigned to its units before
    and after (``assignments``, shared with :func:`building_moves`).
    """
    assignments = assignments or Assignments(state)
    rows: list[dict[str, Any]] = []
    for change in changeset.levels:
        assigned = assignments.of(change)
        before = {} if assigned is None else assigned.households("before")
        after = {} if assigned is None else assigned.households("after")
        target = DEFAULT_TARGETS.get(change.level)
        codes = dict.fromkeys(
            [*change.before["code"].astype(str), *change.after["code"].astype(str)]
        )
        for code in codes:
            rows.append(
                {
                    "code": code,
                    "level": change.level,
                    "before": before.get(code) if code not in change.created else None,
                    "after": after.get(code) if code not in change.retired else None,
                    "target_min": None if target is None else target.min_households,
                    "target_max": None if target is None else target.max_households,
                }
            )
    return rows


# -- same grid (同格) ------------------------------------------------------------------


def alignment(
    state: LayerState, changeset: ChangeSet, others: gpd.GeoDataFrame | None
) -> dict[str, Any]:
    """Same-grid (同格) violations around the change, before and after.

    ``others`` are the units of the other layer of :data:`ALIGNMENT_PAIR`
    around the change (``None`` when the layer is not one of the pair or the
    other layer does not exist).
    """
    from gis.alignment import check_alignment
    from gis.alignment._units import Reuse, as_layer

    empty: dict[str, Any] = {"before": 0, "after": 0, "added": [], "resolved": [], "checked": None}
    pair = dict(ALIGNMENT_PAIR)
    change = changeset.level_change(pair.get(changeset.layer, ""))
    if change is None or others is None or others.empty:
        return empty
    box = alignment_box(changeset)
    frame = state.frame(change.level)
    gone = set(change.before["code"].astype(str)) | set(change.after["code"].astype(str))
    # Only the columns the check reads, built from the level's arrays.
    wanted = ("code", "parent_code")
    sides = {
        "before": stored_frame(frame, box, columns=wanted),
        "after": after_frame(frame, change, box, columns=wanted),
    }
    found: dict[str, set[tuple[str, tuple[str, ...]]]] = {}
    # The other layer is the same on both sides: converted once.
    theirs = as_layer(others[["code", "parent_code", "geometry"]], role="others")
    # Most units around the change, and all of the other layer, are the same
    # objects on both sides: their measures and overlaps are computed once.
    reuse = Reuse()
    for side, ours in sides.items():
        if changeset.layer == ALIGNMENT_PAIR[0][0]:
            report = check_alignment(ours, theirs, wanted=gone, reuse=reuse)
        else:
            report = check_alignment(theirs, ours, wanted=gone, reuse=reuse)
        found[side] = {(v.kind, tuple(v.codes)) for v in report.violations if gone & set(v.codes)}

    def listed(items: set[tuple[str, tuple[str, ...]]]) -> list[dict[str, Any]]:
        return [{"kind": k, "codes": list(c)} for k, c in sorted(items)]

    return {
        "before": len(found["before"]),
        "after": len(found["after"]),
        "added": listed(found["after"] - found["before"]),
        "resolved": listed(found["before"] - found["after"]),
        "checked": " in ".join(f"{layer}:{level}" for layer, level in ALIGNMENT_PAIR),
    }


def alignment_box(changeset: ChangeSet) -> BaseGeometry:
    """Return the box the same-grid check looks in (empty when the layer is not compared)."""
    pair = dict(ALIGNMENT_PAIR)
    change = changeset.level_change(pair.get(changeset.layer, ""))
    if change is None:
        return shapely.Polygon()
    area = change.box
    return shapely.box(*shapely.buffer(area, 0.001).bounds)


def alignment_other(changeset: ChangeSet) -> tuple[str, str] | None:
    """Return the (layer, level) a change set's same-grid check compares with, if any."""
    pair = dict(ALIGNMENT_PAIR)
    if changeset.layer not in pair or changeset.level_change(pair[changeset.layer]) is None:
        return None
    other = next(name for name in pair if name != changeset.layer)
    return other, pair[other]
