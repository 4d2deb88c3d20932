"""Automatic balanced split: a unit re-partitioned into N contiguous, compact parts.

A grid becomes N micro-grids (or a community N grids) with households within
a tolerance of the mean, cut along streets and between buildings, never
through one. Pure functions: GeoDataFrames and shapely geometries in,
a result with the parts out; nothing is read or written.

Pipeline
--------
1. **Blocks**: the unit cut by the street lines (unit boundary and streets
   noded on the precision grid, polygonized). Blocks a building straddles
   are joined, so that no street edge used as a cut goes through it.
2. **Atoms**: a block whose households exceed what the tolerance allows in
   one piece is cut between its buildings: each building takes the Voronoi
   region of points along its outline (the ground nearer to it than to any
   other building of the block); faces inside a footprint always go to its
   building. Every atom is a union of faces of one noded arrangement, so the
   atoms — and any union of them — form a valid coverage of the unit.
3. **Regions**: candidate partitions from recursive bisection (sweeps in
   16 directions, the best mix of balance and short cut) and from region
   growing (weighted k-means++ seeds on projected centroids, the lightest
   region taking its nearest atom); each is improved by moving boundary atoms
   between neighbouring parts (or swapping two) while that lowers (a) the
   excess over the tolerance, (b) the squared deviation from the mean, (c)
   the cut length (cuts through a block cost more than cuts along a street);
   a move never disconnects a part. The cheapest candidate is kept. When no
   contiguous partition reaches the tolerance (a building heavier than the
   upper bound, a pocket reachable only through one), the result says so.
4. **Parts**: the atoms of each part dissolved (coverage union), numbered in
   reading order (rows north to south, west to east in a row).
"""

from __future__ import annotations

import heapq
import math
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from pyproj import CRS

from gis.crs import STORAGE_CRS, local_projected_crs, transformer
from gis.errors import InputError

__all__ = ["AutoSplitResult", "auto_split"]

#: Precision grid of the arrangement: 1e-7 degree (~1 cm, the storage
#: rounding of the sample city), or 1 cm for a projected CRS.
_GRID_DEGREES = 1e-7
_GRID_METRES = 0.01
_OUTLINE_STEP_M = 2.0  # spacing of the outline points whose Voronoi cells make a building's ground
_THROUGH_BLOCK = 1.25  # cost of a metre of cut between buildings relative to one along a street
_SHAPE_WEIGHT = 0.3  # weight of the mean 1/Polsby-Popper against the balance terms
_EXCESS_WEIGHT = 10.0  # weight of the excess over the tolerance (linear and squared)
_STRADDLE_SHARE = 0.01  # a building with this share of its footprint in two blocks joins them
_MAX_PASSES = 60


@dataclass(frozen=True)
class AutoSplitResult:
    """The parts of an automatic split and what balance and compactness they reached.

    Attributes
    ----------
    parts : GeoDataFrame
        One row per part, numbered ``part`` 1..N in reading order, in the
        unit's CRS: ``households``, ``buildings`` (count), ``deviation``
        (``households / mean - 1``), ``polsby_popper`` (4πA/P², measured in
        the projected CRS), ``contiguous``.
    building_part : numpy.ndarray
        For each input building (row order), its part (1..N), or 0 when it
        does not meet the unit.
    mean : float
        Households per part on average.
    max_deviation : float
        Largest ``|deviation|``.
    tolerance : float
        The tolerance asked for.
    within_tolerance : bool
        Whether every part is within it.
    atoms : GeoDataFrame
        The pieces that were partitioned (blocks, and the grounds of the
        buildings of the blocks that had to be cut), in the unit's CRS, with
        ``households`` and ``part``: the same input other regionalisation
        methods can be run on.
    """

    parts: gpd.GeoDataFrame
    building_part: np.ndarray
    mean: float
    max_deviation: float
    tolerance: float
    within_tolerance: bool
    atoms: gpd.GeoDataFrame

    def summary(self) -> dict[str, Any]:
        """Return the figures as plain JSON-ready values."""
        pp = self.parts["polsby_popper"].to_numpy(dtype=float)
        return {
            "parts": len(self.parts),
            "households": [int(h) for h in self.parts["households"]],
            "mean": round(self.mean, 2),
            "max_deviation": round(self.max_deviation, 4),
            "tolerance": self.tolerance,
            "within_tolerance": self.within_tolerance,
            "polsby_popper": [round(float(p), 4) for p in pp],
            "polsby_popper_mean": round(float(pp.mean()), 4),
            "polsby_popper_min": round(float(pp.min()), 4),
            "atoms": len(self.atoms),
        }


