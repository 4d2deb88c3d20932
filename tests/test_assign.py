"""Assigning buildings to grid units: the ordered rule, inheritance, diffs and workload.

Hand-drawn fixtures are in CGCS2000 Gauss-Kruger metres (EPSG:4549) near
Quanzhou; diagrams give coordinates relative to ``(X0, Y0)``. A property
test compares every answer with a brute-force shapely reference, and real
OpenStreetMap buildings of Monaco are assigned to Monaco's nine wards.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from shapely.geometry.base import BaseGeometry

from gis.assign import (
    COLUMNS,
    NO_BUILDING,
    RULES,
    Assignment,
    Target,
    assign_buildings,
    diff,
    inherit,
    workload,
)
from gis.crs import local_projected_crs
from gis.gridindex import GridIndex
from gis.layers import GOVERNANCE

X0, Y0 = 500_000.0, 2_750_000.0
GK = "EPSG:4549"
MONACO = Path(__file__).resolve().parents[2] / "shared" / "data" / "monaco" / "monaco.osm.pbf"


def box(x0: float, y0: float, x1: float, y1: float) -> shapely.Polygon:
    """Return a rectangle given relative to (X0, Y0)."""
    return shapely.box(X0 + x0, Y0 + y0, X0 + x1, Y0 + y1)


def point(x: float, y: float) -> shapely.Point:
    return shapely.Point(X0 + x, Y0 + y)


def units_frame(codes: Sequence[str], geoms: Sequence[BaseGeometry], crs: str | None = GK):
    return gpd.GeoDataFrame({"code": list(codes)}, geometry=list(geoms), crs=crs)


def buildings_frame(geoms: Sequence[BaseGeometry], crs: str | None = GK, **columns):
    data = {"key": [f"b{i + 1}" for i in range(len(geoms))], **columns}
    return gpd.GeoDataFrame(data, geometry=list(geoms), crs=crs)


def one(buildings: gpd.GeoDataFrame, units: gpd.GeoDataFrame, **options) -> pd.Series:
    frame = assign_buildings(buildings, units, **options).frame
    assert len(frame) == 1
    return frame.iloc[0]


def rounded(shares: tuple[tuple[str, float], ...]) -> list[tuple[str, float]]:
    return [(code, round(share, 6)) for code, share in shares]


# Two grids side by side; A's code sorts first::
#
#   10 +-------------------+-------------------+
#      |         A         |         B         |
#      |     "g01"         |     "g02"         |
#    0 +-------------------+-------------------+
#      0                  20                  40
A, B = "350503001001001", "350503001001002"


@pytest.fixture
def two_units() -> gpd.GeoDataFrame:
    return units_frame([A, B], [box(0, 0, 20, 10), box(20, 0, 40, 10)])


# --- rule 2: covered ---------------------------------------------------------


def test_building_inside_a_unit_is_covered(two_units):
    #      +-------------------+---
    #      |   [b1]            |
    row = one(buildings_frame([box(2, 2, 8, 8)]), two_units)
    assert (row.unit, row.rule, bool(row.cut), row.shares) == (A, "covered", False, ())
    assert row.outside_share == 0.0 and row.nearest is None and np.isnan(row.distance_m)


def test_building_along_the_boundary_inside_is_covered_not_cut(two_units):
    #      +-------------[b1]--+---     b1 = x 14..20: touches B, lies in A
    row = one(buildings_frame([box(14, 2, 20, 8)]), two_units)
    assert (row.unit, row.rule, bool(row.cut)) == (A, "covered", False)


def test_covered_by_two_overlapping_units_goes_to_the_smallest_code():
    #   "z" = x 0..20, "m" = x 10..30 (an invalid, overlapping layer)
    #      +---------+====+---------+
    #      |    z    |[b1]|    m    |     b1 = x 12..18: covered by both
    units = units_frame(["z", "m"], [box(0, 0, 20, 10), box(10, 0, 30, 10)])
    row = one(buildings_frame([box(12, 2, 18, 8)]), units)
    assert (row.unit, row.rule, bool(row.cut)) == ("m", "covered", False)


# --- rule 3: largest overlap, cut -------------------------------------------


def test_building_across_a_boundary_is_cut_with_its_shares(two_units):
    #      +-------------------+-------------------+
    #      |          [b1======|====]              |     b1 = x 14..24: 60% A, 40% B
    row = one(buildings_frame([box(14, 2, 24, 8)]), two_units)
    assert (row.unit, row.rule, bool(row.cut)) == (A, "largest_overlap", True)
    assert rounded(row.shares) == [(A, 0.6), (B, 0.4)]
    assert row.outside_share == 0.0


def test_equal_halves_go_to_the_smallest_code_not_the_first_row():
    #      +-------------------+-------------------+
    #      |        "b"   [b1==|==]      "a"       |     rows: "b" (left) then "a"
    units = units_frame(["b", "a"], [box(0, 0, 20, 10), box(20, 0, 40, 10)])
    row = one(buildings_frame([box(18, 2, 22, 8)]), units)
    assert (row.unit, row.rule, bool(row.cut)) == ("a", "largest_overlap", True)
    assert rounded(row.shares) == [("a", 0.5), ("b", 0.5)]


def test_a_sliver_under_the_share_tolerance_does_not_cut(two_units):
    #   b1 = x 0.1..20.1, y 0..5: 100 m², 0.5 m² (0.5%) in B
    row = one(buildings_frame([box(0.1, 0, 20.1, 5)]), two_units)
    assert (row.unit, row.rule, bool(row.cut), row.shares) == (A, "largest_overlap", False, ())


def test_pieces_under_one_square_metre_do_not_cut_unless_told(two_units):
    #   b1 = x 19.7..20.4, y 0..1: pieces of 0.3 m² in A and 0.4 m² in B
    small = buildings_frame([box(19.7, 0, 20.4, 1)])
    row = one(small, two_units)
    assert (row.unit, bool(row.cut), row.shares) == (B, False, ())
    row = one(small, two_units, cut_tolerance_m2=0.1)
    assert bool(row.cut) and rounded(row.shares) == [(B, 0.571429), (A, 0.428571)]


def test_building_partly_outside_every_unit_is_cut_by_the_coverage_edge(two_units):
    #      ---------+-------------------+
    #               |       B       [b1=|====]    b1 = x 35..45: 50% in B, 50% outside
    row = one(buildings_frame([box(35, 2, 45, 6)]), two_units)
    assert (row.unit, row.rule, bool(row.cut)) == (B, "largest_overlap", True)
    assert rounded(row.shares) == [(B, 0.5)] and row.outside_share == pytest.approx(0.5)


def test_multipart_building_with_parts_in_two_units(two_units):
    #      |  [p1]             |        [p2 ]      |    p1 = 4 m², p2 = 9 m², far from the edge
    parts = shapely.MultiPolygon([box(2, 2, 4, 4), box(30, 2, 33, 5)])
    row = one(buildings_frame([parts]), two_units)
    assert (row.unit, row.rule, bool(row.cut)) == (B, "largest_overlap", True)
    assert rounded(row.shares) == [(B, round(9 / 13, 6)), (A, round(4 / 13, 6))]


# --- rule 1: entrance --------------------------------------------------------


def test_entrance_wins_over_the_largest_overlap(two_units):
    #      +-------------------+-------------------+
    #      |          [b1======|====]              |     60% A, 40% B
    #      |                   |  *                |     entrance * at x 22 (in B)
    buildings = buildings_frame([box(14, 2, 24, 8)], door=[point(22, 2)])
    row = one(buildings, two_units, entrance="door")
    assert (row.unit, row.rule, bool(row.cut)) == (B, "entrance", True)
    assert rounded(row.shares) == [(A, 0.6), (B, 0.4)]


def test_entrance_on_a_shared_edge_goes_to_the_smallest_code():
    #      +--------"z"--------*--------"m"--------+     * on x = 20
    units = units_frame(["z", "m"], [box(0, 0, 20, 10), box(20, 0, 40, 10)])
    buildings = buildings_frame([box(14, 2, 19, 8)], door=[point(20, 5)])
    row = one(buildings, units, entrance="door")
    assert (row.unit, row.rule, bool(row.cut)) == ("m", "entrance", False)


def test_entrance_outside_every_unit_falls_through_to_the_footprint(two_units):
    buildings = buildings_frame([box(2, 2, 8, 8), box(12, 2, 16, 8)], door=[point(50, 50), None])
    frame = assign_buildings(buildings, two_units, entrance="door").frame
    assert frame.rule.tolist() == ["covered", "covered"]
    assert frame.unit.tolist() == [A, A]


def test_entrance_in_another_crs_is_reprojected(two_units):
    door = gpd.GeoSeries([point(22, 2)], crs=GK).to_crs("EPSG:4490")
    buildings = buildings_frame([box(14, 2, 24, 8)])
    buildings["door"] = door.values
    buildings["door"] = gpd.GeoSeries(buildings["door"], crs="EPSG:4490")
    row = one(buildings, two_units, entrance="door")
    assert (row.unit, row.rule) == (B, "entrance")


# --- rule 4: unassigned ------------------------------------------------------


def test_building_outside_every_unit_is_unassigned_with_the_nearest(two_units):
    #      ---------+                 b1 = x 45..47: 5 m east of B
    #        B      |     [b1]
    row = one(buildings_frame([box(45, 2, 47, 4)]), two_units)
    assert (row.unit, row.rule, bool(row.cut)) == (None, "unassigned", False)
    assert row.nearest == B and row.distance_m == pytest.approx(5.0)
    assert row.outside_share == 1.0


def test_building_touching_a_unit_from_outside_is_unassigned_at_distance_zero(two_units):
    row = one(buildings_frame([box(40, 2, 42, 4)]), two_units)
    assert (row.unit, row.rule, row.nearest, row.distance_m) == (None, "unassigned", B, 0.0)


def test_nearest_tie_goes_to_the_smallest_code():
    #         [b1]          b1 = x 19..21, y 12..14: 2 m from both
    #      +--------"z"--------+--------"m"--------+
    units = units_frame(["z", "m"], [box(0, 0, 20, 10), box(20, 0, 40, 10)])
    row = one(buildings_frame([box(19, 12, 21, 14)]), units)
    assert (row.unit, row.nearest, row.distance_m) == (None, "m", 2.0)


def test_building_in_a_hole_is_unassigned_near_the_holed_unit():
    #      +----------------------+
    #      |  A   +--------+      |
    #      |      | [b1]   |      |    hole x 5..15, y 5..15; b1 at x 8..10, y 8..10
    #      |      +--------+      |
    #      +----------------------+
    ring = shapely.Polygon(
        shapely.get_coordinates(box(0, 0, 20, 20).exterior),
        [shapely.get_coordinates(box(5, 5, 15, 15).exterior)],
    )
    row = one(buildings_frame([box(8, 8, 10, 10)]), units_frame(["A"], [ring]))
    assert (row.unit, row.nearest, row.distance_m) == (None, "A", 3.0)


# --- CRS, inputs, frame shape ------------------------------------------------


def test_geographic_units_are_measured_in_metres(two_units):
    units = two_units.to_crs("EPSG:4490")
    buildings = buildings_frame([box(14, 2, 24, 8), box(45, 2, 47, 4)]).to_crs("EPSG:4326")
    frame = assign_buildings(buildings, units).frame
    assert frame.unit.tolist() == [A, None]
    assert [code for code, _ in frame.shares[0]] == [A, B]
    assert [share for _, share in frame.shares[0]] == pytest.approx([0.6, 0.4], abs=1e-4)
    assert frame.distance_m[1] == pytest.approx(5.0, abs=0.01)


def test_no_buildings_give_an_empty_frame(two_units):
    frame = assign_buildings(buildings_frame([]), two_units).frame
    assert frame.empty and tuple(frame.columns) == COLUMNS


def test_frame_keeps_input_order_index_and_columns(two_units):
    buildings = buildings_frame([box(45, 2, 47, 4), box(2, 2, 8, 8), box(14, 2, 24, 8)])
    buildings.index = [30, 10, 20]
    result = assign_buildings(buildings, two_units)
    assert isinstance(result, Assignment) and len(result) == 3
    assert tuple(result.frame.columns) == COLUMNS
    assert result.frame.index.tolist() == [30, 10, 20]
    assert result.frame.key.tolist() == ["b1", "b2", "b3"]
    assert list(result.frame.rule.cat.categories) == list(RULES)
    assert result.counts() == {
        "entrance": 0,
        "covered": 1,
        "largest_overlap": 1,
        "unassigned": 1,
        "cut": 1,
    }


def test_prebuilt_index_gives_the_same_answer(two_units):
    buildings = buildings_frame([box(14, 2, 24, 8), box(2, 2, 8, 8)], door=[None, point(30, 5)])
    index = GridIndex.from_frame(two_units)
    built = assign_buildings(buildings, two_units, entrance="door").frame
    reused = assign_buildings(buildings, two_units, entrance="door", index=index).frame
    pd.testing.assert_frame_equal(built, reused)


@pytest.mark.parametrize("count", [3, 100])
def test_few_points_asked_of_geos_give_the_grid_index_answer(count):
    # Up to SMALL_LOOKUPS points are asked of GEOS instead of a GridIndex:
    # the same answers, on shared edges and vertices too (smallest code).
    rng = np.random.default_rng(count)
    edges = [0.0, 7.0, 10.0, 16.0]
    units = units_frame(["c", "a", "b"], [box(0, 0, 7, 10), box(7, 0, 10, 10), box(10, 0, 16, 10)])
    x = rng.choice([*edges, *rng.uniform(-2, 18, 8)], size=count)
    y = rng.choice([0.0, 5.0, 10.0, *rng.uniform(-2, 12, 4)], size=count)
    size = rng.choice([0.001, 0.5, 3.0], size=count)
    buildings = buildings_frame(
        [box(a, b, a + s, b + s) for a, b, s in zip(x, y, size, strict=True)],
        door=[point(a, b) if k % 2 else None for k, (a, b) in enumerate(zip(x, y, strict=True))],
    )
    asked = assign_buildings(buildings, units, entrance="door").frame
    indexed = assign_buildings(
        buildings, units, entrance="door", index=GridIndex.from_frame(units)
    ).frame
    pd.testing.assert_frame_equal(asked, indexed)


def test_invalid_footprint_across_a_boundary_is_measured_repaired(two_units):
    bowtie = shapely.Polygon(
        [(X0 + 14, Y0 + 2), (X0 + 24, Y0 + 8), (X0 + 24, Y0 + 2), (X0 + 14, Y0 + 8)]
    )
    result = assign_buildings(buildings_frame([bowtie]), two_units)
    assert result.repaired == ("b1",)
    assert result.frame.unit[0] in (A, B) and bool(result.frame.cut[0])


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda b, u: (b.assign(key=["x", "x"]), u), "unique"),
        (lambda b, u: (b.drop(columns="key"), u), "no column 'key'"),
        (lambda b, u: (b.set_geometry([point(1, 1), box(1, 1, 2, 2)], crs=GK), u), "Point"),
        (
            lambda b, u: (b.set_geometry([shapely.Polygon(), box(1, 1, 2, 2)], crs=GK), u),
            "empty",
        ),
        (lambda b, u: (b, u.assign(code=["a", "a"])), "unit codes must be unique"),
        (lambda b, u: (b, u.iloc[:0]), "no units"),
        (lambda b, u: (buildings_frame(list(b.geometry), crs=None), u), "CRS"),
        (lambda b, u: (b.assign(door=[box(0, 0, 1, 1), None]), u), "not a Point"),
    ],
)
def test_bad_input_is_refused(two_units, change, message):
    buildings = buildings_frame([box(2, 2, 8, 8), box(12, 2, 16, 8)])
    buildings, units = change(buildings, two_units)
    entrance = "door" if "door" in buildings.columns else None
    with pytest.raises(ValueError, match=message):
        assign_buildings(buildings, units, entrance=entrance)


def test_index_of_other_units_is_refused(two_units):
    other = GridIndex.from_frame(units_frame(["x"], [box(0, 0, 1, 1)]))
    with pytest.raises(ValueError, match="index"):
        assign_buildings(buildings_frame([box(2, 2, 8, 8)]), two_units, index=other)


# --- inherit, diff -----------------------------------------------------------


def test_households_inherit_their_building_unit(two_units):
    buildings = buildings_frame([box(2, 2, 8, 8), box(14, 2, 24, 8), box(45, 2, 47, 4)])
    result = assign_buildings(buildings, two_units)
    households = pd.DataFrame(
        {"key": ["h1", "h2", "h3", "h4", "h5"], "building_key": ["b1", "b1", "b2", "b3", "b9"]}
    )
    out = inherit(result, households)
    assert out.key.tolist() == households.key.tolist()
    assert out.unit.tolist() == [A, A, A, None, None]
    assert out.rule.tolist() == ["covered", "covered", "largest_overlap", "unassigned", NO_BUILDING]
    assert out.cut.tolist() == [False, False, True, False, False]
    with pytest.raises(ValueError, match="unique"):
        inherit(result, households.assign(key="h1"))


def test_diff_after_moving_a_boundary(two_units):
    # Before: A | B at x = 20. After: A shrinks to x 0..10, B grows to x 10..40.
    #
    #   before  +---------A---------+---------B---------+
    #   after   +----A----+--------------B--------------+
    #           0  [b1]  10  [b2]  20  [b3]             40
    #                  [b4===]                               b4 = x 8..14, cut after
    moved = units_frame([A, B], [box(0, 0, 10, 10), box(10, 0, 40, 10)])
    buildings = buildings_frame(
        [box(2, 2, 6, 6), box(12, 2, 16, 6), box(24, 2, 28, 6), box(8, 6, 14, 9)]
    )
    before = assign_buildings(buildings, two_units)
    after = assign_buildings(buildings, moved)
    changes = diff(before, after)
    assert changes.to_dict("records") == [
        {"key": "b2", "from_unit": A, "to_unit": B, "rule": "covered"},
        {"key": "b4", "from_unit": A, "to_unit": B, "rule": "largest_overlap"},
    ]
    households = pd.DataFrame({"key": [1, 2, 3], "building_key": ["b1", "b2", "b4"]})
    moved_households = diff(inherit(before, households), inherit(after, households))
    assert moved_households.key.tolist() == [2, 3]
    assert diff(before, before).empty


def test_diff_lists_added_and_removed_keys():
    old = pd.DataFrame({"key": [1, 2], "unit": ["a", None]})
    new = pd.DataFrame({"key": [3, 2], "unit": ["b", None], "rule": ["covered", "unassigned"]})
    assert diff(old, new).to_dict("records") == [
        {"key": 3, "from_unit": None, "to_unit": "b", "rule": "covered"},
        {"key": 1, "from_unit": "a", "to_unit": None, "rule": None},
    ]


# --- workload ----------------------------------------------------------------

# Street S has communities C1 (grids G1, G2) and C2 (grid G3)::
#
#   S  +---------------- C1 ----------------+------- C2 -------+
#      |   G1: 350 hh   |   G2: 600 hh      |   G3: 100 hh     |
#      +----------------+-------------------+------------------+
S, C1, C2 = "350503001", "350503001001", "350503001002"
G1, G2, G3 = C1 + "001", C1 + "002", C2 + "001"


@pytest.fixture
def hierarchy() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "code": [S, C1, C2, G1, G2, G3],
            "parent_code": [None, S, S, C1, C1, C2],
            "level": ["street", "community", "community", "grid", "grid", "grid"],
        }
    )


def synthetic_households(per_building: dict[str, int]) -> pd.DataFrame:
    keys = [b for b, n in per_building.items() for _ in range(n)]
    return pd.DataFrame(
        {"key": range(len(keys)), "building_key": keys, "persons": np.full(len(keys), 3)}
    )


def test_workload_rolls_up_and_flags_against_targets(hierarchy):
    buildings = pd.DataFrame(
        {
            "key": ["b1", "b2", "b3", "b4", "b5"],
            "unit": [G1, G1, G2, G3, None],
            "rule": ["covered"] * 4 + ["unassigned"],
            "cut": False,
        }
    )
    households = synthetic_households({"b1": 200, "b2": 150, "b3": 600, "b4": 100, "b5": 7})
    places = pd.DataFrame({"building_key": ["b1", "b3", "b3", "b9"]})
    result = workload(buildings, households, hierarchy, levels=GOVERNANCE, places=places)

    table = result.units.set_index("code")
    assert table.loc[[G1, G2, G3, C1, C2, S], "households"].tolist() == [
        350, 600, 100, 950, 100, 1050,
    ]  # fmt: skip
    assert table.loc[[G1, C1, S], "buildings"].tolist() == [2, 3, 4]
    assert table.loc[[G1, C1, S], "persons"].tolist() == [1050, 2850, 3150]
    assert table.loc[[G1, G2, G3, S], "places"].tolist() == [1, 2, 0, 3]
    # Default grid target: 300-500 households, at most 2,500 persons.
    assert table.loc[[G1, G2, G3], "over"].tolist() == [False, True, False]
    assert table.loc[[G1, G2, G3], "under"].tolist() == [False, False, True]
    assert not table.loc[[S, C1, C2], "over"].any()  # no target for these levels
    assert np.isnan(table.loc[S, "max_households"]) and table.loc[G1, "max_persons"] == 2500

    by_level = result.by_level.set_index("level")
    assert by_level.loc[["street", "community", "grid"], "households"].tolist() == [1050] * 3
    assert by_level.loc["grid", ["units", "over", "under"]].tolist() == [3, 1, 1]
    assert by_level.loc["micro_grid", "units"] == 0

    balance = result.balance.set_index("parent_code")
    assert balance.loc[C1, ["level", "children", "mean", "std", "min", "max"]].tolist() == [
        "grid", 2, 475.0, 125.0, 350.0, 600.0,
    ]  # fmt: skip
    assert balance.loc[C1, "cv"] == pytest.approx(125 / 475)
    assert balance.loc[S, "children"] == 2 and balance.loc[S, "mean"] == 525.0
    assert result.outside == {"buildings": 1, "households": 7, "persons": 21, "places": 1}


def test_workload_with_custom_targets_and_unknown_persons(hierarchy):
    buildings = pd.DataFrame({"key": ["b1"], "unit": [G1], "rule": ["covered"], "cut": False})
    households = synthetic_households({"b1": 40}).drop(columns="persons")
    result = workload(
        buildings,
        households,
        hierarchy,
        levels=["street", "community", "grid"],
        targets={"community": Target(max_households=30)},
        persons=None,
    )
    table = result.units.set_index("code")
    assert table.loc[C1, "over"] and not table.loc[G1, "over"]
    assert table["persons"].isna().all() and table["places"].isna().all()
    with pytest.raises(ValueError, match="persons"):
        workload(buildings, households, hierarchy, levels=GOVERNANCE)
    with pytest.raises(ValueError, match="unknown level"):
        workload(buildings, households, hierarchy, levels=["grid"], persons=None)


# --- property: every building once, as the brute-force reference says -------


def reference(
    footprints: Sequence[BaseGeometry],
    units: Sequence[BaseGeometry],
    codes: Sequence[str],
    doors: Sequence[BaseGeometry | None],
) -> list[tuple[str | None, str, bool]]:
    """Return (unit, rule, cut) of each building, from the rule's wording, with shapely."""
    order = sorted(range(len(codes)), key=lambda i: codes[i])
    out: list[tuple[str | None, str, bool]] = []
    for footprint, door in zip(footprints, doors, strict=True):
        areas = [(shapely.intersection(footprint, units[i]).area, codes[i]) for i in order]
        covering = [codes[i] for i in order if shapely.covers(units[i], footprint)]
        outside = footprint.area - sum(a for a, _ in areas)
        pieces = [a for a, _ in areas] + ([outside] if outside / footprint.area >= 1e-6 else [])
        counted = [a / footprint.area >= 0.01 and a >= 1.0 for a in pieces]
        cut = not covering and sum(counted) >= 2
        best = max((a for a, _ in areas), default=0.0)
        hit = [codes[i] for i in order if door is not None and shapely.covers(units[i], door)]
        if hit:
            out.append((hit[0], "entrance", cut))
        elif covering:
            out.append((covering[0], "covered", False))
        elif best > 0:
            out.append((next(c for a, c in areas if a == best), "largest_overlap", cut))
        else:
            out.append((None, "unassigned", False))
    return out


