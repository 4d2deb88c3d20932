"""From an operation's new ground to a checked change set, every level.

Every operation ends here (:func:`build_changeset`): the new geometries of
the units it touched at its level are checked against the parents
(``crosses_parent``), noded with their neighbours (a neighbour that gains a
vertex gets a new version), checked against the buildings
(``cuts_building``), and the levels below follow by the cascade rule
(:func:`gis.coverage.cascade_children`), each noded and checked in turn.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from numpy.typing import NDArray
from shapely.geometry.base import BaseGeometry

from gis.coverage import cascade_children, node_level
from gis.edits._arrays import stored_rows
from gis.edits._ground import buildings_near, pieces_of
from gis.edits._model import (
    ChangeSet,
    EditOptions,
    LayerState,
    LevelChange,
    as_multipolygon,
    concat_units,
    empty_units,
    frame_from_arrays,
)
from gis.errors import EditRefusedError
from gis.validate import Problem
from gis.validate._report import Locator

__all__ = ["NewGround", "build_changeset", "refuse"]

#: A building overlapping a unit by less than this (m²) is not in it.
_BUILDING_OVERLAP_M2 = 0.05


@dataclass
class NewGround:
    """What an operation decided at its level.

    Attributes
    ----------
    geometries : dict
        ``code -> geometry`` (EPSG:4490) of every unit that stays or is made.
    created : dict
        ``code -> {name, parent_code, kind, attributes}`` of the units made.
    retired : list of str
        Codes that end.
    warnings : list of Problem
        Things to tell the planner.
    """

    geometries: dict[str, BaseGeometry]
    created: dict[str, dict[str, Any]] = field(default_factory=dict)
    retired: list[str] = field(default_factory=list)
    warnings: list[Problem] = field(default_factory=list)


def refuse(problems: Sequence[Problem]) -> EditRefusedError:
    """Return the refusal of an edit with ``problems`` (to raise)."""
    first = problems[0]
    more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
    return EditRefusedError(f"edit refused: {first.message}{more}", problems=list(problems))


def build_changeset(
    state: LayerState,
    *,
    op: str,
    params: Mapping[str, Any],
    level: str,
    ground: NewGround,
    options: EditOptions,
    locator: Locator,
) -> ChangeSet:
    """Check an operation's new ground and let the levels below follow.

    Raises
    ------
    EditRefusedError
        When the edit crosses a parent's boundary, cuts a building (without
        ``force``), leaves children that cannot follow, or does not keep the
        level a valid coverage.
    """
    frame = state.frame(level)
    # Only the units the operation hands back, not the whole level.
    mentioned = set(ground.geometries) | set(ground.retired)
    rows = {str(r["code"]): r for r in _records(stored_rows(frame, codes=mentioned))}
    after_rows = []
    for code, geometry in ground.geometries.items():
        base = ground.created.get(code) or {k: v for k, v in rows[code].items() if k != "geometry"}
        after_rows.append({**base, "code": code, "geometry": as_multipolygon(geometry)})
    after = _frame(after_rows)
    affected = set(ground.geometries) | set(ground.retired)
    before = stored_rows(frame, codes=affected)
    # Units given back unchanged (exactly) are not part of the change.
    unchanged = {
        code
        for code in ground.geometries
        if code in rows
        and code not in ground.created
        and shapely.equals_exact(
            shapely.normalize(as_multipolygon(rows[code]["geometry"])),
            shapely.normalize(as_multipolygon(ground.geometries[code])),
            tolerance=0.0,
        )
    }
    if unchanged == affected:
        # Located on the units the edit was about (a refusal always shows where).
        where = shapely.union_all([as_multipolygon(g) for g in ground.geometries.values()])
        raise refuse(
            [
                locator.problem(
                    "no_change",
                    tuple(sorted(affected)),
                    where,
                    "the edit changes no boundary (is the drawing where you meant it?)",
                    measure=False,
                )
            ]
        )
    problems: list[Problem] = []
    parent_level = state.spec.parent_level(level)
    if parent_level is not None:
        problems.extend(_crossing(before, after, locator, parent_level.name))
    if problems:
        raise refuse(problems)

    before_all, after_all, noded_neighbours = _node_around(frame, before, after, locator)
    first = _level_change(
        level, before_all, after_all, created=list(ground.created), retired=list(ground.retired)
    )
    cut = _cut_buildings(state, first, locator)
    if cut and not options.force:
        raise refuse(
            [
                locator.problem(
                    "cuts_building",
                    (key, *sorted(codes)),
                    geometry,
                    f"the new edge cuts building {key!r} (between {', '.join(sorted(codes))}): "
                    "move the line off the building, or force the edit (the building is "
                    "then flagged as cut)",
                )
                for key, codes, geometry in cut
            ]
        )
    changes = [first]

    # The levels below follow, level by level.
    parents_before, parents_after = before_all, after_all
    below = state.spec.levels[state.spec.rank(level) + 1 :]
    for lv in below:
        kids = state.frame(lv.name)
        if kids.empty or not changes[-1].touched:
            break
        touched_parents = set(parents_before["code"].astype(str)) | set(
            parents_after["code"].astype(str)
        )
        mine = stored_rows(kids, parents=touched_parents)
        if mine.empty:
            break
        result = cascade_children(
            mine,
            parents_before=parents_before,
            parents_after=parents_after,
            mode=options.cascade,
            level_name=lv.name,
            taken_codes=state.codes_taken(lv.name),
            tolerances=options.tolerances,
            projected=locator.projected,
        )
        if result.problems:
            raise refuse(result.problems)
        if not result.touched:
            break
        followed = {*result.created, *result.changed, *result.retired}
        kid_before = mine[mine["code"].astype(str).isin(followed)]
        new_kids = result.children
        made = set(result.created) | set(result.changed)
        picked = np.flatnonzero([str(c) in made for c in new_kids["code"]])
        kid_after = _frame_at(
            new_kids,
            picked,
            [as_multipolygon(g) for g in new_kids.geometry.values[picked]],
        )
        kb, ka, _ = _node_around(kids, kid_before, kid_after, locator)
        created, retired = list(result.created), list(result.retired)
        ka = _without_empty(ka, created, retired)
        changes.append(_level_change(lv.name, kb, ka, created=created, retired=retired))
        parents_before, parents_after = kb, ka
    warnings = list(ground.warnings)
    if noded_neighbours:
        warnings.append(
            Problem(
                "noded",
                tuple(sorted(noded_neighbours)),
                None,
                None,
                None,
                "neighbours gained vertices on the new edges (shared edges kept identical)",
            )
        )
    return ChangeSet(
        op=op,
        params=dict(params),
        layer=state.spec.name,
        level=level,
        levels=tuple(changes),
        cut_buildings=tuple(key for key, _, _ in cut),
        warnings=tuple(warnings),
        etags={
            code: state.etags[code]
            for change in changes
            for code in change.before["code"].astype(str)
            if code in state.etags
        },
    )


# -- steps ---------------------------------------------------------------------------


def _without_empty(
    after: gpd.GeoDataFrame, created: list[str], retired: list[str]
) -> gpd.GeoDataFrame:
    """Drop cascaded children left with no area on the precision grid.

    A piece thinner than the grid (a sliver with no neighbour to join) can
    vanish when it is noded and snapped; it held no ground, so a unit it
    would have created is not made and a unit it would have kept ends.
    """
    empty = np.asarray(shapely.is_empty(after.geometry.values), dtype=bool)
    if not empty.any():
        return after
    for code in after["code"].astype(str)[empty]:
        if code in created:
            created.remove(code)
        elif code not in retired:
            retired.append(code)
    return after[~empty]


def _crossing(
    before: gpd.GeoDataFrame, after: gpd.GeoDataFrame, locator: Locator, parent_level: str
) -> list[Problem]:
    """Ground that leaves or enters a parent: refused below the parent's level."""
    problems = []
    parents = sorted(
        {str(p) for p in [*before["parent_code"], *after["parent_code"]] if p is not None}
    )
    for parent in parents:
        old = _union(before[before["parent_code"].astype(str) == parent])
        new = _union(after[after["parent_code"].astype(str) == parent])
        for moved, way in (
            (shapely.difference(old, new), "leave"),
            (shapely.difference(new, old), "enter"),
        ):
            moved = _polygonal(moved)
            if moved.is_empty or locator.is_sliver(moved):
                continue
            codes = sorted(
                str(c)
                for c, g in zip(
                    [*before["code"], *after["code"]],
                    [*before.geometry.values, *after.geometry.values],
                    strict=True,
                )
                if shapely.intersects(g, moved)
                and not locator.is_sliver(_polygonal(shapely.intersection(g, moved)))
            )
            problems.append(
                locator.problem(
                    "crosses_parent",
                    (parent, *dict.fromkeys(codes)),
                    moved,
                    f"{locator.area(moved):,.0f} m² would {way} {parent_level} {parent!r}: an "
                    f"edit may not cross a {parent_level} boundary; make it at the "
                    f"{parent_level} level",
                )
            )
    return problems


