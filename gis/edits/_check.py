"""The last check of a change set before it is previewed or written: every level still nests.

The operations build change sets that are valid by construction (parents
not crossed, neighbours noded, children cascaded); this is the import
pipeline's validation (:func:`gis.validate.validate_units`), run on the
units under the parents a change set touches and against their neighbours,
never the whole layer: for each level, the units under the touched parents
after the change must cover those parents exactly, not overlap the units
around them, and follow the layer's code rules. A parent whose ground the
change set leaves alone is checked on the children the change touches only
(:func:`_nests_locally`); any problem there, and the level is checked whole,
so a refusal names what the whole check names.
"""

from __future__ import annotations

from dataclasses import replace

import geopandas as gpd
import numpy as np
import shapely
from shapely.geometry.base import BaseGeometry

from gis.edits._arrays import after_frame, envelope
from gis.edits._model import (
    ChangeSet,
    LayerState,
    LevelChange,
    concat_units,
    empty_units,
    frame_from_arrays,
)
from gis.errors import EditRefusedError
from gis.validate import Problem, Tolerances, ValidationReport, validate_units
from gis.validate._report import Locator

__all__ = ["check_levels"]

#: Units within this (degrees) of the checked ones are their neighbours.
_NEIGHBOUR_DEG = 1e-6


#: The columns the validator reads of the parents and of the neighbours (with the geometry).
_CODE_ONLY = ("code",)


def check_levels(state: LayerState, changeset: ChangeSet) -> None:
    """Validate every level of ``changeset`` around the change.

    Raises
    ------
    EditRefusedError
        With located problems, when a level would not be a valid nested coverage.
    """
    problems: list[Problem] = []
    done: dict[str, LevelChange] = {}
    for i, change in enumerate(changeset.levels):
        scope = _scope(change, changeset.levels[i - 1] if i else None)
        parent_level = state.spec.parent_level(change.level)
        # The change of the parent level, when the change set has one.
        above = done.get(parent_level.name) if parent_level is not None else None
        done[change.level] = change
        if parent_level is not None and _nests_locally(state, change, above, scope):
            continue
        problems.extend(_whole_parents(state, change, above, scope))
    if problems:
        problems.sort(key=lambda p: (p.rule, p.codes))
        # Refused like every other edit: each problem located, with its geometry
        # (those the validator leaves without one are drawn as the units named).
        raise EditRefusedError(
            f"edit:{changeset.op}: {len(problems)} problem(s); nothing was written",
            problems=[_located(p, changeset) for p in problems],
        )


def _whole_parents(
    state: LayerState, change: LevelChange, above: LevelChange | None, scope: set[str]
) -> list[Problem]:
    """Return the problems of one level: every unit under the touched parents, validated."""
    parent_level = state.spec.parent_level(change.level)
    frame = state.frame(change.level)
    if parent_level is None:
        units = after_frame(frame, change, change.box)
        parents = None
    else:
        parent_frame = state.frame(parent_level.name)
        around = envelope(
            [change.before, change.after, *([above.before, above.after] if above else [])]
        )
        # The touched parents as they are after the change of their level.
        parents = after_frame(
            parent_frame,
            above or LevelChange(parent_level.name, empty_units(), empty_units()),
            around,
            codes=scope,
            new_anywhere=True,
            columns=_CODE_ONLY,
        )
        # Children lie in their parents (or in the ground of one that went);
        # stored ones whose parent went are kept, so that an orphan is reported.
        area = envelope([parents, change.before, *([above.before] if above else [])])
        units = after_frame(frame, change, area, parents=scope, new_anywhere=True)
    if units.empty:
        return []
    checked = _validated(state, change, units, parents)
    if parent_level is None:
        # Without parents, gaps are looked for in the units' extent: only
        # those at the change are this edit's.
        changed = change.box
        return [
            p
            for p in checked.problems
            if p.geometry is None or shapely.intersects(p.geometry, changed)
        ]
    return checked.problems


