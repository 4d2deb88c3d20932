"""Patrol planning: postman tours on hand-drawn networks, random grids and real streets."""

from __future__ import annotations

import math

import geopandas as gpd
import pytest
import shapely
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gis.errors import InputError
from gis.patrol import Checkpoint, network_from_frame, plan_patrol, read_network
from tests.fixtures_patrol import (
    MONACO_PBF,
    UTM,
    X0,
    Y0,
    brute_force_length,
    eulerize_length,
    grid_lines,
    lines_frame,
    tiny,
    to_lonlat,
)

SQUARE: list[list[tuple[float, float]]] = [
    [(0, 0), (100, 0)],
    [(100, 0), (100, 100)],
    [(100, 100), (0, 100)],
    [(0, 100), (0, 0)],
]


def unit_box(x0: float, y0: float, x1: float, y1: float) -> shapely.Polygon:
    return shapely.box(X0 + x0, Y0 + y0, X0 + x1, Y0 + y1)


def test_a_square_is_walked_once_around() -> None:
    #   d ---- c
    #   |      |      every node even: no deadheading, 400 m
    #   a ---- b
    plan = plan_patrol(tiny(SQUARE))
    assert plan.length_m == pytest.approx(400)
    assert plan.routes[0].deadhead_m == pytest.approx(0)
    assert plan.exact and plan.lower_bound_m == pytest.approx(400)


def test_a_dead_end_street_is_walked_back() -> None:
    #   a ---- b ---- c     odd a, c: back along the street, 400 m
    plan = plan_patrol(tiny([[(0, 0), (100, 0), (200, 0)]]))
    assert plan.length_m == pytest.approx(400)
    assert plan.street_length_m == pytest.approx(200)


def test_the_diagonal_is_the_cheaper_pairing() -> None:
    #   d ---- c
    #   |    / |      odd a, c: walk the diagonal (141 m) twice, not two sides (200 m)
    #   |  /   |
    #   a ---- b
    plan = plan_patrol(tiny([*SQUARE, [(0, 0), (100, 100)]]))
    assert plan.length_m == pytest.approx(400 + 2 * math.hypot(100, 100))
    assert plan.covered_share == pytest.approx(1)


def test_a_street_outside_the_unit_is_used_to_deadhead() -> None:
    #   d ---- c        unit: the box around a-b-c-d but not the side d-a,
    #  :|      |        which lies outside (x < 0 strip): odd a, d pair over
    #   a ---- b        d-a (100 m) instead of walking back 300 m
    lines = SQUARE
    network = tiny(lines)
    area = unit_box(1, -10, 110, 110)
    plan = plan_patrol(network, area=area, area_crs=UTM)
    assert plan.street_length_m == pytest.approx(300)
    assert plan.length_m == pytest.approx(400)
    assert plan.covered_share == pytest.approx(1)


def test_a_street_crossing_the_unit_edge_is_split_there() -> None:
    #   a ---------|---- b     the unit ends at x = 60: 60 m to cover, walked there and back
    frame = lines_frame([[(0, 0), (100, 0)]])
    area = unit_box(-10, -10, 60, 10)
    network = network_from_frame(frame, area=area, area_crs=UTM, crs=UTM)
    plan = plan_patrol(network, area=area, area_crs=UTM)
    assert plan.street_length_m == pytest.approx(60)
    assert plan.length_m == pytest.approx(120)


def test_one_way_streets_are_driven_their_way() -> None:
    #   d <--- c
    #   |    ↗ ↑      one-way ring a→b→c→d→a and diagonal a→c:
    #   ↓  /   |      c has one arc too many in: deadhead c→d→a (200 m)
    #   a ---> b
    lines = [*SQUARE, [(0.0, 0.0), (100.0, 100.0)]]
    network = tiny(lines, oneway=["yes"] * 5, mode="drive")
    plan = plan_patrol(network)
    assert plan.method == "directed" and plan.exact
    assert plan.length_m == pytest.approx(400 + math.hypot(100, 100) + 200)
    seg = network.segments
    for step, _cover in zip(plan.routes[0].steps, plan.routes[0].covers, strict=True):
        assert step[1], "a one-way street driven backwards"
    assert len(seg) == 5


def test_walking_ignores_one_way() -> None:
    lines = [*SQUARE, [(0.0, 0.0), (100.0, 100.0)]]
    plan = plan_patrol(tiny(lines, oneway=["yes"] * 5, mode="walk"))
    assert plan.length_m == pytest.approx(400 + 2 * math.hypot(100, 100))