def _node_around(
    frame: gpd.GeoDataFrame,
    before: gpd.GeoDataFrame,
    after: gpd.GeoDataFrame,
    locator: Locator,
) -> tuple[gpd.GeoDataFrame, gpd.GeoDataFrame, list[str]]:
    """Node the new units with their neighbours; neighbours that gain vertices join the change."""
    after_codes = {str(c) for c in after["code"]}
    replaced = {str(c) for c in before["code"]} | after_codes
    area = shapely.union_all(
        shapely.envelope(
            np.asarray([*before.geometry.values, *after.geometry.values], dtype=object)
        )
    )
    # The level's own spatial index (built once per state), then the units that stay.
    near = stored_rows(frame, area=shapely.buffer(area, 1e-6), exclude=replaced)
    noded, fixes, near = _node_rings(frame, near, after, replaced, locator)
    geometries = np.asarray(noded.geometry.values, dtype=object)
    if len(geometries) > 1 and not shapely.coverage_is_valid(geometries):
        edges = shapely.coverage_invalid_edges(geometries)
        bad = [g for g in edges if g is not None and not g.is_empty]
        raise refuse(
            [
                locator.problem(
                    "invalid_coverage",
                    tuple(
                        str(c)
                        for c, g in zip(noded["code"], edges, strict=True)
                        if g is not None and not g.is_empty
                    ),
                    shapely.union_all(bad),
                    "the edit would leave overlapping or unmatched edges; redraw it",
                    measure=False,
                )
            ]
        )
    fixed = {f.code for f in fixes}
    near_codes = np.array([str(c) for c in near["code"]], dtype=object)
    neighbours = [c for c in near_codes if c in fixed]
    # Rows picked by arrays: each boolean selection of a frame costs a frame.
    joining = after_codes | set(neighbours)
    taken = np.flatnonzero([str(c) in joining for c in noded["code"]])
    after_all = _frame_at(noded, taken, [as_multipolygon(g) for g in noded.geometry.values[taken]])
    moved = np.flatnonzero([c in fixed for c in near_codes])
    before_all = concat_units([before, near.iloc[moved]])
    return before_all, after_all, neighbours