coords_in = st.floats(0, 200, allow_nan=False).map(lambda v: round(v, 1))


@st.composite
def scenes(draw):
    """Draw a grid coverage with random cuts (maybe holes in it), footprints, entrances."""
    if draw(st.booleans()):  # rectangles: shared edges, equal halves, ties
        xs = [*sorted(set(draw(st.lists(st.integers(1, 19), max_size=4)))), 20]
        ys = [*sorted(set(draw(st.lists(st.integers(1, 19), max_size=3)))), 20]
        cells = [
            shapely.box(x0 * 10, y0 * 10, x1 * 10, y1 * 10)
            for x0, x1 in zip([0, *xs[:-1]], xs, strict=True)
            for y0, y1 in zip([0, *ys[:-1]], ys, strict=True)
        ]
    else:  # Voronoi cells: slanted shared edges
        seeds = draw(st.lists(st.tuples(coords_in, coords_in), min_size=2, max_size=8, unique=True))
        frame = shapely.box(0, 0, 200, 200)
        regions = shapely.voronoi_polygons(shapely.MultiPoint(seeds), extend_to=frame)
        cells = [c for c in shapely.intersection(shapely.get_parts(regions), frame) if c.area > 0]
    keep = draw(st.lists(st.booleans(), min_size=len(cells), max_size=len(cells)))
    cells = [c for c, k in zip(cells, keep, strict=True) if k] or cells[:1]
    codes = draw(st.permutations([f"{i:03d}" for i in range(len(cells))]))
    n = draw(st.integers(1, 25))
    coords = st.integers(-20, 220)
    footprints = []
    for _ in range(n):
        x, y = draw(coords), draw(coords)
        w, h = draw(st.integers(1, 40)), draw(st.integers(1, 40))
        footprint = shapely.box(x, y, x + w, y + h)
        if draw(st.booleans()):
            footprint = shapely.affinity.rotate(footprint, draw(st.integers(0, 89)))
        if draw(st.integers(0, 9)) == 0:
            far = shapely.box(x + 60, y, x + 64, y + 4)  # clear of the rotated first part
            footprint = shapely.MultiPolygon([footprint, far])
        footprints.append(footprint)
    doors = [
        shapely.Point(draw(coords), draw(coords)) if draw(st.integers(0, 3)) == 0 else None
        for _ in range(n)
    ]
    return cells, codes, footprints, doors


