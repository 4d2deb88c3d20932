"""Automatic balanced split (gis.edits.auto_split): hand-drawn rules, invariants, sample city."""

from __future__ import annotations

import json

import geopandas as gpd
import numpy as np
import pytest
import shapely
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from shapely import box

from boundaries import SAMPLE_CITY
from gis.edits import AutoSplitResult, auto_split
from gis.errors import InputError
from gis.repository import Database
from gis.streets import streets_frame
from tests.fixtures_city import city_db, sample_city_file  # noqa: F401  (fixtures)

# CGCS2000 / 3-degree Gauss-Kruger CM 120E: metres, so the fixtures are drawn in metres.
METRES = "EPSG:4549"
X0, Y0 = 500_000.0, 2_750_000.0


def _square(size: float = 200.0) -> shapely.Polygon:
    return box(X0, Y0, X0 + size, Y0 + size)


def _frame(geometries: list[shapely.Geometry]) -> gpd.GeoDataFrame:
    return gpd.GeoDataFrame(geometry=geometries, crs=METRES)


def _check_tiling(result: AutoSplitResult, unit: shapely.Geometry, grid: float) -> None:
    parts = np.asarray(result.parts.geometry.values, dtype=object)
    assert shapely.coverage_is_valid(parts)
    union = shapely.coverage_union_all(parts)
    # Equal to the unit up to the precision grid (vertices snapped by at most half a cell).
    assert shapely.hausdorff_distance(union, unit) <= grid
    assert shapely.symmetric_difference(union, unit).area <= unit.length * grid


def _check_buildings(
    result: AutoSplitResult, footprints: list[shapely.Geometry], grid: float
) -> None:
    parts = np.asarray(result.parts.geometry.values, dtype=object)
    for b, footprint in enumerate(footprints):
        part = int(result.building_part[b])
        assert part >= 1
        # Uncut: no other part holds more than a hair (the precision grid) of it.
        pieces = shapely.area(shapely.intersection(parts, footprint))
        outside = pieces.sum() - pieces[part - 1]
        assert outside <= footprint.length * grid, (b, part, pieces)


# -- hand-drawn ---------------------------------------------------------------
#
#   y=200 +-------------------+-------------------+
#         |  [a]        [b]   |   [e]       [f]   |
#         |                   |                   |      each [ ] is a 20 m house
#         |  [c]        [d]   |   [g]       [h]   |      of 10 households
#   y=100 +======== street ===+=== street ========+
#         |  [i]        [j]   |   [m]       [n]   |
#         |                   |                   |
#         |  [k]        [l]   |   [o]       [p]   |
#   y=0   +-------------------+-------------------+
#        x=0                x=100               x=200
#
# Expected: 4 parts, the four quadrants (cut along the cross street), 40
# households each, numbered in reading order NW, NE, SW, SE.


def _cross_fixture() -> tuple[shapely.Polygon, gpd.GeoDataFrame, gpd.GeoDataFrame]:
    houses = []
    for qx in (0, 100):
        for qy in (100, 0):
            for dx in (15, 65):
                for dy in (65, 15):
                    x, y = X0 + qx + dx, Y0 + qy + dy
                    houses.append(box(x, y, x + 20, y + 20))
    streets = _frame(
        [
            shapely.LineString([(X0 - 10, Y0 + 100), (X0 + 210, Y0 + 100)]),
            shapely.LineString([(X0 + 100, Y0 - 10), (X0 + 100, Y0 + 210)]),
        ]
    )
    return _square(), _frame(houses), streets


def test_cross_street_square_splits_into_its_four_quadrants() -> None:
    unit, houses, streets = _cross_fixture()
    result = auto_split(unit, houses, [10] * len(houses), streets, 4, crs=METRES)

    assert result.parts["households"].tolist() == [40, 40, 40, 40]
    assert result.max_deviation == 0.0 and result.within_tolerance
    quadrants = [
        box(X0, Y0 + 100, X0 + 100, Y0 + 200),  # 1: north-west
        box(X0 + 100, Y0 + 100, X0 + 200, Y0 + 200),  # 2: north-east
        box(X0, Y0, X0 + 100, Y0 + 100),  # 3: south-west
        box(X0 + 100, Y0, X0 + 200, Y0 + 100),  # 4: south-east
    ]
    for geometry, quadrant in zip(result.parts.geometry, quadrants, strict=True):
        assert shapely.symmetric_difference(geometry, quadrant).area < 1e-6
    assert result.parts["polsby_popper"].round(3).tolist() == [0.785] * 4  # π/4, squares
    assert result.parts["buildings"].tolist() == [4, 4, 4, 4]
    _check_tiling(result, unit, 0.01)


