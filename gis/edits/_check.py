"""The last check of a change set before it is previewed or written: every level still nests.

The operations build change sets that are valid by construction (parents
not crossed, neighbours noded, children cascaded); this is the import
pipeline's validation (:func:`gis.validate.validate_units`), run on the
units under the parents a change set touches and against their neighbours,
never the whole layer: for each level, the units under the touched parents
after the change must cover those parents exactly, not overlap the units
around them, and follow the layer's code rules.
"""

from __future__ import annotations

from dataclasses import replace

import shapely

from gis.edits._arrays import after_frame, envelope
from gis.edits._model import ChangeSet, LayerState, LevelChange, empty_units
from gis.errors import EditRefusedError
from gis.validate import Problem, ValidationReport, validate_units

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
    report = ValidationReport(unit_count=0)
    parents_after: dict[str, LevelChange] = {}
    for i, change in enumerate(changeset.levels):
        level_spec = state.spec.level(change.level)
        parent_level = state.spec.parent_level(change.level)
        scope = _scope(change, changeset.levels[i - 1] if i else None)
        frame = state.frame(change.level)
        if parent_level is None:
            units = after_frame(frame, change, envelope([change.before, change.after]))
            parents = None
        else:
            parent_frame = state.frame(parent_level.name)
            above = parents_after.get(parent_level.name)
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
            continue
        area = shapely.buffer(envelope([units]), _NEIGHBOUR_DEG)
        listed = set(units["code"].astype(str))
        neighbours = after_frame(frame, change, area, exclude=listed, columns=_CODE_ONLY)
        checked = validate_units(
            units,
            parents=parents,
            layer=state.spec,
            level=level_spec,
            neighbours=neighbours if len(neighbours) else None,
            noded=True,
        )
        if parent_level is None:
            # Without parents, gaps are looked for in the units' extent: only
            # those at the change are this edit's.
            changed = envelope([change.before, change.after])
            checked.problems = [
                p
                for p in checked.problems
                if p.geometry is None or shapely.intersects(p.geometry, changed)
            ]
        report.problems.extend(checked.problems)
        report.unit_count += checked.unit_count
        parents_after[change.level] = change
    if report.problems:
        report.problems.sort(key=lambda p: (p.rule, p.codes))
        # Refused like every other edit: each problem located, with its geometry
        # (those the validator leaves without one are drawn as the units named).
        raise EditRefusedError(
            f"edit:{changeset.op}: {len(report.problems)} problem(s); nothing was written",
            problems=[_located(p, changeset) for p in report.problems],
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