def auto_split(
    unit_geometry: shapely.Geometry,
    buildings: gpd.GeoDataFrame,
    households_per_building: Sequence[float] | np.ndarray | pd.Series | str,
    streets: gpd.GeoDataFrame | None,
    n_parts: int,
    *,
    tolerance: float = 0.10,
    crs: Any = STORAGE_CRS,
    projected: CRS | None = None,
    seeds: int = 4,
) -> AutoSplitResult:
    """Split a unit into ``n_parts`` contiguous, compact parts with balanced households.

    Parameters
    ----------
    unit_geometry : Polygon or MultiPolygon
        The unit to split, in ``crs``.
    buildings : GeoDataFrame
        Footprints (with a CRS). Buildings that do not meet the unit are
        ignored (their part is 0).
    households_per_building : array-like or str
        Households of each building (row order), or the name of the column
        of ``buildings`` that holds them.
    streets : GeoDataFrame or None
        Street centre lines (with a CRS); cuts follow them where they can.
    n_parts : int
        How many parts (2 or more).
    tolerance : float
        Allowed relative deviation of a part's households from the mean.
    crs : CRS-like
        CRS of ``unit_geometry`` (and of the parts returned); default EPSG:4490.
    projected : pyproj.CRS, optional
        Where lengths, areas and distances are measured (default: the local
        projected CRS of the unit, a CGCS2000 Gauss–Krüger zone in China).
    seeds : int
        How many region-growing seedings to try besides the bisection (the
        cheapest result is kept; deterministic).

    Returns
    -------
    AutoSplitResult

    Raises
    ------
    InputError
        Naming the field: no CRS, not a polygon, an invalid geometry, a bad
        household count, ``n_parts`` below 2 or above the number of pieces
        the unit can be cut into.

    Examples
    --------
    >>> from shapely import box
    >>> unit = box(0, 0, 200, 100)
    >>> houses = gpd.GeoDataFrame(geometry=[box(20, 40, 30, 60), box(170, 40, 180, 60)],
    ...                           crs="EPSG:4547")
    >>> result = auto_split(unit, houses, [10, 12], None, 2, crs="EPSG:4547")
    >>> result.summary()["households"], result.building_part.tolist()
    ([10, 12], [1, 2])
    """
    unit, unit_crs = _checked_unit(unit_geometry, crs)
    if n_parts < 2:
        raise InputError(f"n_parts must be 2 or more, not {n_parts}", field="n_parts")
    if not 0 < tolerance < 1:
        raise InputError(f"tolerance must be between 0 and 1, not {tolerance}", field="tolerance")
    households = _households(buildings, households_per_building)
    footprints = _footprints(buildings, unit_crs)
    lines = _street_lines(streets, unit_crs)
    projected = projected or _local(unit, unit_crs)
    grid = _GRID_DEGREES if unit_crs.is_geographic else _GRID_METRES
    to_metres = transformer(unit_crs, projected)
    from_metres = transformer(projected, unit_crs)
    arrangement = _Arrangement.build(
        unit, footprints, households, lines, n_parts, tolerance, grid, to_metres, from_metres
    )
    if arrangement.size < n_parts:
        raise InputError(
            f"the unit can be cut into {arrangement.size} piece(s) only "
            f"(streets and buildings): fewer than n_parts={n_parts}",
            field="n_parts",
        )
    best = _partition(arrangement, n_parts, tolerance, seeds)
    return _result(arrangement, best, n_parts, tolerance, unit_crs, len(footprints), to_metres)


# -- inputs -------------------------------------------------------------------


def _checked_unit(geometry: shapely.Geometry, crs: Any) -> tuple[shapely.Geometry, CRS]:
    if crs is None:
        raise InputError("the unit has no CRS: pass crs=", field="crs")
    unit_crs = CRS(crs)
    if not isinstance(geometry, shapely.Polygon | shapely.MultiPolygon) or geometry.is_empty:
        kind = getattr(geometry, "geom_type", type(geometry).__name__)
        raise InputError(f"the unit must be a polygon, not {kind}", field="unit_geometry")
    if not geometry.is_valid:
        reason = shapely.is_valid_reason(geometry)
        raise InputError(f"the unit is not a valid polygon ({reason})", field="unit_geometry")
    return geometry, unit_crs


def _households(buildings: gpd.GeoDataFrame, given: Any) -> np.ndarray:
    values = buildings[given] if isinstance(given, str) else given
    try:
        counts = np.asarray(values, dtype=float)
    except (TypeError, ValueError):
        raise InputError(
            "households_per_building must be numbers", field="households_per_building"
        ) from None
    if counts.shape != (len(buildings),):
        raise InputError(
            f"households_per_building has {counts.size} value(s) for {len(buildings)} buildings",
            field="households_per_building",
        )
    if len(counts) and (not np.isfinite(counts).all() or (counts < 0).any()):
        raise InputError(
            "households_per_building must be finite and not negative",
            field="households_per_building",
        )
    return counts


def _footprints(buildings: gpd.GeoDataFrame, crs: CRS) -> np.ndarray:
    if len(buildings) == 0:
        return np.array([], dtype=object)
    if buildings.crs is None:
        raise InputError("the buildings have no CRS", field="buildings")
    geometries = np.asarray(buildings.to_crs(crs).geometry.values, dtype=object)
    kinds = shapely.get_type_id(geometries)
    bad = np.flatnonzero(~np.isin(kinds, (3, 6)) | ~shapely.is_valid(geometries))
    if len(bad):
        raise InputError(f"building row {int(bad[0])} is not a valid polygon", field="buildings")
    return geometries


def _street_lines(streets: gpd.GeoDataFrame | None, crs: CRS) -> np.ndarray:
    if streets is None or len(streets) == 0:
        return np.array([], dtype=object)
    if streets.crs is None:
        raise InputError("the streets have no CRS", field="streets")
    lines = np.asarray(streets.to_crs(crs).geometry.values, dtype=object)
    lines = lines[~shapely.is_missing(lines)]
    return lines[np.isin(shapely.get_type_id(lines), (1, 2, 5))]


