"""Atoms of an automatic split: blocks between streets, and building grounds where needed.

Every atom is a union of faces of one noded arrangement (unit boundary,
street lines, building outlines and the lines between buildings, snapped to
one precision grid), so the atoms, and any union of them, form a valid
coverage of the unit. See :mod:`gis.edits._autosplit` for the whole pipeline.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import shapely

__all__ = ["Arrangement", "project"]

_OUTLINE_STEP_M = 2.0  # spacing of the outline points whose Voronoi cells make a building's ground
_THROUGH_BLOCK = 1.25  # cost of a metre of cut between buildings relative to one along a street
_STRADDLE_SHARE = 0.01  # a building with this share of its footprint in two blocks joins them


def project(geometry: Any, proj: Any) -> Any:
    """Transform geometries with a pyproj transformer (x = easting/longitude)."""

    def convert(coords: np.ndarray) -> np.ndarray:
        x, y = proj.transform(coords[:, 0], coords[:, 1])
        return np.column_stack([x, y])

    return shapely.transform(geometry, convert)


@dataclass
class Arrangement:
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
    ) -> Arrangement:
        """Cut the unit into atoms (blocks, and building grounds where a block is too heavy).

        A block group is cut between its buildings when its households exceed
        ``tolerance`` x the mean part, or when there would be fewer atoms than
        parts otherwise. ``grid`` is the precision grid of the arrangement (in
        the unit's CRS); the transformers go to and from the projected CRS.
        """
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
        metric = project(atoms, to_metres)
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
    metric = project(footprints, to_metres)
    outlines = shapely.segmentize(shapely.boundary(metric), _OUTLINE_STEP_M)
    coords, owner = shapely.get_coordinates(outlines, return_index=True)
    coords, first = np.unique(np.round(coords, 3), axis=0, return_index=True)
    owner = owner[first]
    envelope = shapely.buffer(shapely.envelope(project(group, to_metres)), 10.0)
    cells = shapely.get_parts(
        shapely.voronoi_polygons(shapely.multipoints(coords), extend_to=envelope, ordered=True)
    )
    if len(cells) != len(owner):  # GEOS merged sites: find each cell's site again
        tree = shapely.STRtree(shapely.points(coords))
        owner = owner[tree.query_nearest(shapely.point_on_surface(cells), all_matches=False)[1]]
    grounds = np.array([_dissolve(cells[owner == i]) for i in range(len(footprints))], dtype=object)
    return np.asarray(shapely.intersection(project(grounds, from_metres), group))


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