def test_mixed_streets_get_a_tour_and_a_lower_bound() -> None:
    #   d ---- c      one-way a→b and b→c; the rest two-way
    #   |      ↑
    #   a ---> b
    network = tiny(SQUARE, oneway=["yes", "yes", "no", "no"], mode="drive")
    plan = plan_patrol(network)
    assert plan.method == "mixed"
    assert plan.length_m == pytest.approx(400)
    assert plan.lower_bound_m <= plan.length_m + 1e-6


def test_pieces_no_street_connects_are_refused() -> None:
    #   a ---- b        c ---- d   (nothing joins them)
    network = tiny([[(0, 0), (100, 0)], [(300, 0), (400, 0)]], largest_part=False)
    with pytest.raises(InputError, match="no street connects"):
        plan_patrol(network)


def test_pieces_joined_outside_the_unit() -> None:
    #   a ---- b ···· c ---- d     unit: a-b and c-d; b-c (outside) joins them
    network = tiny([[(0, 0), (100, 0)], [(100, 0), (200, 0)], [(200, 0), (300, 0)]])
    area = shapely.MultiPolygon([unit_box(-5, -5, 100, 5), unit_box(200, -5, 305, 5)])
    plan = plan_patrol(network, area=area, area_crs=UTM)
    assert plan.method == "undirected+rural"
    assert plan.street_length_m == pytest.approx(200)
    assert plan.length_m == pytest.approx(600)
    assert plan.lower_bound_m <= plan.length_m


def test_largest_part_drops_islands() -> None:
    network = tiny([*SQUARE, [(300, 0), (350, 0)]])
    assert network.islands_m == pytest.approx(50)
    assert plan_patrol(network).street_length_m == pytest.approx(400)


def test_no_lines_and_zero_length_lines() -> None:
    points = gpd.GeoDataFrame(geometry=[shapely.Point(X0, Y0)], crs=UTM)
    with pytest.raises(InputError, match="no lines"):
        network_from_frame(points, crs=UTM)
    network = tiny([*SQUARE, [(0, 0), (0, 0.001)]])
    assert network.dropped == 1
    only_zero = lines_frame([[(0, 0), (0, 0.001)]])
    with pytest.raises(InputError, match="zero length"):
        network_from_frame(only_zero, crs=UTM)


def test_unknown_mode_is_refused() -> None:
    with pytest.raises(InputError, match="mode"):
        network_from_frame(lines_frame(SQUARE), mode="fly")  # type: ignore[arg-type]


def test_start_checkpoints_and_shift_length() -> None:
    #   grid 4 x 4 nodes, 100 m blocks; start at a corner, a checkpoint off the
    #   streets to cover (east spur, outside the unit), shifts of 1.2 km
    lines = [*grid_lines([True], width=4, height=4), [(300.0, 0.0), (400.0, 0.0)]]
    network = tiny(lines)
    area = unit_box(-5, -5, 305, 305)
    spur = Checkpoint("学校", *to_lonlat(400, 0))
    plan = plan_patrol(
        network,
        area=area,
        area_crs=UTM,
        start=to_lonlat(0, 0),
        checkpoints=[spur],
        max_length_m=1200,
    )
    assert len(plan.routes) > 1
    assert all(r.length_m <= 1200 + 1e-6 for r in plan.routes)
    assert plan.covered_share == pytest.approx(1)
    assert any("学校" in r.checkpoints for r in plan.routes)
    start = plan.start_node
    for route in plan.routes:
        seg = network.segments
        first, forward = route.steps[0]
        last, back = route.steps[-1]
        assert (seg["u"][first] if forward else seg["v"][first]) == start
        assert (seg["v"][last] if back else seg["u"][last]) == start
    with pytest.raises(InputError, match="too short"):
        plan_patrol(network, start=to_lonlat(0, 0), max_length_m=150)
    with pytest.raises(InputError, match="max_length_m"):
        plan_patrol(network, max_length_m=0)