def test_unbalanced_quadrants_are_cut_between_buildings_not_through_them() -> None:
    unit, houses, streets = _cross_fixture()
    households = [10] * len(houses)
    households[0] = 50  # house [a] of the north-west quadrant: 80 households there
    result = auto_split(unit, houses, households, streets, 4, crs=METRES)

    assert result.parts["households"].sum() == sum(households)
    assert result.within_tolerance, result.summary()
    _check_tiling(result, unit, 0.01)
    _check_buildings(result, list(houses.geometry), 0.01)
    assert result.parts["contiguous"].all()


def test_report_says_when_the_tolerance_cannot_be_reached() -> None:
    # Two houses of 90 and 10 households cannot make two parts of 50 ± 5.
    unit = _square()
    houses = _frame(
        [box(X0 + 20, Y0 + 20, X0 + 40, Y0 + 40), box(X0 + 150, Y0 + 150, X0 + 170, Y0 + 170)]
    )
    result = auto_split(unit, houses, [90, 10], None, 2, crs=METRES)
    assert sorted(result.parts["households"].tolist()) == [10, 90]
    assert result.max_deviation == pytest.approx(0.8)
    assert not result.within_tolerance
    assert result.summary()["within_tolerance"] is False


def _houses_3x3(dx: float = 0.0) -> list[shapely.Geometry]:
    # Nine 15 m houses on a 30 m lattice inside a 100 m square.
    return [
        box(X0 + dx + 10 + 30 * i, Y0 + 10 + 30 * j, X0 + dx + 25 + 30 * i, Y0 + 25 + 30 * j)
        for i in range(3)
        for j in range(3)
    ]


def test_a_unit_with_a_hole_is_tiled_around_it() -> None:
    #   +-----------+
    #   | []  []  []|
    #   | []  ##  []|   ## a hole (a courtyard of another unit); the middle house is left out
    #   | []  []  []|
    #   +-----------+
    hole = box(X0 + 40, Y0 + 40, X0 + 60, Y0 + 60)
    unit = shapely.Polygon(_square(100).exterior.coords, [hole.exterior.coords[::-1]])
    houses = [h for h in _houses_3x3() if not h.intersects(hole)]
    result = auto_split(unit, _frame(houses), [5] * len(houses), None, 2, crs=METRES)
    assert result.parts["households"].tolist() == [20, 20]
    _check_tiling(result, unit, 0.01)
    assert not any(shapely.intersects(result.parts.geometry.values, hole.buffer(-0.1)))


def test_parts_stay_contiguous_even_when_balance_would_need_otherwise() -> None:
    # Two separate squares of 45 households each, into 3 parts: no part may
    # take ground from both, so 30 / 30 / 30 cannot be reached, and the
    # result says so.
    unit = shapely.MultiPolygon([_square(100), box(X0 + 200, Y0, X0 + 300, Y0 + 100)])
    houses = _houses_3x3() + _houses_3x3(200)
    result = auto_split(unit, _frame(houses), [5] * len(houses), None, 3, crs=METRES)
    assert sorted(result.parts["households"].tolist()) == [20, 25, 45]
    assert result.parts["contiguous"].all() and not result.within_tolerance
    _check_tiling(result, unit, 0.01)


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"n_parts": 1}, "n_parts"),
        ({"n_parts": 50}, "n_parts"),
        ({"households_per_building": [1, -2]}, "households_per_building"),
        ({"households_per_building": [1]}, "households_per_building"),
        ({"unit_geometry": shapely.LineString([(0, 0), (1, 1)])}, "unit_geometry"),
        ({"crs": None}, "crs"),
        ({"tolerance": 1.5}, "tolerance"),
    ],
)
def test_bad_input_is_refused_naming_the_field(kwargs: dict[str, object], field: str) -> None:
    houses = _frame(
        [box(X0 + 20, Y0 + 20, X0 + 40, Y0 + 40), box(X0 + 150, Y0 + 150, X0 + 170, Y0 + 170)]
    )
    arguments: dict[str, object] = {
        "unit_geometry": _square(),
        "buildings": houses,
        "households_per_building": [5, 5],
        "streets": None,
        "n_parts": 2,
        "crs": METRES,
        **kwargs,
    }
    with pytest.raises(InputError) as caught:
        auto_split(**arguments)  # type: ignore[arg-type]
    assert caught.value.details["field"] == field


# -- invariants ---------------------------------------------------------------

CELL = 25.0  # a lattice of 8 x 8 cells of 25 m; each drawn house sits inside one


