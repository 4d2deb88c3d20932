"""Exactness of :class:`gis.gridindex.GridIndex` against GEOS ``covers``.

The reference for every point is the smallest code among the units for
which ``shapely.covers(unit, point)`` is true (None if there is none).
"""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import geopandas as gpd
import numpy as np
import pytest
import shapely
from hypothesis import given, settings
from hypothesis import strategies as st
from numpy.typing import NDArray

from gis.gridindex import GridIndex, orient2d

CHICAGO_BEATS = (
    Path(__file__).resolve().parents[2] / "shared" / "data" / "chicago" / "police_beats.geojson"
)


def frame(codes: list[str], geoms: list[shapely.Geometry]) -> gpd.GeoDataFrame:
    return gpd.GeoDataFrame({"code": codes}, geometry=geoms)


def reference(
    geoms: NDArray[np.object_],
    codes: NDArray[np.object_],
    x: NDArray[np.float64],
    y: NDArray[np.float64],
) -> NDArray[np.object_]:
    """GEOS answer: smallest code among units whose ``shapely.covers`` is true, else None."""
    points = shapely.points(x, y)
    p, g = shapely.STRtree(geoms).query(points)  # envelope candidates only
    hit = shapely.covers(geoms[g], points[p])
    p, g = p[hit], g[hit]
    rank = np.empty(len(codes), dtype=np.int64)
    rank[np.argsort(codes.astype(str), kind="stable")] = np.arange(len(codes))
    best = np.full(len(points), len(codes), dtype=np.int64)
    np.minimum.at(best, p, rank[g])
    by_rank = codes[np.argsort(rank)]
    out = np.full(len(points), None, dtype=object)
    found = best < len(codes)
    out[found] = by_rank[best[found]]
    return out