@st.composite
def grids(draw: st.DrawFn) -> list[list[tuple[float, float]]]:
    width = draw(st.integers(2, 5))
    height = draw(st.integers(2, 4))
    count = width * (height - 1) + height * (width - 1)
    keep = draw(st.lists(st.booleans(), min_size=count, max_size=count))
    lines = grid_lines(keep, width=width, height=height)
    if not lines:
        lines = grid_lines([True], width=2, height=2)
    # Random spacing along x keeps lengths unequal (a unique optimum is not needed).
    stretch = draw(st.floats(0.5, 2.0))
    return [[(x * stretch, y) for x, y in line] for line in lines]


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(grids())
def test_random_grids_are_covered_optimally(lines: list[list[tuple[float, float]]]) -> None:
    network = tiny(lines)
    plan = plan_patrol(network)
    street = float(network.segments["length"].sum())
    assert plan.covered_share == pytest.approx(1)
    assert plan.length_m >= street - 1e-6
    assert plan.length_m <= eulerize_length(network) + 1e-6
    odd = (network.segments[["u", "v"]].stack().value_counts() % 2).sum()
    if odd <= 10:
        assert plan.length_m == pytest.approx(brute_force_length(network))
    assert plan.exact and plan.lower_bound_m == pytest.approx(plan.length_m)


@settings(max_examples=25, deadline=None)
@given(grids(), st.integers(200, 1500))
def test_shifts_cover_everything_within_the_limit(
    lines: list[list[tuple[float, float]]], limit: int
) -> None:
    network = tiny(lines)
    try:
        plan = plan_patrol(network, start=to_lonlat(0, 0), max_length_m=limit)
    except InputError as error:
        assert "too short" in error.message
        return
    assert plan.covered_share == pytest.approx(1)
    assert all(r.length_m <= limit + 1e-6 for r in plan.routes)


def _ward(name: str) -> shapely.Geometry:
    import pyrosm

    wards = pyrosm.OSM(str(MONACO_PBF)).get_boundaries()
    return wards[wards["name"] == name].geometry.iloc[0]


def test_monaco_ward_is_covered_on_foot_and_by_car() -> None:
    ward = _ward("La Condamine")
    walk = read_network(MONACO_PBF, mode="walk", area=ward)
    plan = plan_patrol(walk, area=ward, start=(7.4195, 43.7346))
    assert plan.covered_share == pytest.approx(1)
    assert plan.street_length_m > 10_000
    assert plan.lower_bound_m <= plan.length_m
    drive = read_network(MONACO_PBF, mode="drive", area=ward)
    assert drive.segments["oneway"].any()
    plan = plan_patrol(drive, area=ward)
    assert plan.covered_share == pytest.approx(1)
    assert plan.lower_bound_m <= plan.length_m


def test_monaco_ward_streets_alone_beat_eulerize() -> None:
    ward = _ward("Monaco-Ville")
    network = read_network(MONACO_PBF, mode="walk", area=ward)
    inside = network_from_frame(
        network.segments[plan_patrol(network, area=ward).required], crs=network.crs
    )
    plan = plan_patrol(inside)
    assert plan.covered_share == pytest.approx(1)
    assert plan.length_m <= eulerize_length(inside) + 1e-6


def test_helsinki_and_tempe_beat_eulerize() -> None:
    import libpysal
    import pyrosm

    helsinki = read_network(pyrosm.get_data("test_pbf"), mode="walk")
    tempe = read_network(libpysal.examples.get_path("streets.shp"), mode="walk")
    for network in (helsinki, tempe):
        plan = plan_patrol(network)
        assert plan.covered_share == pytest.approx(1)
        assert plan.street_length_m <= plan.length_m <= eulerize_length(network) + 1e-6


@settings(max_examples=30, deadline=None)
@given(grids(), st.data())
def test_random_one_way_grids_are_driven_legally(
    lines: list[list[tuple[float, float]]], data: st.DataObject
) -> None:
    flags = data.draw(
        st.lists(st.sampled_from(["yes", "-1", "no"]), min_size=len(lines), max_size=len(lines))
    )
    try:
        network = tiny(lines, oneway=flags, mode="drive")
        plan = plan_patrol(network)
    except InputError as error:
        # A grid whose one-way streets trap the driver is refused, not looped.
        assert "one-way" in error.message or "connects" in error.message
        return
    seg = network.segments
    street = float(seg["length"].sum())
    assert plan.covered_share == pytest.approx(1)
    assert street - 1e-6 <= plan.lower_bound_m <= plan.length_m + 1e-6
    steps = plan.routes[0].steps
    oneway = seg["oneway"].to_numpy()
    assert all(forward for s, forward in steps if oneway[s])
    # Consecutive steps join: the tour is one closed walk.
    u, v = seg["u"].to_numpy(), seg["v"].to_numpy()
    ends = [(u[s], v[s]) if f else (v[s], u[s]) for s, f in steps]
    assert all(a[1] == b[0] for a, b in zip(ends, ends[1:] + ends[:1], strict=True))