def _local(unit: shapely.Geometry, crs: CRS) -> CRS:
    if crs.is_projected:
        return crs
    centre = shapely.centroid(unit)
    lon, lat = transformer(crs, STORAGE_CRS).transform(centre.x, centre.y)
    return local_projected_crs(lon, lat)


def _project(geometry: Any, proj: Any) -> Any:
    def convert(coords: np.ndarray) -> np.ndarray:
        x, y = proj.transform(coords[:, 0], coords[:, 1])
        return np.column_stack([x, y])

    return shapely.transform(geometry, convert)


# -- atoms --------------------------------------------------------------------


@dataclass
class _Arrangement:
    """Atoms of the unit: geometry (unit CRS), weights, centroids, adjacency."""

    atoms: np.ndarray  # geometries in the unit's CRS, a valid coverage
    weights: np.ndarray  # households (area when no households at all)
    households: np.ndarray
    xy: np.ndarray  # projected centroids
    area: np.ndarray  # m²
    perimeter: np.ndarray  # m
    neighbours: list[dict[int, float]]  # atom -> {neighbour: weighted shared length m}
    shared: list[dict[int, float]]  # atom -> {neighbour: shared length m}
    building_atom: np.ndarray  # building row -> atom, -1 outside
    unit_area: float

    @property
    def size(self) -> int:
        return len(self.atoms)

    @classmethod
    def build(
        cls,
        unit: shapely.Geometry,
        footprints: np.ndarray,
        households: np.ndarray,
        lines: np.ndarray,
        n_parts: int,
        tolerance: float,
        grid: float,
        to_metres: Any,
        from_metres: Any,
    ) -> _Arrangement:
        blocks = _blocks(unit, lines, grid)
        inside = _clip_buildings(footprints, unit)
        owner, groups = _group_blocks(blocks, inside)
        placed = owner >= 0
        group_households = np.bincount(
            owner[placed], weights=households[placed], minlength=len(groups)
        )
        total = float(households[placed].sum())
        limit = tolerance * total / n_parts if total > 0 else math.inf
        subdivide = [
            g
            for g in range(len(groups))
            if group_households[g] > limit and np.count_nonzero(owner == g) >= 2
        ]
        pieces = len(groups) - len(subdivide) + int(np.isin(owner, subdivide).sum())
        if pieces < n_parts:
            # Too few blocks for N parts: every block with buildings is cut between them.
            subdivide = [g for g in range(len(groups)) if np.count_nonzero(owner == g) >= 2]
        faces, face_atom = _faces(
            blocks, groups, subdivide, owner, inside, unit, grid, to_metres, from_metres
        )
        atoms, face_final = _dissolve_connected(faces, face_atom)
        metric = _project(atoms, to_metres)
        weights_h = np.zeros(len(atoms))
        building_atom = _building_atoms(inside, atoms)
        for b in np.flatnonzero(building_atom >= 0):
            weights_h[building_atom[b]] += households[b]
        area = shapely.area(metric)
        weights = weights_h if weights_h.sum() > 0 else area.copy()
        same_group = _atom_groups(face_final, faces, groups, blocks)
        shared, neighbours = _adjacency(metric, same_group)
        xy = shapely.get_coordinates(shapely.centroid(metric))
        return cls(
            atoms=atoms,
            weights=weights,
            households=weights_h,
            xy=xy,
            area=area,
            perimeter=shapely.length(metric),
            neighbours=neighbours,
            shared=shared,
            building_atom=building_atom,
            unit_area=float(area.sum()),
        )


def _blocks(unit: shapely.Geometry, lines: np.ndarray, grid: float) -> np.ndarray:
    # Street lines noded with the unit boundary on the precision grid; the
    # faces inside the unit are the blocks (dangling lane ends do not cut).
    boundary = shapely.boundary(unit)
    clipped = shapely.intersection(lines, unit) if len(lines) else np.array([], dtype=object)
    linework = shapely.union_all([boundary, *clipped], grid_size=grid)
    faces = np.asarray(shapely.get_parts(shapely.polygonize(shapely.get_parts(linework))))
    if len(faces) == 0:
        return np.array([unit], dtype=object)
    keep = shapely.within(shapely.point_on_surface(faces), unit)
    return faces[keep]


def _clip_buildings(footprints: np.ndarray, unit: shapely.Geometry) -> np.ndarray:
    if len(footprints) == 0:
        return footprints
    clipped = shapely.intersection(footprints, unit)
    polygonal = np.array(
        [
            shapely.union_all(
                shapely.get_parts(g)[np.isin(shapely.get_type_id(shapely.get_parts(g)), (3, 6))]
            )
            for g in clipped
        ],
        dtype=object,
    )
    polygonal[shapely.area(polygonal) <= 0] = None
    return polygonal


