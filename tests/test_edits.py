"""Edit operations on the tiny hand-drawn layer (see tests/fixtures_edits.py).

Each operation's outcome (codes created, changed, retired; the ground moved)
and each refusal, checked on pictures small enough to verify by eye; every
accepted change set leaves every level a valid nested coverage.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import geopandas as gpd
import pytest
import shapely
from shapely.geometry.base import BaseGeometry

from gis.edits import (
    ChangeSet,
    EditOptions,
    LayerState,
    carve,
    merge,
    reshape,
    retire,
    split,
    transfer,
)
from gis.errors import EditRefusedError, InputError, NotFoundError
from gis.validate import Problem
from tests.fixtures_edits import (
    area_m2,
    assert_state_consistent,
    deg,
    line,
    polygon,
    tiny_layer,
)


def _geometry(state: LayerState, level: str, code: str) -> BaseGeometry:
    frame = state.frame(level)
    return frame.geometry.values[list(frame["code"]).index(code)]


def _same(a: BaseGeometry, b: BaseGeometry) -> bool:
    """Whether two geometries have the very same vertices (any ring start)."""
    return bool(shapely.normalize(a).equals_exact(shapely.normalize(b), 0.0))


def _refusal(call: Callable[..., ChangeSet], **kwargs: Any) -> list[Problem]:
    with pytest.raises(EditRefusedError) as refused:
        call(tiny_layer(), **kwargs)
    return refused.value.problems


def test_transfer_moves_the_drawn_ground_and_children_follow() -> None:
    """Move 1002's west half (drawn about 1 m off) to 1001.

    ::

    +-------+---+---+        +-----------+---+
    | 1001  |:::|   |   ->   | 1001      |   |
    +-------+---+---+        +-----------+---+
    """
    state = tiny_layer()
    drawn = polygon((101, 99), (151, 99), (150.5, 201), (100, 200.8))
    changes = transfer(state, level="grid", geometry=drawn, to="1001")
    assert changes.level_change("grid").changed == ("1001", "1002")  # type: ignore[union-attr]
    # The micro-grid that changed parent is retired and re-made under 1001.
    assert changes.retired == ["1002001"] and changes.created == ["1001003"]
    after = changes.apply_to(state)
    assert_state_consistent(after)
    assert area_m2(_geometry(after, "grid", "1001"), state) == pytest.approx(15_000, rel=1e-3)
    # Snapped: the new edge is the old micro-grid edge, vertex for vertex.
    assert _same(
        _geometry(after, "micro_grid", "1001003"), _geometry(state, "micro_grid", "1002001")
    )
    # Nobody outside the two grids changed; the stored geometry is a MultiPolygon.
    assert set(changes.changed) == {"1001", "1002"}
    assert {g.geom_type for lv in changes.levels for g in lv.after.geometry} == {"MultiPolygon"}


def test_reshape_replaces_the_shared_edge_and_keeps_edges_identical() -> None:
    state = tiny_layer()
    changes = reshape(
        state, level="grid", units=["1001", "1002"], geometry=line((120, 201), (120, 99))
    )
    after = changes.apply_to(state)
    assert_state_consistent(after)
    assert area_m2(_geometry(after, "grid", "1001"), state) == pytest.approx(12_000, rel=1e-3)
    assert area_m2(_geometry(after, "grid", "1002"), state) == pytest.approx(8_000, rel=1e-3)
    # The new edge is bit-identical on both sides.
    shared = shapely.intersection(
        _geometry(after, "grid", "1001").boundary, _geometry(after, "grid", "1002").boundary
    )
    assert area_m2(shapely.buffer(shared, 1e-7), state) > 0 and shared.length > 0
    assert shapely.coverage_is_valid(after.frame("grid").geometry.values)
    # Children follow: 1002's west micro-grid is cut, its west 20 m goes under 1001.
    assert "1001003" in changes.created
    assert changes.params["units"] == ["1001", "1002"]


def test_split_makes_new_codes_and_keeps_the_larger_part() -> None:
    state = tiny_layer()
    changes = split(state, level="grid", unit="1003", geometry=line((30, -5), (30, 105)))
    grid = changes.level_change("grid")
    assert grid is not None and grid.created == ("1005",)
    # 1001 gains the line's end (30, 100) as a vertex on the shared edge.
    assert grid.changed == ("1001", "1003")
    after = changes.apply_to(state)
    assert_state_consistent(after)
    assert area_m2(_geometry(after, "grid", "1003"), state) == pytest.approx(7_000, rel=1e-3)
    assert area_m2(_geometry(after, "grid", "1005"), state) == pytest.approx(3_000, rel=1e-3)
    assert after.frame("grid").set_index("code").loc["1005", "attributes"] == {"split_from": "1003"}


def test_split_along_a_child_edge_moves_whole_children() -> None:
    changes = split(tiny_layer(), level="grid", unit="1003", geometry=line((50, -5), (50, 105)))
    assert changes.created == ["1005", "1005001"] and changes.retired == ["1003001"]
    assert changes.changed == ["1003"]  # 1003002 keeps its geometry exactly


def test_merge_keeps_the_first_code_and_children_get_new_ones() -> None:
    state = tiny_layer()
    changes = merge(state, level="grid", units=["1001", "1002"])
    assert changes.retired == ["1002", "1002001", "1002002"]
    assert changes.created == ["1001003", "1001004"]
    after = changes.apply_to(state)
    assert_state_consistent(after)
    assert area_m2(_geometry(after, "grid", "1001"), state) == pytest.approx(20_000, rel=1e-3)


def test_merge_with_cascade_merge_keeps_children_codes_few() -> None:
    state = tiny_layer()
    changes = merge(
        state, level="grid", units=["1001", "1002"], options=EditOptions(cascade="merge")
    )
    after = changes.apply_to(state)
    assert_state_consistent(after)
    assert changes.created == []  # the moved micro-grids joined 1001's
    assert sorted(after.frame("micro_grid")["parent_code"].value_counts().loc[["1001"]]) == [2]


def test_carve_a_dedicated_grid_out_of_its_parent() -> None:
    state = tiny_layer()
    school = polygon((20, 120), (80, 120), (80, 180), (20, 180))
    changes = carve(state, level="grid", geometry=school, name="第二小学")
    after = changes.apply_to(state)
    assert_state_consistent(after)
    row = after.frame("grid").set_index("code").loc["1005"]
    assert row["kind"] == "dedicated" and row["name"] == "第二小学" and row["parent_code"] == "1"
    assert area_m2(row.geometry, state) == pytest.approx(3_600, rel=1e-3)
    assert changes.level_change("grid").changed == ("1001",)  # type: ignore[union-attr]


def test_carve_by_poi_takes_its_building_footprint() -> None:
    state = tiny_layer()
    changes = carve(state, level="grid", poi="第一小学")
    after = changes.apply_to(state)
    assert_state_consistent(after)
    row = after.frame("grid").set_index("code").loc["1005"]
    assert row["attributes"] == {"poi": "p1"} and row["name"] == "第一小学"
    assert area_m2(row.geometry, state) == pytest.approx(400, rel=1e-3)


def test_retire_to_one_and_to_two_neighbours() -> None:
    state = tiny_layer()
    one = retire(state, level="grid", unit="1002", to=["1001"])
    assert one.retired[0] == "1002"
    assert_state_consistent(one.apply_to(state))
    two = retire(state, level="grid", unit="1002", to=["1001", "1004"])
    after = two.apply_to(state)
    assert_state_consistent(after)
    gained = {
        code: area_m2(_geometry(after, "grid", code), state) - 10_000 for code in ("1001", "1004")
    }
    # Each neighbour takes the ground along its own border (a Voronoi split).
    assert gained["1001"] > 2_000 and gained["1004"] > 2_000
    assert sum(gained.values()) == pytest.approx(10_000, rel=1e-3)


def test_a_transfer_across_a_community_is_refused() -> None:
    drawn = polygon((200, 100), (250, 100), (250, 200), (200, 200))  # in 2001, to 1002
    problems = _refusal(transfer, level="grid", geometry=drawn, to="1002")
    assert {p.rule for p in problems} == {"crosses_parent"}
    assert {"1", "2"} <= {p.codes[0] for p in problems}
    first = problems[0]
    assert first.lon is not None and first.lat is not None and first.geometry is not None
    assert area_m2(first.geometry, tiny_layer()) == pytest.approx(5_000, rel=1e-3)


def test_the_same_transfer_at_the_community_level_is_allowed() -> None:
    state = tiny_layer()
    drawn = polygon((200, 100), (250, 100), (250, 200), (200, 200))
    changes = transfer(state, level="community", geometry=drawn, to="1")
    after = changes.apply_to(state)
    assert_state_consistent(after)
    assert "2001001" in changes.retired  # the micro-grid moved to community 1
    assert {"1", "2"} == set(changes.level_change("community").changed)  # type: ignore[union-attr]


def test_an_edge_through_a_building_is_refused_unless_forced() -> None:
    cut = line((130, -5), (130, 105))
    problems = _refusal(split, level="grid", unit="1004", geometry=cut)
    assert [p.rule for p in problems] == ["cuts_building"] and problems[0].codes[0] == "b1"
    forced = split(
        tiny_layer(), level="grid", unit="1004", geometry=cut, options=EditOptions(force=True)
    )
    assert forced.cut_buildings == ("b1",)
    assert_state_consistent(forced.apply_to(tiny_layer()))


def test_merging_units_that_only_touch_at_a_corner_is_refused() -> None:
    problems = _refusal(merge, level="grid", units=["1001", "1004"])
    assert [(p.rule, p.codes) for p in problems] == [("not_adjacent", ("1004",))]


def test_merging_units_of_two_parents_is_refused() -> None:
    problems = _refusal(merge, level="grid", units=["1002", "2001"])
    assert [p.rule for p in problems] == ["crosses_parent"]


def test_a_line_not_reaching_the_boundary_is_refused() -> None:
    problems = _refusal(split, level="grid", unit="1003", geometry=line((50, -5), (50, 60)))
    assert [p.rule for p in problems] == ["line_not_reaching_boundary"]
    assert problems[0].geometry is not None and problems[0].geometry.geom_type == "Point"
    assert "40.0 m inside" in problems[0].message
    reshaped = _refusal(
        reshape, level="grid", units=["1001", "1002"], geometry=line((120, 205), (120, 150))
    )
    assert [p.rule for p in reshaped] == ["line_not_reaching_boundary"]


def test_giving_ground_to_a_unit_that_does_not_border_it_is_refused() -> None:
    drawn = polygon((300, 0), (350, 0), (350, 50), (300, 50))
    problems = _refusal(transfer, level="grid", geometry=drawn, to="1001")
    assert [p.rule for p in problems] == ["not_adjacent"]


def test_children_cut_without_a_cascade_mode_are_refused() -> None:
    problems = _refusal(
        split,
        level="grid",
        unit="1003",
        geometry=line((30, -5), (30, 105)),
        options=EditOptions(cascade=None),
    )
    assert {p.rule for p in problems} == {"children_not_nested"}


def test_a_vertex_near_a_corner_snaps_to_it() -> None:
    state = tiny_layer()
    # Ends 1.5 m from the corners (50, 0) and (50, 100): snapped onto them.
    changes = split(state, level="grid", unit="1003", geometry=line((49, -1), (51, 101)))
    assert changes.changed == ["1003"] and changes.retired == ["1003001"]
    assert shapely.equals(
        _geometry(changes.apply_to(state), "grid", "1005"),
        _geometry(state, "micro_grid", "1003001"),
    )
    # With snapping off the line stays where drawn, and the neighbours gain vertices.
    loose = split(
        state,
        level="grid",
        unit="1003",
        geometry=line((49, -1), (51, 101)),
        options=EditOptions(snap_m=0.0),
    )
    assert "1001" in loose.changed
    assert_state_consistent(loose.apply_to(state))


def test_bad_input_names_the_field() -> None:
    state = tiny_layer()
    with pytest.raises(InputError) as wrong:
        split(state, level="grid", unit="1003", geometry=polygon((0, 0), (10, 0), (10, 10)))
    assert wrong.value.details["field"] == "geometry"
    with pytest.raises(NotFoundError):
        merge(state, level="grid", units=["1001", "9999"])
    with pytest.raises(NotFoundError):
        merge(state, level="nope", units=["1001", "1002"])
    with pytest.raises(InputError):
        transfer(
            state,
            level="grid",
            geometry={"type": "Polygon", "coordinates": [[[500000, 1]]]},
            to="1001",
        )
    with pytest.raises(EditRefusedError) as nothing:
        reshape(state, level="grid", units=["1001", "1002"], geometry=line((100, 201), (100, 99)))
    assert nothing.value.problems[0].rule == "no_change"


def test_drawn_vertices_snap_to_street_centre_lines() -> None:
    state = tiny_layer()
    state.streets = gpd.GeoDataFrame(geometry=[line((75, -50), (75, 250))], crs=4490)
    changes = split(state, level="grid", unit="1003", geometry=line((76.5, -5), (76.5, 105)))
    after = changes.apply_to(state)
    assert area_m2(_geometry(after, "grid", "1005"), state) == pytest.approx(2_500, rel=1e-3)
    loose = split(tiny_layer(), level="grid", unit="1003", geometry=line((76.5, -5), (76.5, 105)))
    assert area_m2(_geometry(loose.apply_to(tiny_layer()), "grid", "1005"), state) == pytest.approx(
        2_350, rel=1e-3
    )


def test_transfer_of_a_disc_drawn_across_a_slanted_shared_edge() -> None:
    """A disc on the edge between 1001 and 1002 (slanted in degrees): 1002's half goes to 1001.

    ::

    +-------+-------+        +-------+-------+
    | 1001 (:)  1002|   ->   | 1001 (|  1002 |
    +-------+-------+        +-------+-------+

    The disc cuts the edge between its vertices, where the cut points lie on
    the edge only to a rounding error: the ground moved still borders 1001.
    """
    state = tiny_layer(buildings=False)
    drawn = deg(shapely.Point(100, 163).buffer(15, quad_segs=8))
    after = transfer(state, level="grid", geometry=drawn, to="1001").apply_to(state)
    gained = area_m2(_geometry(after, "grid", "1001"), state) - area_m2(
        _geometry(state, "grid", "1001"), state
    )
    assert gained == pytest.approx(math.pi * 15**2 / 2, rel=0.05)
    assert_state_consistent(after)
