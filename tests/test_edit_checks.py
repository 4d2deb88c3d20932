"""The nesting check of a preview judged on the touched units, and the ground that changes.

A parent the change set leaves alone is checked on the children the change
touches only (``gis.edits._check._nests_locally``); when that finds anything,
the level is checked whole, so a refusal names what the whole check names.
"""

from __future__ import annotations

import numpy as np
import pytest
import shapely

from gis.edits import ChangeSet, EditOptions, split
from gis.edits._check import _nests_locally, _scope, _whole_parents, check_levels
from gis.edits._ground import changed_ground
from gis.edits._model import LevelChange, empty_units
from gis.errors import EditRefusedError
from tests.fixtures_edits import line, rect, tiny_layer


def _grid_change(before_codes: list[str], after: list[tuple[str, shapely.Geometry]]) -> ChangeSet:
    """Return a hand-made change set at the grid level of the tiny layer (no operation)."""
    frame = tiny_layer().frame("grid")
    rows = [i for i, c in enumerate(frame["code"]) if c in before_codes]
    before = frame.iloc[rows].reset_index(drop=True)
    changed = frame.iloc[[i for i, c in enumerate(frame["code"]) if c in dict(after)]]
    changed = changed.reset_index(drop=True)
    changed["geometry"] = [shapely.MultiPolygon([g]) for _, g in after]
    gone = tuple(c for c in before_codes if c not in dict(after))
    level = LevelChange(
        "grid",
        before=before,
        after=changed if len(after) else empty_units(),
        changed=tuple(c for c, _ in after),
        retired=gone,
    )
    return ChangeSet(op="test", params={}, layer="test", level="grid", levels=(level,))


def test_a_valid_split_passes_on_the_touched_units_alone() -> None:
    state = tiny_layer()
    changes = split(
        state, level="grid", unit="1003", geometry=line((30, -5), (30, 105)), options=EditOptions()
    )
    grid = changes.level_change("grid")
    assert grid is not None
    # Community 1 keeps its ground: its touched grids are checked against it alone.
    assert _nests_locally(state, grid, None, _scope(grid, None))
    check_levels(state, changes)  # nothing refused


@pytest.mark.parametrize(
    ("before", "after"),
    [
        (["1003"], []),  # its ground left bare
        (["1003"], [("1003", rect(0, 0, 60, 100))]),  # gives up ground to no one
        # Grows over 1004: the whole check, told the level is noded, does not
        # look for overlaps and passes it; the local check, stricter, defers to it.
        (["1003"], [("1003", rect(0, 0, 150, 100))]),
    ],
)
def test_a_change_the_local_check_doubts_gets_the_whole_checks_answer(
    before: list[str], after: list[tuple[str, shapely.Geometry]]
) -> None:
    state = tiny_layer()
    changes = _grid_change(before, after)
    change = changes.levels[0]
    scope = _scope(change, None)
    assert not _nests_locally(state, change, None, scope)
    whole = sorted((p.rule, p.codes) for p in _whole_parents(state, change, None, scope))
    if not whole:
        check_levels(state, changes)
        return
    with pytest.raises(EditRefusedError) as refused:
        check_levels(state, changes)
    assert sorted((p.rule, p.codes) for p in refused.value.problems) == whole


def test_changed_ground_leaves_out_units_that_keep_it() -> None:
    a, b = rect(0, 0, 100, 100), rect(100, 0, 200, 100)
    # b gains a vertex on its shared (vertical) edge: the same ground.
    x0, y0, x1, y1 = b.bounds
    b_noded = shapely.Polygon([(x0, y0), (x1, y0), (x1, y1), (x0, y1), (x0, (y0 + y1) / 2)])
    found = changed_ground(
        (["a", "b", "c"], [a, b, rect(0, 100, 100, 200)]),
        (["a", "b", "d"], [rect(0, 0, 50, 100), b_noded, rect(0, 0, 50, 50)]),
    )
    assert set(found) == {"a", "c", "d"}  # re-shaped, retired, made
    assert found["a"].area == pytest.approx(rect(50, 0, 100, 100).area, rel=1e-9)
    assert np.all([not g.is_empty for g in found.values()])