def _group_blocks(blocks: np.ndarray, inside: np.ndarray) -> tuple[np.ndarray, list[list[int]]]:
    """Return each building's block group (-1: not in the unit) and the groups' blocks.

    A building with a real piece in two blocks joins them (no cut through it).
    """
    parent = list(range(len(blocks)))

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    block_of = np.full(len(inside), -1)
    tree = shapely.STRtree(blocks)
    present = np.flatnonzero(~shapely.is_missing(inside))
    if len(present):
        b_idx, k_idx = tree.query(inside[present], predicate="intersects")
        pieces = shapely.area(shapely.intersection(inside[present][b_idx], blocks[k_idx]))
        own = shapely.area(inside[present][b_idx])
        best: dict[int, tuple[float, int]] = {}
        spans: dict[int, list[int]] = {}
        for b, k, piece, whole in zip(b_idx, k_idx, pieces, own, strict=True):
            if piece > _STRADDLE_SHARE * whole:
                spans.setdefault(int(b), []).append(int(k))
            if piece > best.get(int(b), (-1.0, -1))[0]:
                best[int(b)] = (float(piece), int(k))
        for ks in spans.values():
            for k in ks[1:]:
                parent[find(k)] = find(ks[0])
        for b, (_, k) in best.items():
            block_of[present[b]] = k
    roots = sorted({find(i) for i in range(len(blocks))})
    index = {r: g for g, r in enumerate(roots)}
    groups: list[list[int]] = [[] for _ in roots]
    for i in range(len(blocks)):
        groups[index[find(i)]].append(i)
    group_of_block = np.array([index[find(i)] for i in range(len(blocks))])
    owner = np.where(block_of >= 0, group_of_block[np.maximum(block_of, 0)], -1)
    return owner, groups


def _faces(
    blocks: np.ndarray,
    groups: list[list[int]],
    subdivide: list[int],
    owner: np.ndarray,
    inside: np.ndarray,
    unit: shapely.Geometry,
    grid: float,
    to_metres: Any,
    from_metres: Any,
) -> tuple[np.ndarray, np.ndarray]:
    """Return the faces of the arrangement and each face's provisional atom."""
    group_geoms = np.array([shapely.union_all(blocks[g]) for g in groups], dtype=object)
    atom_of_group = {g: g for g in range(len(groups))}
    next_atom = len(groups)
    extra_lines: list[shapely.Geometry] = []
    regions: list[tuple[shapely.Geometry, int]] = []  # (ground of a building, atom)
    footprints: list[tuple[shapely.Geometry, int]] = []
    for g in subdivide:
        members = np.flatnonzero(owner == g)
        atoms = list(range(next_atom, next_atom + len(members)))
        next_atom += len(members)
        for b, a in zip(members, atoms, strict=True):
            footprints.append((inside[b], a))
        grounds = _grounds(inside[members], group_geoms[g], to_metres, from_metres)
        for ground, a in zip(grounds, atoms, strict=True):
            regions.append((ground, a))
        extra_lines.extend(shapely.boundary(inside[members]))
        extra_lines.extend(shapely.intersection(shapely.boundary(grounds), group_geoms[g]))
    if not subdivide:
        face_atom = np.zeros(len(blocks), dtype=int)
        for g, block_list in enumerate(groups):
            face_atom[block_list] = atom_of_group[g]
        return blocks, face_atom
    linework = shapely.union_all([*shapely.boundary(blocks), *extra_lines], grid_size=grid)
    faces = np.asarray(shapely.get_parts(shapely.polygonize(shapely.get_parts(linework))))
    points = shapely.point_on_surface(faces)
    faces, points = faces[shapely.within(points, unit)], points[shapely.within(points, unit)]
    face_atom = np.full(len(faces), -1)
    group_tree = shapely.STRtree(group_geoms)
    f_idx, g_idx = group_tree.query(points, predicate="within")
    face_group = np.full(len(faces), -1)
    face_group[f_idx] = g_idx
    missing = np.flatnonzero(face_group < 0)
    if len(missing):  # a point on an edge after snapping: the nearest group
        face_group[missing] = group_tree.query_nearest(points[missing], all_matches=False)[1]
    for f in range(len(faces)):
        face_atom[f] = atom_of_group[int(face_group[f])]
    chosen = set(subdivide)
    in_subdivided = np.flatnonzero([int(g) in chosen for g in face_group])
    if len(in_subdivided):
        _label_faces(points, face_atom, in_subdivided, regions, footprints)
    return faces, face_atom


def _label_faces(
    points: np.ndarray,
    face_atom: np.ndarray,
    rows: np.ndarray,
    regions: list[tuple[shapely.Geometry, int]],
    footprints: list[tuple[shapely.Geometry, int]],
) -> None:
    # A face inside a footprint goes to its building; any other face to the
    # building whose ground holds it (the nearest footprint if snapping put
    # its point on an edge).
    foot_geoms = np.array([f for f, _ in footprints], dtype=object)
    foot_atoms = np.array([a for _, a in footprints])
    ground_geoms = np.array([r for r, _ in regions], dtype=object)
    ground_atoms = np.array([a for _, a in regions])
    foot_tree = shapely.STRtree(foot_geoms)
    ground_tree = shapely.STRtree(ground_geoms)
    pts = points[rows]
    labels = np.full(len(rows), -1)
    p_idx, g_idx = ground_tree.query(pts, predicate="within")
    labels[p_idx] = ground_atoms[g_idx]
    p_idx, f_idx = foot_tree.query(pts, predicate="within")
    labels[p_idx] = foot_atoms[f_idx]
    missing = np.flatnonzero(labels < 0)
    if len(missing):
        labels[missing] = foot_atoms[foot_tree.query_nearest(pts[missing], all_matches=False)[1]]
    face_atom[rows] = labels