def _nests_locally(
    state: LayerState, change: LevelChange, above: LevelChange | None, scope: set[str]
) -> bool:
    """Whether one level surely nests after the change, judged on the units it touches.

    A parent whose ground the change set leaves as it is (not edited, or
    only noded: see :func:`_ground_moved`) was covered by its stored
    children: it still is when the children the change touches hold, after
    it, the very ground they held before. So such a parent is checked
    against that ground only (its other children are the stored ones),
    instead of against all its children — on a large level (500 grids under
    one district) that is most of a preview. Parents whose ground changes
    are checked with all their children, as by
    :func:`_whole_parents`. ``False`` (any problem, or nothing to gain): the
    caller runs the whole check, whose problems are the ones reported.
    """
    parent_level = state.spec.parent_level(change.level)
    assert parent_level is not None
    moved = _ground_moved(state, above)
    fixed = scope - moved
    if not fixed:
        return False
    frame = state.frame(change.level)
    # The ground each left-alone parent's touched children held before the change.
    held: dict[str, list[BaseGeometry]] = {}
    for parent, geometry in zip(
        change.before["parent_code"], change.before.geometry.values, strict=True
    ):
        if parent is not None and str(parent) in fixed:
            held.setdefault(str(parent), []).append(geometry)
    units = after_frame(frame, change, shapely.Polygon(), parents=fixed, new_anywhere=True)
    if set(held) - {str(p) for p in units["parent_code"]}:
        return False  # a parent's touched children all went: its ground is left bare
    codes = np.array(list(held), dtype=object)
    geometries = np.array([shapely.union_all(np.asarray(g, dtype=object)) for g in held.values()])
    if moved & scope:
        assert above is not None
        around = envelope([change.before, change.after, above.before, above.after])
        # Parents whose ground changes: as they are after, with all their children.
        changed = after_frame(
            state.frame(parent_level.name),
            above,
            around,
            codes=moved & scope,
            new_anywhere=True,
            columns=_CODE_ONLY,
        )
        codes = np.concatenate([codes, changed["code"].to_numpy(dtype=object)])
        geometries = np.concatenate([geometries, np.asarray(changed.geometry.values, dtype=object)])
        area = envelope([changed, change.before, above.before])
        units = concat_units(
            [units, after_frame(frame, change, area, parents=moved & scope, new_anywhere=True)]
        )
    if units.empty:
        return not len(codes)
    parents = frame_from_arrays({"code": codes}, geometries)
    return not _validated(state, change, units, parents).problems


def _ground_moved(state: LayerState, above: LevelChange | None) -> set[str]:
    """Return the parents whose ground the change set moves (made, ended or re-shaped).

    A parent only noded along a new edge gains vertices; snapping them may
    shift its outline by a hair. Under the sliver area in all, whatever that
    does to its untouched children is a sliver, which the whole check only
    warns about (never a problem): such a parent's ground counts as left alone.
    """
    if above is None:
        return set()
    tolerances = Tolerances()
    locator = Locator(state.projected(), tolerances)
    moved = set(above.created) | set(above.retired)
    moved |= {
        code
        for code, piece in above.ground.items()
        if code not in moved and locator.area(piece) >= tolerances.sliver_area_m2
    }
    return moved


def _validated(
    state: LayerState,
    change: LevelChange,
    units: gpd.GeoDataFrame,
    parents: gpd.GeoDataFrame | None,
) -> ValidationReport:
    """Validate ``units`` (one level, after the change) against the units around them."""
    frame = state.frame(change.level)
    area = shapely.buffer(envelope([units]), _NEIGHBOUR_DEG)
    listed = set(units["code"].astype(str))
    neighbours = after_frame(frame, change, area, exclude=listed, columns=_CODE_ONLY)
    return validate_units(
        units,
        parents=parents,
        layer=state.spec,
        level=state.spec.level(change.level),
        neighbours=neighbours if len(neighbours) else None,
        noded=True,
    )


def _located(problem: Problem, changeset: ChangeSet) -> Problem:
    """Return ``problem`` with a geometry: its own, else the named units' after or before."""
    if problem.geometry is not None and not problem.geometry.is_empty:
        return problem
    named = set(problem.codes)
    shapes = [
        g
        for change in changeset.levels
        for frame in (change.after, change.before)
        for code, g in zip(frame["code"].astype(str), frame.geometry.values, strict=True)
        if code in named and g is not None and not g.is_empty
    ]
    if not shapes:
        shapes = [
            g for change in changeset.levels for g in change.before.geometry.values if g is not None
        ]
    where = shapely.union_all(shapes) if shapes else shapely.Point()
    point = shapely.point_on_surface(where) if not where.is_empty else None
    return replace(
        problem,
        geometry=where,
        lon=problem.lon if problem.lon is not None else (point.x if point else None),
        lat=problem.lat if problem.lat is not None else (point.y if point else None),
    )


def _scope(change: LevelChange, above: LevelChange | None) -> set[str]:
    """Return the parents whose children are checked.

    Those of the touched units, and the touched units of the level above.
    """
    found = {str(p) for p in [*change.before["parent_code"], *change.after["parent_code"]] if p}
    if above is not None:
        found |= set(above.before["code"].astype(str)) | set(above.after["code"].astype(str))
        found -= set(above.retired)
    return found