@st.composite
def towns(draw: st.DrawFn) -> tuple[gpd.GeoDataFrame, list[int], gpd.GeoDataFrame]:
    """Draw 8-40 houses on distinct lattice cells, their households and 0-3 straight streets."""
    cells = draw(st.lists(st.integers(0, 63), min_size=8, max_size=40, unique=True))
    houses, households = [], []
    for cell in cells:
        i, j = divmod(cell, 8)
        w = draw(st.floats(6.0, 18.0))
        h = draw(st.floats(6.0, 18.0))
        x = X0 + i * CELL + draw(st.floats(1.0, CELL - 1.0 - w))
        y = Y0 + j * CELL + draw(st.floats(1.0, CELL - 1.0 - h))
        houses.append(box(x, y, x + w, y + h))
        households.append(draw(st.integers(1, 30)))
    streets = []
    for _ in range(draw(st.integers(0, 3))):
        # Mostly along lattice lines (between houses); some anywhere, through
        # houses, which must then stay whole all the same.
        k = draw(st.one_of(st.integers(1, 7).map(lambda i: i * CELL), st.floats(5.0, 195.0)))
        if draw(st.booleans()):
            streets.append(shapely.LineString([(X0 + k, Y0 - 5), (X0 + k, Y0 + 205)]))
        else:
            streets.append(shapely.LineString([(X0 - 5, Y0 + k), (X0 + 205, Y0 + k)]))
    return _frame(houses), households, _frame(streets)


@settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(towns(), st.integers(2, 8))
def test_parts_tile_the_unit_and_keep_buildings_whole(
    town: tuple[gpd.GeoDataFrame, list[int], gpd.GeoDataFrame], n_parts: int
) -> None:
    houses, households, streets = town
    unit = _square()
    result = auto_split(unit, houses, households, streets, n_parts, crs=METRES)

    assert len(result.parts) == n_parts
    assert sorted(result.parts["part"]) == list(range(1, n_parts + 1))
    _check_tiling(result, unit, 0.01)
    _check_buildings(result, list(houses.geometry), 0.01)
    # Each building in exactly one part, households add up.
    assert ((result.building_part >= 1) & (result.building_part <= n_parts)).all()
    assert result.parts["households"].sum() == sum(households)
    counted = np.bincount(result.building_part, weights=households, minlength=n_parts + 1)
    assert counted[1:].tolist() == result.parts["households"].tolist()
    # The atoms partitioned are a coverage of their own, grouped into the parts.
    assert shapely.coverage_is_valid(np.asarray(result.atoms.geometry.values, dtype=object))
    by_part = result.atoms.groupby("part")["households"].sum()
    assert by_part.tolist() == result.parts["households"].tolist()
    # Contiguous: every part is one polygon.
    assert all(g.geom_type == "Polygon" for g in result.parts.geometry)
    assert result.parts["contiguous"].all()


# -- the sample city ----------------------------------------------------------


def _sample_grid(
    db: Database, households: int
) -> tuple[shapely.Geometry, gpd.GeoDataFrame, gpd.GeoDataFrame]:
    """Return the stored grid closest to ``households``, its buildings and the streets near it."""
    with db.reader() as repo:
        grids = repo.units_frame(layer="governance", level="grid")
        counts = gpd.read_file(SAMPLE_CITY / "governance" / "grid.geojson")[["code", "households"]]
        sizes = grids.merge(counts, on="code")["households"]
        code = grids["code"].iloc[int((sizes - households).abs().argmin())]
        unit = shapely.get_parts(grids.set_index("code").geometry[code])[0]
        buildings = repo.places.buildings_frame(bbox=unit.bounds)
    inside = buildings[buildings.representative_point().within(unit)].reset_index(drop=True)
    return unit, inside, streets_frame(db, bbox=unit.bounds)


@pytest.mark.slow
def test_sample_city_grid_splits_into_six_balanced_micro_grids(city_db: Database) -> None:  # noqa: F811
    # The stored sample city: grid, buildings with their household counts, streets.
    unit, buildings, streets = _sample_grid(city_db, 495)
    assert isinstance(unit, shapely.Polygon) and len(streets) > 0
    result = auto_split(unit, buildings, "households", streets, 6)

    assert result.parts.crs.to_epsg() == 4490
    assert result.parts["households"].sum() == buildings["households"].sum()
    assert result.within_tolerance, json.dumps(result.summary())
    assert result.max_deviation <= 0.10
    assert result.parts["contiguous"].all()
    assert (result.parts["polsby_popper"] > 0.2).all(), result.summary()
    _check_tiling(result, unit, 1e-7)
    # The sample city's buildings stay whole (the grid's boundary crossers aside).
    whole = buildings[buildings.geometry.within(unit)]
    rows = [buildings.index.get_loc(i) for i in whole.index]
    sub = AutoSplitResult(
        parts=result.parts,
        building_part=result.building_part[rows],
        mean=result.mean,
        max_deviation=result.max_deviation,
        tolerance=result.tolerance,
        within_tolerance=result.within_tolerance,
        atoms=result.atoms,
    )
    _check_buildings(sub, list(whole.geometry), 1e-7)
    # Most of the cuts run along streets: more cut length on street lines than off them.
    parts = np.asarray(result.parts.geometry.values, dtype=object)
    cuts = shapely.difference(shapely.union_all(shapely.boundary(parts)), shapely.boundary(unit))
    on_streets = shapely.intersection(cuts, shapely.union_all(streets.geometry.values).buffer(1e-6))
    assert on_streets.length > 0.5 * cuts.length