def _grounds(
    footprints: np.ndarray, group: shapely.Geometry, to_metres: Any, from_metres: Any
) -> np.ndarray:
    """Return for each footprint the ground nearer to it than to the others (unit CRS)."""
    metric = _project(footprints, to_metres)
    outlines = shapely.segmentize(shapely.boundary(metric), _OUTLINE_STEP_M)
    coords, owner = shapely.get_coordinates(outlines, return_index=True)
    coords, first = np.unique(np.round(coords, 3), axis=0, return_index=True)
    owner = owner[first]
    envelope = shapely.buffer(shapely.envelope(_project(group, to_metres)), 10.0)
    cells = shapely.get_parts(
        shapely.voronoi_polygons(shapely.multipoints(coords), extend_to=envelope, ordered=True)
    )
    if len(cells) != len(owner):  # GEOS merged sites: find each cell's site again
        tree = shapely.STRtree(shapely.points(coords))
        owner = owner[tree.query_nearest(shapely.point_on_surface(cells), all_matches=False)[1]]
    grounds = np.array([_dissolve(cells[owner == i]) for i in range(len(footprints))], dtype=object)
    return np.asarray(shapely.intersection(_project(grounds, from_metres), group))


def _dissolve(cells: np.ndarray) -> shapely.Geometry:
    # Voronoi cells are a coverage: the fast coverage union, unless GEOS
    # finds them degenerate (collinear sites), then the general union.
    try:
        return shapely.coverage_union_all(cells)
    except shapely.errors.GEOSException:
        return shapely.union_all(cells)


