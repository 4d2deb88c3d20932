"""Deterministic synthetic two-level grid layers for benchmarks.

A layer is built as the Voronoi cells of uniformly random points in a square
box (CGCS2000 Gauss-Kruger CM 120E, EPSG:4549, around Quanzhou), densified so
that each cell has a target mean number of vertices, grouped into parents by a
few Lloyd (k-means) iterations on the cell generators, and converted to the
storage CRS EPSG:4490.

Shared edges are densified from a canonical endpoint, so both neighbours of
an edge get bit-identical intermediate vertices and the children form a valid
polygonal coverage (:func:`shapely.coverage_is_valid` is ``True``), in metres
and after the conversion to degrees.

Codes follow the Chinese administrative pattern: parents are a county code
plus 3 digits (9 characters, township level), children their parent's code
plus 3 digits (12 characters, village/grid level).

Examples
--------
>>> layer = make_layer(units=200, parents=10, seed=1)
>>> len(layer.children), len(layer.parents), layer.children.crs.to_epsg()
(200, 10, 4490)
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import geopandas as gpd
import numpy as np
import shapely
from numpy.typing import NDArray

PROJECTED_EPSG = 4549  # CGCS2000 / 3-degree Gauss-Kruger CM 120E
STORAGE_EPSG = 4490  # CGCS2000 geographic
CENTRE = (500_000.0, 2_750_000.0)  # around Quanzhou, Fujian
COUNTY_CODE = "350503"  # Fengze district, Quanzhou


@dataclass(frozen=True)
class SyntheticLayer:
    """A synthetic two-level layer, in EPSG:4490 and in metres (EPSG:4549).

    Attributes
    ----------
    children, parents : GeoDataFrame
        EPSG:4490 frames. Children have ``code`` and ``parent_code``, parents
        ``code``; row ``i`` of ``children`` is row ``i`` of ``children_m``.
    children_m, parents_m : GeoDataFrame
        The same units in EPSG:4549 (metres).
    generators : ndarray of shape (n, 2)
        The Voronoi generator of each child, in EPSG:4549.
    box_m : tuple of float
        ``(xmin, ymin, xmax, ymax)`` of the covered square, in EPSG:4549.
    seed : int
        The seed the layer was built from.
    """

    children: gpd.GeoDataFrame
    parents: gpd.GeoDataFrame
    children_m: gpd.GeoDataFrame
    parents_m: gpd.GeoDataFrame
    generators: NDArray[np.float64]
    box_m: tuple[float, float, float, float]
    seed: int

    @property
    def mean_vertices(self) -> float:
        """Mean number of coordinates per child (closing vertices included)."""
        return float(np.mean(shapely.get_num_coordinates(self.children.geometry.values)))


def make_layer(
    units: int = 5_000,
    parents: int = 250,
    *,
    seed: int = 20_240_601,
    side_m: float = 30_000.0,
    vertices: float = 80.0,
) -> SyntheticLayer:
    """Build a synthetic nested layer (valid coverage, codes nested).

    Parameters
    ----------
    units : int, default 5000
        Number of child units.
    parents : int, default 250
        Number of parent clusters asked for (empty clusters are dropped, so
        the result may have slightly fewer).
    seed : int
        Seed of the :func:`numpy.random.default_rng` generator; the same
        arguments always give the same layer.
    side_m : float, default 30000
        Side of the covered square, in metres.
    vertices : float, default 80
        Target mean number of coordinates per child.

    Returns
    -------
    SyntheticLayer
        The layer.

    Raises
    ------
    RuntimeError
        If the children do not form a valid coverage (a generator bug).
    """
    rng = np.random.default_rng(seed)
    half = side_m / 2.0
    box_m = (CENTRE[0] - half, CENTRE[1] - half, CENTRE[0] + half, CENTRE[1] + half)
    frame = shapely.box(*box_m)
    points = rng.uniform(box_m[:2], box_m[2:], size=(units, 2))
    cells = shapely.get_parts(
        shapely.voronoi_polygons(shapely.multipoints(points), extend_to=frame, ordered=True)
    )
    cells = shapely.intersection(cells, frame)
    # Clipping computes each border vertex once per cell; round to 1 mm so
    # that both cells along a border edge agree bit for bit.
    cells = shapely.transform(cells, lambda xy: np.round(xy, 3))
    cells = densify_coverage(cells, _segment_length_for(cells, vertices))
    if not shapely.coverage_is_valid(cells):
        raise RuntimeError("synthetic cells are not a valid coverage")

    labels = _lloyd_labels(points, parents, rng)
    order = np.lexsort((np.arange(units), labels))
    parent_codes: list[str] = []
    child_codes = np.empty(units, dtype=object)
    child_parent = np.empty(units, dtype=object)
    parent_geoms = []
    start = 0
    for label in np.unique(labels):
        stop = start + int(np.count_nonzero(labels == label))
        rows = order[start:stop]
        parent_code = f"{COUNTY_CODE}{len(parent_codes) + 1:03d}"
        parent_codes.append(parent_code)
        child_codes[rows] = [f"{parent_code}{k + 1:03d}" for k in range(len(rows))]
        child_parent[rows] = parent_code
        parent_geoms.append(rows)
        start = stop

    children_m = gpd.GeoDataFrame(
        {"code": child_codes.astype(str), "parent_code": child_parent.astype(str)},
        geometry=cells,
        crs=PROJECTED_EPSG,
    )
    children = children_m.to_crs(STORAGE_EPSG)
    if not shapely.coverage_is_valid(children.geometry.values):
        raise RuntimeError("synthetic cells are not a valid coverage after to_crs")
    # Dissolve in EPSG:4490 so parent boundaries are exactly the children's vertices.
    storage_geoms = np.asarray(children.geometry.values, dtype=object)
    dissolved = [shapely.coverage_union_all(storage_geoms[rows]) for rows in parent_geoms]
    parents_frame = gpd.GeoDataFrame({"code": parent_codes}, geometry=dissolved, crs=STORAGE_EPSG)
    return SyntheticLayer(
        children=children,
        parents=parents_frame,
        children_m=children_m,
        parents_m=parents_frame.to_crs(PROJECTED_EPSG),
        generators=points,
        box_m=box_m,
        seed=seed,
    )


def densify_coverage(polygons: NDArray[np.object_], max_segment_m: float) -> NDArray[np.object_]:
    """Densify polygons so that shared edges get identical new vertices.

    Unlike :func:`shapely.segmentize`, which interpolates from each ring's
    own start of a segment, every segment is split from its lexicographically
    smaller endpoint, so an edge walked in opposite directions by two
    neighbours yields the same coordinates (reversed).

    Parameters
    ----------
    polygons : ndarray of Polygon
        Single-part polygons forming a coverage.
    max_segment_m : float
        Maximum length of a segment after densification.

    Returns
    -------
    ndarray of Polygon
        The densified polygons.
    """
    out = np.empty(len(polygons), dtype=object)
    for i, polygon in enumerate(polygons):
        shell = _densify_ring(shapely.get_coordinates(polygon.exterior), max_segment_m)
        holes = [
            _densify_ring(shapely.get_coordinates(ring), max_segment_m)
            for ring in polygon.interiors
        ]
        out[i] = shapely.Polygon(shell, holes)
    return out


def inject_faults(
    layer: SyntheticLayer, count: int = 20, *, seed: int = 7, offset_m: float = 4.0
) -> tuple[gpd.GeoDataFrame, NDArray[np.int64]]:
    """Return a copy of the children with ``count`` injected overlaps and gaps.

    Half of the chosen cells (pairwise non-adjacent, away from the box edge)
    are grown by ``offset_m`` (overlapping every neighbour), the other half
    shrunk by it (leaving a gap ring inside the parent, or an uncovered strip
    along the parent's edge).

    Parameters
    ----------
    layer : SyntheticLayer
        The clean layer.
    count : int, default 20
        Number of faulty cells.
    seed : int, default 7
        Seed for choosing the cells.
    offset_m : float, default 4
        Buffer distance, in metres.

    Returns
    -------
    faulty : GeoDataFrame
        EPSG:4490 children with the faults.
    rows : ndarray of int
        The modified rows (first half grown, second half shrunk).
    """
    rng = np.random.default_rng(seed)
    geoms_m = np.asarray(layer.children_m.geometry.values, dtype=object)
    tree = shapely.STRtree(geoms_m)
    inner = shapely.buffer(shapely.box(*layer.box_m), -1_000.0)
    candidates = rng.permutation(np.flatnonzero(shapely.within(geoms_m, inner)))
    chosen: list[int] = []
    blocked: set[int] = set()
    for row in candidates:
        if len(chosen) == count:
            break
        if int(row) in blocked:
            continue
        chosen.append(int(row))
        blocked.update(int(j) for j in tree.query(geoms_m[row], predicate="intersects"))
    rows = np.array(chosen, dtype=np.int64)
    grow, shrink = rows[: count // 2], rows[count // 2 :]
    changed = geoms_m.copy()
    changed[grow] = shapely.buffer(geoms_m[grow], offset_m, join_style="mitre")
    changed[shrink] = shapely.buffer(geoms_m[shrink], -offset_m, join_style="mitre")
    faulty_m = layer.children_m.set_geometry(changed, crs=PROJECTED_EPSG)
    faulty = layer.children.copy()
    moved = faulty_m.iloc[rows].to_crs(STORAGE_EPSG).geometry.values
    faulty.loc[faulty.index[rows], "geometry"] = moved
    return faulty, rows


def random_points(layer: SyntheticLayer, count: int, *, seed: int = 11) -> gpd.GeoDataFrame:
    """Return uniformly random points inside the layer's box, in EPSG:4490.

    Meant for geocoding and assignment benchmarks (every point falls in
    exactly one child, save those exactly on a boundary).

    Parameters
    ----------
    layer : SyntheticLayer
        The layer whose box to sample.
    count : int
        Number of points.
    seed : int, default 11
        Seed of the generator.

    Returns
    -------
    GeoDataFrame
        Points with an ``id`` column.
    """
    rng = np.random.default_rng(seed)
    xy = rng.uniform(layer.box_m[:2], layer.box_m[2:], size=(count, 2))
    frame = gpd.GeoDataFrame(
        {"id": np.arange(count)}, geometry=shapely.points(xy), crs=PROJECTED_EPSG
    )
    return frame.to_crs(STORAGE_EPSG)


def _densify_ring(coords: NDArray[np.float64], max_len: float) -> NDArray[np.float64]:
    p, q = coords[:-1], coords[1:]
    swap = (q[:, 0] < p[:, 0]) | ((q[:, 0] == p[:, 0]) & (q[:, 1] < p[:, 1]))
    a = np.where(swap[:, None], q, p)
    b = np.where(swap[:, None], p, q)
    n = np.maximum(1, np.ceil(np.hypot(*(b - a).T) / max_len)).astype(np.int64)
    seg = np.repeat(np.arange(len(p)), n)
    k = np.arange(n.sum()) - np.repeat(np.cumsum(n) - n, n)  # 0 .. n-1 within a segment
    j = np.where(swap[seg], n[seg] - k, k)  # step counted from the canonical endpoint
    points = a[seg] + (j / n[seg])[:, None] * (b[seg] - a[seg])
    points[k == 0] = p  # segment starts stay exact
    return np.vstack([points, coords[:1]])


def _segment_length_for(cells: NDArray[np.object_], vertices: float) -> float:
    """Bisect the max segment length that gives ``vertices`` coordinates per cell on average."""
    lengths = []
    for cell in cells:
        xy = shapely.get_coordinates(cell.exterior)
        lengths.append(np.hypot(*np.diff(xy, axis=0).T))
    flat = np.concatenate(lengths)
    per_cell = len(cells)

    def mean_coords(step: float) -> float:
        return float(np.ceil(flat / step).sum() / per_cell + 1.0)

    lo, hi = 1e-3, float(flat.max()) * 2
    if mean_coords(hi) >= vertices:
        return hi
    for _ in range(60):
        mid = math.sqrt(lo * hi)
        lo, hi = (mid, hi) if mean_coords(mid) > vertices else (lo, mid)
    return hi


def _lloyd_labels(
    points: NDArray[np.float64], k: int, rng: np.random.Generator, iterations: int = 15
) -> NDArray[np.int64]:
    """Cluster points into ``k`` compact groups with a few Lloyd iterations."""
    k = min(k, len(points))
    centres = points[rng.choice(len(points), size=k, replace=False)]
    labels = np.zeros(len(points), dtype=np.int64)
    for _ in range(iterations):
        d2 = ((points[:, None, :] - centres[None, :, :]) ** 2).sum(axis=2)
        labels = np.argmin(d2, axis=1)
        for c in range(k):
            members = points[labels == c]
            if len(members):
                centres[c] = members.mean(axis=0)
    return labels
