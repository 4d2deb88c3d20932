"""Property: random applied edits keep the stored layer consistent; reverting them all restores it.

On the tiny hand-drawn layer in both databases: a few random splits,
transfers and merges are applied (refusals allowed); after each the layer is
a valid nested coverage with every building assigned once; reverting every
change set in reverse order brings back every unit's geometry exactly.
"""

from __future__ import annotations

import shapely
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from gis.edits import EditOptions
from gis.edits.service import edit, load_state, revert
from gis.errors import EditRefusedError
from gis.repository import Database
from gis.times import parse_time
from tests._invariants import assert_layer_consistent
from tests.fixtures_edits import line, polygon
from tests.test_edits_service import _geometries, _load

# Grids by community, with their x/y origin in fixture metres.
_GRIDS = {"1001": (0, 100), "1002": (100, 100), "1003": (0, 0), "1004": (100, 0)}
_NEIGHBOURS = {
    "1001": ["1002", "1003"],
    "1002": ["1001", "1004"],
    "1003": ["1001", "1004"],
    "1004": ["1002", "1003"],
}


#: What a random edit may legitimately run into.
_LEGITIMATE = {
    "no_change",
    "not_adjacent",
    "crosses_parent",
    "split_failed",
    "line_not_reaching_boundary",
}


def _step(db: Database, data: st.DataObject) -> int | None:
    state = load_state(db, layer="test", at=parse_time("2100-01-01"))  # the newest versions
    current = set(state.frame("grid")["code"])
    grid = data.draw(st.sampled_from(sorted(c for c in _GRIDS if c in current)), label="grid")
    x0, y0 = _GRIDS[grid]
    op = data.draw(st.sampled_from(["split", "transfer", "merge"]), label="op")
    options = EditOptions(force=True, cascade=data.draw(st.sampled_from(["new", "merge"])))
    try:
        if op == "split":
            at = data.draw(st.integers(10, 90), label="x")
            result = edit(
                db,
                layer="test",
                op="split",
                level="grid",
                units=[grid],
                geometry=line((x0 + at, y0 - 5), (x0 + at, y0 + 105)),
                options=options,
            )
        else:
            other = data.draw(st.sampled_from(_NEIGHBOURS[grid]), label="neighbour")
            if other not in current:
                return None
            if op == "merge":
                result = edit(
                    db, layer="test", op="merge", level="grid", units=[grid, other], options=options
                )
            else:
                ox, oy = _GRIDS[other]
                cx, cy = (x0 + ox) / 2 + 50, (y0 + oy) / 2 + 50  # the middle of their border
                r = data.draw(st.integers(5, 30), label="half_width")
                drawn = polygon(
                    (cx - r, cy - r), (cx + r, cy - r), (cx + r, cy + r), (cx - r, cy + r)
                )
                result = edit(
                    db,
                    layer="test",
                    op="transfer",
                    level="grid",
                    geometry=drawn,
                    to=other,
                    options=options,
                )
    except EditRefusedError as refused:
        assert {p.rule for p in refused.problems} <= _LEGITIMATE
        return None
    assert_layer_consistent(db, "test")
    return result.changeset_id


@settings(
    max_examples=3,
    deadline=None,
    derandomize=True,
    phases=[Phase.explicit, Phase.reuse, Phase.generate],
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(data=st.data())
def test_random_edits_then_reverting_them_all_restores_the_layer(
    db: Database, data: st.DataObject
) -> None:
    db.truncate()  # each example starts from the hand-drawn layer
    _load(db)
    original = _geometries(db)
    applied = [c for c in (_step(db, data) for _ in range(3)) if c is not None]
    for changeset in reversed(applied):
        revert(db, layer="test", changeset_id=changeset)
    # Edits in quick succession take effect a second apart, possibly just ahead
    # of the clock: compare the newest versions.
    restored = _geometries(db, at=parse_time("2100-01-01"))
    assert restored.keys() == original.keys()
    assert all(restored[c].equals_exact(original[c], 0.0) for c in original)
    assert all(shapely.symmetric_difference(restored[c], original[c]).is_empty for c in original)
    assert_layer_consistent(db, "test")