def _dissolve_connected(faces: np.ndarray, face_atom: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Dissolve faces into atoms; a detached piece of an atom joins its longest neighbour.

    Returns the atoms and each face's atom (0..len(atoms)-1).
    """
    tree = shapely.STRtree(faces)
    for _ in range(5):
        moved = False
        for a in sorted(set(face_atom.tolist())):
            mine = np.flatnonzero(face_atom == a)
            parts = shapely.get_parts(shapely.coverage_union_all(faces[mine]))
            if len(parts) < 2:
                continue
            keep = int(np.argmax(shapely.area(parts)))
            inner = shapely.point_on_surface(faces[mine])
            for k, piece in enumerate(parts):
                if k == keep:
                    continue
                members = mine[shapely.within(inner, piece)]
                near = tree.query(piece, predicate="intersects")
                near = near[face_atom[near] != a]
                if len(near) == 0:
                    continue
                lengths = shapely.length(
                    shapely.intersection(shapely.boundary(piece), shapely.boundary(faces[near]))
                )
                if lengths.max() <= 0:
                    continue
                face_atom[members] = face_atom[near[int(np.argmax(lengths))]]
                moved = True
        if not moved:
            break
    used = sorted(set(face_atom.tolist()))
    final = {a: i for i, a in enumerate(used)}
    atoms = np.array(
        [shapely.coverage_union_all(faces[face_atom == a]) for a in used], dtype=object
    )
    return atoms, np.array([final[a] for a in face_atom.tolist()], dtype=int)


def _building_atoms(inside: np.ndarray, atoms: np.ndarray) -> np.ndarray:
    """Return each building's atom: the one holding the largest piece of it (-1: outside)."""
    result = np.full(len(inside), -1)
    present = np.flatnonzero(~shapely.is_missing(inside))
    if len(present) == 0:
        return result
    b_idx, a_idx = shapely.STRtree(atoms).query(inside[present], predicate="intersects")
    pieces = shapely.area(shapely.intersection(inside[present][b_idx], atoms[a_idx]))
    best = np.full(len(present), -1.0)
    for b, a, piece in zip(b_idx.tolist(), a_idx.tolist(), pieces.tolist(), strict=True):
        if piece > best[b]:
            best[b] = piece
            result[present[b]] = a
    return result


def _atom_groups(
    face_final: np.ndarray, faces: np.ndarray, groups: list[list[int]], blocks: np.ndarray
) -> np.ndarray:
    """Return each atom's block group (cuts between atoms of one group go through a block)."""
    group_geoms = np.array([shapely.union_all(blocks[g]) for g in groups], dtype=object)
    tree = shapely.STRtree(group_geoms)
    f_idx, g_idx = tree.query(shapely.point_on_surface(faces), predicate="within")
    face_group = np.full(len(faces), -1)
    face_group[f_idx] = g_idx
    result = np.full(int(face_final.max()) + 1 if len(face_final) else 0, -1)
    for f, a in enumerate(face_final.tolist()):
        if result[a] < 0:
            result[a] = face_group[f]
    return result


def _adjacency(
    metric: np.ndarray, group: np.ndarray
) -> tuple[list[dict[int, float]], list[dict[int, float]]]:
    shared: list[dict[int, float]] = [{} for _ in metric]
    weighted: list[dict[int, float]] = [{} for _ in metric]
    tree = shapely.STRtree(metric)
    left, right = tree.query(metric, predicate="intersects")
    keep = left < right
    left, right = left[keep], right[keep]
    lengths = shapely.length(
        shapely.intersection(shapely.boundary(metric[left]), shapely.boundary(metric[right]))
    )
    for i, j, length in zip(left.tolist(), right.tolist(), lengths.tolist(), strict=True):
        if length <= 1e-6:  # corners only: not neighbours
            continue
        factor = _THROUGH_BLOCK if group[i] >= 0 and group[i] == group[j] else 1.0
        shared[i][j] = shared[j][i] = length
        weighted[i][j] = weighted[j][i] = length * factor
    return shared, weighted


# -- regions ------------------------------------------------------------------


@dataclass
class _Regions:
    label: np.ndarray
    cost: float


def _partition(arr: _Arrangement, n: int, tolerance: float, seeds: int) -> _Regions:
    # Candidates: recursive bisection by sweeps, and region growing from
    # k-means++ seeds; each improved by local search, the cheapest kept.
    starts = [_bisection(arr, n)]
    for seed in range(max(0, seeds)):
        rng = np.random.default_rng(seed)
        centres = _kmeans(arr.xy, arr.weights + 1e-9, n, rng, lloyd=seed == 0)
        starts.append(_grow(arr, centres, n))
    best: _Regions | None = None
    for label in starts:
        if len(set(label.tolist())) < n:
            continue
        _improve(arr, label, n, tolerance)
        cost = _cost(arr, label, n, tolerance)
        if best is None or cost < best.cost:
            best = _Regions(label, cost)
    assert best is not None  # region growing always yields n parts
    return best


def _bisection(arr: _Arrangement, n: int) -> np.ndarray:
    label = np.full(arr.size, -1)
    parts = _split(arr, list(range(arr.size)), n)
    for k, part in enumerate(parts):
        label[part] = k
    return label


def _split(arr: _Arrangement, nodes: list[int], n: int) -> list[list[int]]:
    if n == 1:
        return [nodes]
    if len(nodes) < n:  # cannot be cut in n: the candidate is dropped
        return [nodes] + [[] for _ in range(n - 1)]
    k = n // 2
    first, second = _bisect(arr, nodes, k / n, (k, n - k))
    return _split(arr, first, k) + _split(arr, second, n - k)


def _bisect(
    arr: _Arrangement, nodes: list[int], share: float, sizes: tuple[int, int]
) -> tuple[list[int], list[int]]:
    node_set = set(nodes)
    total = float(arr.weights[nodes].sum())
    scale = math.sqrt(float(arr.area[nodes].sum()))
    goal = share * total
    best: tuple[float, list[int], list[int]] | None = None
    for step in range(16):
        angle = step * math.pi / 8
        region = _sweep(arr, node_set, np.array([math.cos(angle), math.sin(angle)]), goal)
        pieces = _components(arr, node_set - region)
        if not pieces:
            continue
        rest = max(pieces, key=len)
        for stray in pieces:
            if stray is not rest:
                region |= stray
        if len(region) < sizes[0] or len(rest) < sizes[1]:
            continue
        error = abs(float(arr.weights[list(region)].sum()) - goal) / max(total, 1e-9)
        cut = sum(
            arr.neighbours[i].get(j, 0.0) for i in region for j in arr.neighbours[i] if j in rest
        )
        score = error + 0.02 * cut / max(scale, 1e-9)
        if best is None or score < best[0] - 1e-12:
            best = (score, sorted(region), sorted(rest))
    if best is None:
        half = len(nodes) * sizes[0] // (sizes[0] + sizes[1])
        return nodes[:half], nodes[half:]
    return best[1], best[2]


def _sweep(arr: _Arrangement, nodes: set[int], direction: np.ndarray, goal: float) -> set[int]:
    # Grow a connected region from the extreme atom along ``direction`` up to ``goal``.
    proj = {i: float(arr.xy[i] @ direction) for i in nodes}
    start = min(nodes, key=lambda i: (proj[i], i))
    heap = [(proj[start], start)]
    seen = {start}
    region: set[int] = set()
    total = 0.0
    while heap:
        _, i = heapq.heappop(heap)
        w = float(arr.weights[i])
        if region and total + w > goal and (total + w - goal) > (goal - total):
            break
        region.add(i)
        total += w
        if total >= goal:
            break
        for j in arr.neighbours[i]:
            if j in nodes and j not in seen:
                seen.add(j)
                heapq.heappush(heap, (proj[j], j))
    return region


def _components(arr: _Arrangement, nodes: set[int]) -> list[set[int]]:
    left = set(nodes)
    pieces = []
    while left:
        start = left.pop()
        piece = {start}
        queue = deque([start])
        while queue:
            i = queue.popleft()
            for j in arr.neighbours[i]:
                if j in left:
                    left.discard(j)
                    piece.add(j)
                    queue.append(j)
        pieces.append(piece)
    return pieces


def _kmeans(
    xy: np.ndarray, w: np.ndarray, n: int, rng: np.random.Generator, *, lloyd: bool
) -> np.ndarray:
    # k-means++ seeding weighted by households, then a few weighted Lloyd steps.
    first = rng.choice(len(xy), p=w / w.sum())
    centres = [xy[first]]
    for _ in range(1, n):
        d2 = np.min([((xy - c) ** 2).sum(axis=1) for c in centres], axis=0) * w
        pick = rng.choice(len(xy), p=d2 / d2.sum()) if d2.sum() > 0 else rng.integers(len(xy))
        centres.append(xy[pick])
    c = np.array(centres, dtype=float)
    for _ in range(10 if lloyd else 0):
        nearest = np.argmin(((xy[:, None, :] - c[None, :, :]) ** 2).sum(axis=2), axis=1)
        for k in range(n):
            mine = nearest == k
            if w[mine].sum() > 0:
                c[k] = (xy[mine] * w[mine, None]).sum(axis=0) / w[mine].sum()
    return c


def _grow(arr: _Arrangement, centres: np.ndarray, n: int) -> np.ndarray:
    # The lightest region takes its free neighbour nearest its centre (one
    # heap per region: n log n, large units included).
    label = np.full(arr.size, -1)
    distance = ((arr.xy[:, None, :] - centres[None, :, :]) ** 2).sum(axis=2)
    load = np.zeros(n)
    heaps: list[list[tuple[float, int]]] = [[] for _ in range(n)]

    def take(k: int, i: int) -> None:
        label[i] = k
        load[k] += arr.weights[i]
        for j in arr.neighbours[i]:
            if label[j] < 0:
                heapq.heappush(heaps[k], (float(distance[j, k]), j))

    for k in range(n):
        order = np.argsort(distance[:, k])
        take(k, next(int(i) for i in order if label[int(i)] < 0))
    active = set(range(n))
    while active:
        k = min(active, key=lambda r: (load[r], r))
        while heaps[k] and label[heaps[k][0][1]] >= 0:
            heapq.heappop(heaps[k])
        if not heaps[k]:
            active.discard(k)
            continue
        take(k, heapq.heappop(heaps[k])[1])
    for i in np.flatnonzero(label < 0):  # pieces of the unit nothing connects
        label[i] = int(np.argmin(distance[i]))
    return label


def _cost(arr: _Arrangement, label: np.ndarray, n: int, tol: float) -> float:
    mean = arr.weights.sum() / n
    if mean <= 0:
        return 0.0
    state = _State(arr, label, n, mean, tol)
    return float(
        sum(state.balance(v) for v in state.load)
        + _SHAPE_WEIGHT
        * sum(_shape(p, a) for p, a in zip(state.perim, state.area, strict=True))
        / n
    )


def _shape(perimeter: float, area: float) -> float:
    # 1 / Polsby-Popper: 1 for a disc, larger the less compact.
    return perimeter * perimeter / (4 * math.pi * area) if area > 0 else 1e6


def _improve(arr: _Arrangement, label: np.ndarray, n: int, tol: float) -> None:
    mean = arr.weights.sum() / n
    if mean <= 0:
        return
    state = _State(arr, label, n, mean, tol)
    for _ in range(_MAX_PASSES):
        # Single moves first; when none helps, swaps of two atoms across an
        # edge between parts (heavy buildings often leave no single move).
        if not state.move_pass() and not state.swap_pass():
            break


class _State:
    """Labels, loads, areas and perimeters of a partition being improved in place.

    Perimeters are weighted: a cut between two atoms of one block counts
    ``_THROUGH_BLOCK`` times its length, so cuts prefer streets.
    """

    def __init__(self, arr: _Arrangement, label: np.ndarray, n: int, mean: float, tol: float):
        self.arr, self.label, self.mean, self.tol, self.n = arr, label, mean, tol, n
        self.load = np.bincount(label, weights=arr.weights, minlength=n)
        self.members = [set(np.flatnonzero(label == k).tolist()) for k in range(n)]
        self.outer = np.maximum(
            arr.perimeter - np.array([sum(s.values()) for s in arr.shared]), 0.0
        )
        self.area = np.bincount(label, weights=arr.area, minlength=n).astype(float)
        self.perim = np.array([self._perimeter(k, self.members[k], label) for k in range(n)])

    def _perimeter(self, k: int, part: set[int], label: Any) -> float:
        arr = self.arr
        total = 0.0
        for i in part:
            total += self.outer[i]
            for j, length in arr.neighbours[i].items():
                if label[j] != k:
                    total += length
        return total

    def balance(self, value: float) -> float:
        d = value / self.mean - 1
        excess = max(abs(d) - self.tol, 0.0)
        # Linear as well as quadratic: leaving the tolerance by a hair is not cheap.
        return _EXCESS_WEIGHT * (excess + excess * excess) + d * d

    def shape(self, perimeter: float, area: float) -> float:
        return _SHAPE_WEIGHT * _shape(perimeter, area) / self.n

    def boundary(self) -> list[int]:
        label, arr = self.label, self.arr
        return [i for i in range(arr.size) if any(label[j] != label[i] for j in arr.neighbours[i])]

    def move(self, i: int, target: int, perimeters: tuple[float, float] | None = None) -> None:
        p = int(self.label[i])
        arr = self.arr
        if perimeters is None:
            perimeters = self._moved_perimeters(i, p, target)
        self.label[i] = target
        self.members[p].discard(i)
        self.members[target].add(i)
        self.load[p] -= arr.weights[i]
        self.load[target] += arr.weights[i]
        self.area[p] -= arr.area[i]
        self.area[target] += arr.area[i]
        self.perim[p], self.perim[target] = perimeters

    def _moved_perimeters(self, i: int, p: int, q: int) -> tuple[float, float]:
        touch: dict[int, float] = {}
        for j, length in self.arr.neighbours[i].items():
            touch[int(self.label[j])] = touch.get(int(self.label[j]), 0.0) + length
        total = sum(touch.values())
        on_p, on_q = touch.get(p, 0.0), touch.get(q, 0.0)
        return (
            self.perim[p] - self.outer[i] - (total - on_p) + on_p,
            self.perim[q] + self.outer[i] + (total - on_q) - on_q,
        )

    def move_pass(self) -> bool:
        improved = False
        label, load, arr = self.label, self.load, self.arr
        for i in self.boundary():
            p = int(label[i])
            if len(self.members[p]) <= 1:
                continue
            w, a = arr.weights[i], arr.area[i]
            before_p = self.balance(load[p]) + self.shape(self.perim[p], self.area[p])
            best, target, best_perimeters = 0.0, -1, (0.0, 0.0)
            for q in {int(label[j]) for j in arr.neighbours[i]} - {p}:
                perim_p, perim_q = self._moved_perimeters(i, p, q)
                delta = (
                    self.balance(load[p] - w)
                    + self.shape(perim_p, self.area[p] - a)
                    + self.balance(load[q] + w)
                    + self.shape(perim_q, self.area[q] + a)
                    - before_p
                    - self.balance(load[q])
                    - self.shape(self.perim[q], self.area[q])
                )
                if delta < best - 1e-12:
                    best, target, best_perimeters = delta, q, (perim_p, perim_q)
            if target < 0 or not _connected(arr, self.members[p] - {i}):
                continue
            self.move(i, target, best_perimeters)
            improved = True
        return improved

    def swap_pass(self) -> bool:
        label, load, arr = self.label, self.load, self.arr
        sides: dict[tuple[int, int], set[int]] = {}
        for i in self.boundary():
            for j in arr.neighbours[i]:
                if label[j] != label[i]:
                    sides.setdefault((int(label[i]), int(label[j])), set()).add(i)
        candidates: list[tuple[float, int, int]] = []
        for (p, q), mine in sides.items():
            if p > q:
                continue
            theirs = sides.get((q, p), set())
            base = self.balance(load[p]) + self.balance(load[q])
            for a in mine:
                for b in theirs:
                    shift = arr.weights[b] - arr.weights[a]
                    delta = self.balance(load[p] + shift) + self.balance(load[q] - shift) - base
                    if delta < -1e-9:
                        candidates.append((delta, a, b))
        for _, a, b in sorted(candidates)[:200]:
            p, q = int(label[a]), int(label[b])
            new_p = (self.members[p] - {a}) | {b}
            new_q = (self.members[q] - {b}) | {a}
            if not (_connected(arr, new_p) and _connected(arr, new_q)):
                continue
            trial = dict(enumerate(label.tolist()))
            trial[a], trial[b] = q, p
            perim_p = self._perimeter(p, new_p, trial)
            perim_q = self._perimeter(q, new_q, trial)
            shift = arr.weights[b] - arr.weights[a]
            area_shift = arr.area[b] - arr.area[a]
            delta = (
                self.balance(load[p] + shift)
                + self.balance(load[q] - shift)
                + self.shape(perim_p, self.area[p] + area_shift)
                + self.shape(perim_q, self.area[q] - area_shift)
                - self.balance(load[p])
                - self.balance(load[q])
                - self.shape(self.perim[p], self.area[p])
                - self.shape(self.perim[q], self.area[q])
            )
            if delta >= -1e-9:
                continue
            self.move(a, q)
            self.move(b, p)
            self.perim[p], self.perim[q] = perim_p, perim_q
            return True
        return False


def _connected(arr: _Arrangement, part: set[int]) -> bool:
    if not part:
        return False
    start = next(iter(part))
    seen = {start}
    queue = deque([start])
    while queue:
        i = queue.popleft()
        for j in arr.neighbours[i]:
            if j in part and j not in seen:
                seen.add(j)
                queue.append(j)
    return len(seen) == len(part)


# -- result -------------------------------------------------------------------


def _result(
    arr: _Arrangement,
    regions: _Regions,
    n: int,
    tolerance: float,
    crs: CRS,
    building_count: int,
    to_metres: Any,
) -> AutoSplitResult:
    label = regions.label
    geoms = np.array(
        [shapely.coverage_union_all(arr.atoms[label == k]) for k in range(n)], dtype=object
    )
    metric = _project(geoms, to_metres)
    centroids = shapely.get_coordinates(shapely.centroid(metric))
    row_height = math.sqrt(arr.unit_area / n)
    order = sorted(
        range(n), key=lambda k: (-math.floor(centroids[k, 1] / row_height), centroids[k, 0])
    )
    number = {k: rank + 1 for rank, k in enumerate(order)}
    households = np.bincount(label, weights=arr.households, minlength=n)
    mean = float(arr.households.sum() / n)
    deviation = households / mean - 1 if mean > 0 else np.zeros(n)
    area = shapely.area(metric)
    perimeter = shapely.length(metric)
    building_part = np.zeros(building_count, dtype=int)
    inside = arr.building_atom >= 0
    building_part[inside] = [number[int(label[a])] for a in arr.building_atom[inside]]
    parts = gpd.GeoDataFrame(
        {
            "part": [number[k] for k in range(n)],
            "households": households.round().astype(int),
            "buildings": [int(np.count_nonzero(building_part == number[k])) for k in range(n)],
            "deviation": deviation.round(4),
            "polsby_popper": (4 * math.pi * area / perimeter**2).round(4),
            "contiguous": [len(shapely.get_parts(g)) == 1 for g in geoms],
        },
        geometry=list(geoms),
        crs=crs,
    )
    parts = parts.sort_values("part").reset_index(drop=True)
    max_dev = float(np.abs(deviation).max())
    return AutoSplitResult(
        parts=parts,
        building_part=building_part,
        mean=mean,
        max_deviation=max_dev,
        tolerance=tolerance,
        within_tolerance=bool(max_dev <= tolerance + 1e-9),
        atoms=gpd.GeoDataFrame(
            {
                "households": arr.households.round().astype(int),
                "part": [number[int(k)] for k in label],
            },
            geometry=list(arr.atoms),
            crs=crs,
        ),
    )