def edge_points(
    geoms: NDArray[np.object_], count: int, rng: np.random.Generator
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Points on edges (interpolated, so a few ulps off the line) and exact vertices."""
    coords, ring = shapely.get_coordinates(
        shapely.get_rings(shapely.get_parts(geoms)), return_index=True
    )
    starts = np.flatnonzero(ring[:-1] == ring[1:])
    e = rng.choice(starts, size=count)
    t = rng.uniform(0.0, 1.0, count)
    t[: count // 4] = 0.0  # exact vertices
    t[count // 4 : count // 3] = 0.5
    a, b = coords[e], coords[e + 1]
    xy = a + t[:, None] * (b - a)
    return xy[:, 0], xy[:, 1]


# ---------------------------------------------------------------- fixtures


def quad() -> gpd.GeoDataFrame:
    r"""Four unit squares; codes deliberately not in row order.

    ::

        2 +-----+-----+
          | c12 | b7  |
        1 +-----+-----+
          | a9  | b10 |
        0 +-----+-----+
          0     1     2

    String order: "a9" < "b10" < "b7" < "c12".
    """
    return frame(
        ["b7", "c12", "b10", "a9"],
        [
            shapely.box(1, 1, 2, 2),
            shapely.box(0, 1, 1, 2),
            shapely.box(1, 0, 2, 1),
            shapely.box(0, 0, 1, 1),
        ],
    )


def test_interior_and_exterior() -> None:
    index = GridIndex.from_frame(quad())
    got = index.lookup([0.5, 1.5, 0.5, 1.5, -0.5, 2.5, 1.0], [0.5, 0.5, 1.5, 1.5, 0.5, 2.5, 3.0])
    assert got.tolist() == ["a9", "b10", "c12", "b7", None, None, None]


def test_shared_edge_goes_to_smallest_code() -> None:
    index = GridIndex.from_frame(quad())
    # x=1 between a9|b10 and c12|b7; y=1 between a9/c12 and b10/b7.
    got = index.lookup([1.0, 1.0, 0.5, 1.5], [0.5, 1.5, 1.0, 1.0])
    assert got.tolist() == ["a9", "b7", "a9", "b10"]


def test_vertex_shared_by_four_units() -> None:
    index = GridIndex.from_frame(quad())
    assert index.lookup([1.0], [1.0]).tolist() == ["a9"]
    assert index.lookup_index([1.0], [1.0]).tolist() == [3]


def test_outer_boundary_is_covered() -> None:
    index = GridIndex.from_frame(quad())
    got = index.lookup([0.0, 0.0, 2.0, 1.5, 2.0, 2.0 + 1e-15], [0.0, 0.5, 2.0, 2.0, 1.0, 1.0])
    assert got.tolist() == ["a9", "a9", "b7", "b7", "b10", None]


def test_hole_is_not_covered_unless_filled() -> None:
    r"""A ring-shaped unit, with and without a unit filling its hole.

    ::

        4 +-----------+
          |   ring    |
        3 |   +---+   |
          |   |hole   |      filler "f" = the hole, when present
        1 |   +---+   |
          |           |
        0 +-----------+
          0   1   3   4
    """
    ring = shapely.Polygon(
        [(0, 0), (4, 0), (4, 4), (0, 4)], holes=[[(1, 1), (3, 1), (3, 3), (1, 3)]]
    )
    xs, ys = [2.0, 1.0, 0.5, 1.0], [2.0, 2.0, 0.5, 1.0]
    alone = GridIndex.from_frame(frame(["ring"], [ring]))
    assert alone.lookup(xs, ys).tolist() == [None, "ring", "ring", "ring"]
    filled = GridIndex.from_frame(frame(["ring", "f"], [ring, shapely.box(1, 1, 3, 3)]))
    assert filled.lookup(xs, ys).tolist() == ["f", "f", "ring", "f"]


def test_multipolygon() -> None:
    r"""One unit made of two squares, another in between them.

    ::

        1 +---+   +---+   +---+
          | m |   | k |   | m |
        0 +---+   +---+   +---+
          0   1   2   3   4   5
    """
    m = shapely.MultiPolygon([shapely.box(0, 0, 1, 1), shapely.box(4, 0, 5, 1)])
    index = GridIndex.from_frame(frame(["m", "k"], [m, shapely.box(2, 0, 3, 1)]))
    got = index.lookup([0.5, 4.5, 2.5, 1.5, 3.5, 5.0], [0.5, 0.5, 0.5, 0.5, 0.5, 1.0])
    assert got.tolist() == ["m", "m", "k", None, None, "m"]


def test_points_interpolated_on_a_diagonal_edge_match_geos() -> None:
    r"""Two triangles sharing a diagonal; points on it are a few ulps off the line.

    ::

        (0,1) +-------+ (1.3,1)
              | q   / |
              |   /   |
              | /   p |
        (0,0) +-------+ (1.3,0)
    """
    geoms = np.array(
        [
            shapely.Polygon([(0, 0), (1.3, 0), (1.3, 1.0)]),
            shapely.Polygon([(0, 0), (1.3, 1.0), (0, 1.0)]),
        ]
    )
    codes = np.array(["q", "p"], dtype=object)
    t = np.random.default_rng(3).uniform(0, 1, 5_000)
    x, y = t * 1.3, t * 1.0
    got = GridIndex.from_geometries(geoms, codes).lookup(x, y)
    expected = reference(geoms, codes, x, y)
    assert (got == expected).all()
    assert set(expected) == {"p", "q"}  # both sides happen: the test is not vacuous


def test_nan_and_shapes() -> None:
    index = GridIndex.from_frame(quad())
    assert index.lookup([np.nan, 0.5, np.inf], [0.5, np.nan, 0.5]).tolist() == [None] * 3
    assert index.lookup_index(np.full((2, 3), 0.5), np.full((2, 3), 0.5)).shape == (2, 3)
    with pytest.raises(ValueError, match="same shape"):
        index.lookup([0.5, 0.5], [0.5])


def test_rejects_non_polygons_naming_the_code() -> None:
    with pytest.raises(ValueError, match=r"'L1'.*LineString"):
        GridIndex.from_frame(
            frame(["ok", "L1"], [shapely.box(0, 0, 1, 1), shapely.LineString([(0, 0), (1, 1)])])
        )
    with pytest.raises(ValueError, match=r"'gone'.*missing"):
        GridIndex.from_frame(frame(["gone"], [None]))
    with pytest.raises(ValueError, match="no column 'beat'"):
        GridIndex.from_frame(quad(), code="beat")


def test_len_codes_and_duplicate_codes() -> None:
    index = GridIndex.from_frame(
        frame(["x", "x"], [shapely.box(0, 0, 2, 2), shapely.box(1, 1, 3, 3)])
    )
    assert len(index) == 2
    assert index.codes.tolist() == ["x", "x"]
    assert index.lookup_index([1.5, 2.5, 0.5], [1.5, 2.5, 0.5]).tolist() == [0, 1, 0]


def test_empty_geometry_covers_nothing() -> None:
    index = GridIndex.from_frame(frame(["e", "b"], [shapely.Polygon(), shapely.box(0, 0, 1, 1)]))
    assert index.lookup([0.5, 2.0], [0.5, 0.5]).tolist() == ["b", None]


def test_orient2d_is_exact_near_degenerate() -> None:
    # Shewchuk's classic: naive evaluation gets many of these signs wrong.
    xs = 0.5 + np.arange(64) * 2.0**-53
    px, py = np.meshgrid(xs, xs)
    got = orient2d(px, py, 12.0, 12.0, 24.0, 24.0)
    c = Fraction(24)
    dets = [
        (Fraction(a) - c) * (12 - c) - (Fraction(b) - c) * (12 - c)
        for a, b in zip(px.ravel(), py.ravel(), strict=True)
    ]
    assert got.ravel().tolist() == [(d > 0) - (d < 0) for d in dets]
    naive = np.sign((px - 24.0) * (12.0 - 24.0) - (py - 24.0) * (12.0 - 24.0))
    assert (naive != got).any()  # the case is hard for plain floating point


# ------------------------------------------------------------ properties


def random_coverage(seed: int, cells: int) -> tuple[NDArray[np.object_], NDArray[np.object_]]:
    """Voronoi cells clipped to a box, some merged into MultiPolygons, a few holes.

    The box is placed in metres far from the origin, in degrees, or across 0.
    """
    rng = np.random.default_rng(seed)
    size = 10.0 ** rng.uniform(-2, 4)
    origin = [rng.uniform(-1e6, 1e6), 118.0, -size / 2][seed % 3]
    x0, y0 = origin, origin / 4
    box = shapely.box(x0, y0, x0 + size, y0 + size * rng.uniform(0.3, 1.5))
    xmin, ymin, xmax, ymax = box.bounds
    points = shapely.multipoints(rng.uniform((xmin, ymin), (xmax, ymax), size=(cells, 2)))
    parts = shapely.get_parts(shapely.voronoi_polygons(points, extend_to=box))
    geoms = [g for g in shapely.intersection(parts, box) if g.geom_type == "Polygon" and g.area]
    rng.shuffle(geoms)
    merged: list[shapely.Geometry] = []
    while geoms:
        g = geoms.pop()
        if geoms and rng.random() < 0.2:  # a unit in two (or one, if adjacent) pieces
            g = shapely.MultiPolygon(shapely.get_parts([g, geoms.pop(0)]).tolist())
        if rng.random() < 0.15:  # a hole, left empty or filled by its own unit
            hole = shapely.affinity.scale(shapely.get_parts(g)[0].envelope, 0.2, 0.2)
            hole = shapely.intersection(hole, shapely.get_parts(g)[0])
            if hole.geom_type == "Polygon" and hole.area:
                g = shapely.difference(g, hole)
                if rng.random() < 0.5:
                    merged.append(hole)
        merged.extend(p for p in [g] if p.geom_type in ("Polygon", "MultiPolygon") and p.area)
    codes = np.array([str(c) for c in rng.choice(10 * len(merged), len(merged), replace=False)])
    return np.array(merged, dtype=object), codes.astype(object)


@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), cells=st.integers(2, 60))
def test_random_coverages_match_geos(seed: int, cells: int) -> None:
    geoms, codes = random_coverage(seed, cells)
    rng = np.random.default_rng(seed + 1)
    xmin, ymin, xmax, ymax = shapely.total_bounds(geoms)
    dx, dy = (xmax - xmin) * 0.05, (ymax - ymin) * 0.05
    rx = rng.uniform(xmin - dx, xmax + dx, 2_000)
    ry = rng.uniform(ymin - dy, ymax + dy, 2_000)
    ex, ey = edge_points(geoms, 2_000, rng)
    # Vertex abscissas with other ordinates: rays through vertices, exactly.
    vx, vy = rng.permutation(ex[:500]), ey[:500]
    x = np.concatenate([rx, ex, vx])
    y = np.concatenate([ry, ey, vy])
    got = GridIndex.from_geometries(geoms, codes).lookup(x, y)
    expected = reference(geoms, codes, x, y)
    mismatches = np.flatnonzero(got != expected)
    assert mismatches.size == 0, (x[mismatches[:5]], y[mismatches[:5]], got[mismatches[:5]])


def lattice_layer(seed: int) -> tuple[NDArray[np.object_], NDArray[np.object_]]:
    """Squares and triangle pairs on a lattice: bit-identical shared edges.

    Some squares are missing (gaps), some duplicated (overlaps), rings go
    either way round, and some neighbours are paired into (invalid)
    MultiPolygons sharing an edge. Exercises the cells the index declares
    fully covered by their candidates, and points on the lattice lines.
    """
    rng = np.random.default_rng(seed)
    n, side = int(rng.integers(2, 6)), float(rng.choice([0.1, 1.0, 3.0]))
    geoms: list[shapely.Geometry] = []
    for i in range(n):
        for j in range(n):
            x0, y0, x1, y1 = i * side, j * side, (i + 1) * side, (j + 1) * side
            draw = rng.random()
            if draw < 0.1:
                continue
            if draw < 0.4:
                geoms.append(shapely.Polygon([(x0, y0), (x1, y0), (x1, y1)]))
                geoms.append(shapely.Polygon([(x0, y0), (x1, y1), (x0, y1)]))
            else:
                geoms.append(shapely.box(x0, y0, x1, y1, ccw=bool(rng.random() < 0.5)))
                if rng.random() < 0.1:
                    geoms.append(shapely.box(x0, y0, x1, y1))
    units: list[shapely.Geometry] = []
    while geoms:
        g = geoms.pop(0)
        if geoms and rng.random() < 0.2:
            g = shapely.MultiPolygon([g, geoms.pop(0)])
        units.append(g)
    codes = [str(c) for c in rng.integers(0, 3 * len(units), len(units))]  # repeats allowed
    return np.array(units, dtype=object), np.array(codes, dtype=object)


@pytest.mark.parametrize("seed", range(12))
def test_lattice_layers_match_geos(seed: int) -> None:
    geoms, codes = lattice_layer(seed)
    rng = np.random.default_rng(seed)
    xmin, ymin, xmax, ymax = shapely.total_bounds(geoms)
    step = (xmax - xmin) / 16
    gx, gy = np.meshgrid(
        np.arange(xmin - step, xmax + 2 * step, step), np.arange(ymin - step, ymax + 2 * step, step)
    )
    ex, ey = edge_points(geoms, 1_000, rng)
    x = np.concatenate([gx.ravel(), ex, rng.uniform(xmin, xmax, 1_000)])
    y = np.concatenate([gy.ravel(), ey, rng.uniform(ymin, ymax, 1_000)])
    got = GridIndex.from_geometries(geoms, codes).lookup(x, y)
    assert (got == reference(geoms, codes, x, y)).all()


# ------------------------------------------------------------- real data


@pytest.mark.slow
@pytest.mark.skipif(not CHICAGO_BEATS.exists(), reason="Chicago police beats not available")
def test_chicago_police_beats_match_geos() -> None:
    # Beat 3100 has 3 features: they stay separate rows with the same code
    # (lookup_index gives the first row that covers; lookup gives "3100").
    beats = gpd.read_file(CHICAGO_BEATS)
    index = GridIndex.from_frame(beats, code="BEAT_NUM")
    geoms = np.asarray(beats.geometry.values, dtype=object)
    codes = beats["BEAT_NUM"].to_numpy(dtype=object)
    rng = np.random.default_rng(2024)
    xmin, ymin, xmax, ymax = beats.total_bounds
    rx = rng.uniform(xmin, xmax, 200_000)
    ry = rng.uniform(ymin, ymax, 200_000)
    ex, ey = edge_points(geoms, 20_000, rng)
    x = np.concatenate([rx, ex])
    y = np.concatenate([ry, ey])
    got = index.lookup(x, y)
    expected = reference(geoms, codes, x, y)
    assert int(np.count_nonzero(got != expected)) == 0
    assert np.count_nonzero(expected == None) > 0  # noqa: E711 - some points are outside