#: Rings of neighbours noded at most (each ring only when the last one moved).
_MAX_RINGS = 6


def _node_rings(
    frame: gpd.GeoDataFrame,
    near: gpd.GeoDataFrame,
    after: gpd.GeoDataFrame,
    replaced: set[str],
    locator: Locator,
) -> tuple[gpd.GeoDataFrame, list[Any], gpd.GeoDataFrame]:
    """Node the new units with their neighbours, widening the ring while it must.

    Noding snaps vertices a hair apart (within the sliver width). Data not on
    the precision grid can carry such pairs on edges the edit never touched:
    a neighbour snapped there no longer matches the unit beyond it. Those
    units join the noding, ring by ring, until the edges out of the noded
    area match again.
    """
    for _ring in range(_MAX_RINGS):
        subset = concat_units([near, after])
        noded, fixes = node_level(
            subset, tolerances=locator.tolerances, projected=locator.projected
        )
        moved = {f.code for f in fixes} & set(near["code"].astype(str))
        if not moved:
            break
        changed = noded[noded["code"].astype(str).isin(moved)]
        reach = shapely.buffer(shapely.union_all(shapely.envelope(changed.geometry.values)), 1e-6)
        inside = set(subset["code"].astype(str)) | replaced
        ring = stored_rows(frame, area=reach, exclude=inside)
        if ring.empty:
            break
        joined = np.asarray([*changed.geometry.values, *ring.geometry.values], dtype=object)
        if shapely.coverage_is_valid(joined):
            break
        near = concat_units([near, ring])
    return noded, fixes, near


def _cut_buildings(
    state: LayerState, change: LevelChange, locator: Locator
) -> list[tuple[str, set[str], BaseGeometry]]:
    """List buildings a new edge cuts: in several units after, not the same ones before."""
    before, after = change.before, change.after
    if after.empty:
        return []
    # A building off the ground that changes overlaps the same units before
    # and after (a noded neighbour's ground is the same): only those on it
    # are measured (one off every unit after is in none: never cut).
    candidates = buildings_near(state, pieces_of(change.ground))
    if candidates is None or candidates.empty:
        return []
    keys = candidates["key"].to_numpy(dtype=object)
    footprints = np.asarray(candidates.geometry.values, dtype=object)
    present = np.flatnonzero(~(shapely.is_missing(footprints) | shapely.is_empty(footprints)))
    keys, footprints = keys[present], footprints[present]
    old, new = (_Side(side).overlapping(footprints, locator) for side in (before, after))
    return [
        (str(key), n, footprint)
        for key, footprint, o, n in zip(keys, footprints, old, new, strict=True)
        if len(n) > 1 and n != o
    ]