@settings(
    max_examples=80,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(scene=scenes())
def test_every_building_and_household_is_assigned_exactly_once(scene):
    cells, codes, footprints, doors = scene
    units = units_frame(codes, cells, crs=None)
    buildings = buildings_frame(footprints, crs=None, door=doors)
    frame = assign_buildings(buildings, units, entrance="door").frame

    assert frame.key.tolist() == buildings.key.tolist() and frame.key.is_unique
    expected = reference(footprints, cells, codes, doors)
    assert list(zip(frame.unit, frame.rule, frame.cut, strict=True)) == expected
    coverage = shapely.union_all(cells)
    for row, footprint in zip(frame.itertuples(), footprints, strict=True):
        outside_all = shapely.intersection(footprint, coverage).area == 0
        assert (row.unit is None) == (outside_all and row.rule != "entrance")
        if row.rule == "unassigned":
            assert row.nearest in codes
            assert row.distance_m == pytest.approx(shapely.distance(footprint, coverage))
        if row.cut:
            assert row.shares or row.outside_share > 0
            assert all(share >= 0.01 for _, share in row.shares)

    households = pd.DataFrame(
        {"key": range(3 * len(footprints)), "building_key": list(buildings.key) * 3}
    )
    homes = inherit(frame, households)
    assert homes.key.tolist() == households.key.tolist()
    assert homes.unit.tolist() == list(frame.unit) * 3


# --- real data: Monaco ---------------------------------------------------------


def read_monaco() -> tuple[gpd.GeoDataFrame, gpd.GeoDataFrame]:
    """OSM building footprints and the 9 admin-level-10 wards, EPSG:4326."""
    try:
        from pyrosm import OSM
    except ImportError:  # the pyrosm-free path: GDAL's OSM driver
        return _read_monaco_ogr()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        osm = OSM(str(MONACO))
        raw = osm.get_buildings()
        bounds = osm.get_boundaries(boundary_type="administrative")
    raw = raw[raw.geom_type.isin(["Polygon", "MultiPolygon"])]
    buildings = gpd.GeoDataFrame(
        {"key": raw["osm_type"].astype(str) + "/" + raw["id"].astype(str)},
        geometry=raw.geometry.values,
        crs=raw.crs,
    )
    wards = bounds[bounds["admin_level"].astype(str) == "10"]
    units = gpd.GeoDataFrame(
        {"code": wards["id"].astype(str).to_numpy(), "name": wards["name"].to_numpy()},
        geometry=wards.geometry.values,
        crs=wards.crs,
    )
    return buildings, units


def _read_monaco_ogr() -> tuple[gpd.GeoDataFrame, gpd.GeoDataFrame]:
    import pyogrio

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        raw = pyogrio.read_dataframe(
            MONACO, layer="multipolygons", where="building IS NOT NULL",
            columns=["osm_id", "osm_way_id"],
        )  # fmt: skip
        wards = pyogrio.read_dataframe(
            MONACO, layer="multipolygons", where="admin_level = '10'", columns=["osm_id", "name"]
        )
    way = raw["osm_way_id"].notna()
    keys = np.where(
        way, "way/" + raw["osm_way_id"].astype(str), "relation/" + raw["osm_id"].astype(str)
    )
    buildings = gpd.GeoDataFrame({"key": keys}, geometry=raw.geometry.values, crs=raw.crs)
    units = gpd.GeoDataFrame(
        {"code": wards["osm_id"].astype(str).to_numpy(), "name": wards["name"].to_numpy()},
        geometry=wards.geometry.values,
        crs=wards.crs,
    )
    return buildings, units


@pytest.mark.slow
@pytest.mark.skipif(not MONACO.exists(), reason=f"real data file {MONACO} is absent")
def test_monaco_buildings_assigned_to_the_nine_wards():
    buildings, units = read_monaco()
    assert len(units) == 9 and shapely.coverage_is_valid(units.geometry.values)
    assert len(buildings) > 20_000

    result = assign_buildings(buildings, units)
    frame = result.frame
    # Every building exactly once; none dropped, the French ones unassigned.
    assert len(frame) == len(buildings) and frame.key.is_unique
    assert frame.key.tolist() == buildings.key.tolist()
    inside = frame.unit.notna()
    assert (frame.rule[~inside] == "unassigned").all()
    assert frame.nearest[~inside].isin(units.code).all()
    assert (frame.distance_m[~inside] >= 0).all() and frame.distance_m[inside].isna().all()
    assert 900 <= inside.sum() <= 1_200

    # Cut buildings are flagged with shares over the tolerance.
    cut = frame[frame.cut]
    assert 5 <= len(cut) <= 60
    assert all(share >= 0.01 for shares in cut.shares for _, share in shares)
    assert all(len(s) >= 2 or o >= 0.01 for s, o in zip(cut.shares, cut.outside_share, strict=True))

    # Non-cut buildings: the unit is the one geopandas finds them within.
    within = gpd.sjoin(buildings, units[["code", "geometry"]], predicate="within", how="left")
    assert within.index.is_unique  # a coverage: never within two wards
    joined = frame.join(within["code"])
    whole = joined[~joined.cut & joined.code.notna()]
    assert len(whole) >= 900
    assert (whole.unit == whole.code).all()
    # The other non-cut assigned ones cross an edge by less than the tolerance: they
    # poke out of Monaco, touch a second ward, or (rule 3, literally) touch Monaco.
    rest = joined[~joined.cut & joined.code.isna() & joined.unit.notna()]
    assert len(rest) < 50 and (rest.rule == "largest_overlap").all()
    area_m2 = buildings.geometry[rest.index].to_crs(local_projected_crs(7.42, 43.73)).area
    inside_m2 = (1.0 - rest.outside_share) * area_m2
    outside_m2 = rest.outside_share * area_m2
    pokes_out = (rest.outside_share < 0.01) | (outside_m2 < 1.0)
    touches_in = (rest.outside_share > 0.99) | (inside_m2 < 1.0)
    assert (pokes_out | touches_in).all()

    # Households in the buildings inherit their ward, each exactly once.
    households = pd.DataFrame({"key": range(len(frame)), "building_key": frame.key})
    homes = inherit(result, households)
    assert homes.unit.tolist() == frame.unit.tolist()