class _Side:
    """The units of one side of a change, indexed for the footprints asking which they overlap."""

    def __init__(self, units: gpd.GeoDataFrame) -> None:
        self.codes = np.array([str(c) for c in units["code"]], dtype=object)
        self.geometries = np.asarray(units.geometry.values, dtype=object)
        self.tree = shapely.STRtree(self.geometries)

    def overlapping(self, footprints: np.ndarray, locator: Locator) -> list[set[str]]:
        """Return, per footprint, the unit covering it, else those it overlaps (over 0.05 m²).

        All footprints at once (one query, one overlay per pair met).
        """
        found: list[set[str]] = [set() for _ in footprints]
        if not len(footprints):
            return found
        fi, ui = self.tree.query(footprints, predicate="intersects")
        order = np.lexsort((ui, fi))  # per footprint, units in index order
        fi, ui = fi[order], ui[order]
        covered = shapely.covers(self.geometries[ui], footprints[fi])
        first: dict[int, int] = {}
        for f, u in zip(fi[covered], ui[covered], strict=True):
            first.setdefault(int(f), int(u))
        for f, u in first.items():
            found[f] = {self.codes[u]}
        rest = np.flatnonzero([int(f) not in first for f in fi])
        if len(rest):
            pieces = shapely.intersection(footprints[fi[rest]], self.geometries[ui[rest]])
            areas = shapely.area(locator.project(np.asarray(pieces, dtype=object)))
            for f, u in zip(
                fi[rest][areas > _BUILDING_OVERLAP_M2],
                ui[rest][areas > _BUILDING_OVERLAP_M2],
                strict=True,
            ):
                found[int(f)].add(self.codes[u])
        return found


def _level_change(
    level: str,
    before: gpd.GeoDataFrame,
    after: gpd.GeoDataFrame,
    *,
    created: list[str],
    retired: list[str],
) -> LevelChange:
    made = [c for c in after["code"].astype(str) if c in set(created)]
    changed = sorted(c for c in after["code"].astype(str) if c not in set(created))
    return LevelChange(
        level=level,
        before=before.sort_values("code", ignore_index=True) if len(before) else before,
        after=after.sort_values("code", ignore_index=True) if len(after) else after,
        created=tuple(made),
        changed=tuple(changed),
        retired=tuple(sorted(retired)),
    )


# -- helpers -------------------------------------------------------------------------


def _records(frame: gpd.GeoDataFrame) -> list[dict[str, Any]]:
    columns = [c for c in frame.columns if c != frame.geometry.name]
    # Column by column (row tuples through pandas cost more than the data).
    values = [frame[c].to_numpy(dtype=object) for c in columns]
    return [
        {**dict(zip(columns, row, strict=True)), "geometry": g}
        for row, g in zip(zip(*values, strict=True), frame.geometry.values, strict=True)
    ]


def _frame_at(
    frame: gpd.GeoDataFrame, rows: NDArray[np.int64], geometries: list[BaseGeometry]
) -> gpd.GeoDataFrame:
    """Return ``_frame(_records(frame.iloc[rows].assign(geometry=geometries)))``.

    Read from the columns' arrays at ``rows``: no intermediate frames (a
    selection, an ``assign`` and a frame of records cost more than the data).
    """
    if not len(rows):
        return empty_units()
    names = set(frame.columns) - {frame.geometry.name}

    def column(name: str) -> NDArray[np.object_]:
        if name not in names:
            return np.full(len(rows), None, dtype=object)
        return np.asarray(frame[name].to_numpy(dtype=object), dtype=object)[rows]

    attributes = np.empty(len(rows), dtype=object)
    attributes[:] = [dict(a or {}) for a in column("attributes")]
    return frame_from_arrays(
        {
            "code": [str(c) for c in column("code")],
            "name": list(column("name")),
            "parent_code": [None if pd.isna(p) else str(p) for p in column("parent_code")],
            "kind": [k or "comprehensive" for k in column("kind")],
            "attributes": attributes,
        },
        geometries,
    )


def _frame(rows: list[dict[str, Any]]) -> gpd.GeoDataFrame:
    if not rows:
        return empty_units()
    attributes = np.empty(len(rows), dtype=object)
    attributes[:] = [dict(r.get("attributes") or {}) for r in rows]
    return frame_from_arrays(
        {
            "code": [str(r["code"]) for r in rows],
            "name": [r.get("name") for r in rows],
            # A top-level unit has no parent: stored NULL, read back as NaN
            # (never the text "nan").
            "parent_code": [
                None if pd.isna(r.get("parent_code")) else str(r["parent_code"]) for r in rows
            ],
            "kind": [r.get("kind") or "comprehensive" for r in rows],
            "attributes": attributes,
        },
        [r["geometry"] for r in rows],
    )


def _union(frame: gpd.GeoDataFrame) -> BaseGeometry:
    if frame.empty:
        return shapely.Polygon()
    return shapely.union_all(np.asarray(frame.geometry.values, dtype=object))


def _polygonal(geometry: BaseGeometry) -> BaseGeometry:
    from gis.validate._coverage import polygonal

    result: BaseGeometry = polygonal(geometry)
    return result
