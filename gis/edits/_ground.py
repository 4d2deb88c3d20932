"""The ground an edit really changes, and the buildings on it.

A change set names every unit it re-shapes, but most of them keep their
ground: a neighbour noded along a new edge gains a vertex (its outline has
a new point, its ground is the same, or differs by a hair along that edge).
A building's unit, and whether an edge cuts it, depend only on the ground
of the units its footprint meets and of the unit holding its entrance: a
building clear of every piece of ground that changes keeps both. Those
pieces are, per unit, the symmetric difference of its ground before and
after (the whole unit when it is made or retired), so a merely noded
neighbour contributes only the slivers along the moved edge.

Buildings within :data:`REACH_DEG` of a piece count as on it: a footprint
touching a piece only at a point, or an area that rounds away, is treated
as changed (assigned again), never the other way round.
"""

from __future__ import annotations

from collections.abc import Iterable

import geopandas as gpd
import numpy as np
import shapely
from numpy.typing import NDArray
from shapely.errors import GEOSException
from shapely.geometry.base import BaseGeometry

from gis.edits._model import LayerState
from gis.edits._standing import entrances_near

__all__ = [
    "REACH_DEG",
    "buildings_near",
    "buildings_on",
    "changed_ground",
    "footprints_on",
    "pieces_of",
]

#: A building this close (degrees, about 10 cm) to changed ground counts as on it.
REACH_DEG = 1e-6


def changed_ground(
    before: tuple[Iterable[object], Iterable[object]],
    after: tuple[Iterable[object], Iterable[object]],
) -> dict[str, BaseGeometry]:
    """Return, per unit whose ground changes, the ground that changes hands (EPSG:4490).

    Parameters
    ----------
    before, after : (codes, geometries)
        The units a change replaces, and what replaces them, one level.

    Returns
    -------
    dict of str to Geometry
        A unit made or retired: all its ground; a unit re-shaped: the
        symmetric difference of its ground before and after. Units whose
        ground is the same (a noded neighbour, a unit re-named or
        re-parented) are left out.
    """
    old = {str(c): g for c, g in zip(*before, strict=True)}
    new = {str(c): g for c, g in zip(*after, strict=True)}
    found = {c: g for c, g in new.items() if c not in old}
    found.update({c: g for c, g in old.items() if c not in new})
    both = [c for c in new if c in old and new[c] is not old[c]]
    if both:
        a = np.array([old[c] for c in both], dtype=object)
        b = np.array([new[c] for c in both], dtype=object)
        same = np.asarray(shapely.equals_exact(a, b, tolerance=0.0), dtype=bool)
        for code, x, y in zip(np.array(both, dtype=object)[~same], a[~same], b[~same], strict=True):
            try:
                found[code] = shapely.symmetric_difference(x, y)
            except GEOSException:  # cannot be told apart exactly: all of it changed
                found[code] = shapely.union(x, y, grid_size=1e-7)
    return {
        c: g
        for c, g in found.items()
        if g is not None and isinstance(g, shapely.Geometry) and not g.is_empty
    }


def pieces_of(ground: dict[str, BaseGeometry]) -> NDArray[np.object_]:
    """Return the pieces of :func:`changed_ground` as an array (for spatial queries)."""
    return np.array(list(ground.values()), dtype=object)


def buildings_on(buildings: gpd.GeoDataFrame, pieces: NDArray[np.object_]) -> NDArray[np.int64]:
    """Return the rows of ``buildings`` whose footprint or entrance is on ``pieces``, sorted.

    ``buildings`` is the places cache's frame (its spatial index and its
    ``entrance`` points are made once).
    """
    if not len(pieces) or not len(buildings):
        return np.zeros(0, dtype=np.int64)
    _, footprints = buildings.sindex.query(pieces, predicate="dwithin", distance=REACH_DEG)
    entrances = entrances_near(buildings, pieces, REACH_DEG)
    return np.union1d(footprints, entrances).astype(np.int64)


def buildings_near(state: LayerState, pieces: NDArray[np.object_]) -> gpd.GeoDataFrame | None:
    """Return the buildings within :data:`REACH_DEG` of ``pieces``, in their frame's order.

    From the state's buildings (their spatial index), else read around the
    pieces; ``None`` when the state knows no buildings.
    """
    every = state.buildings
    if every is not None:
        if not len(pieces) or every.empty:
            return every.iloc[:0]
        _, rows = every.sindex.query(pieces, predicate="dwithin", distance=REACH_DEG)
        return every.iloc[np.unique(rows)].reset_index(drop=True)
    if not len(pieces):
        return None
    minx, miny, maxx, maxy = shapely.total_bounds(pieces)
    read = state.buildings_in(
        shapely.box(minx - REACH_DEG, miny - REACH_DEG, maxx + REACH_DEG, maxy + REACH_DEG)
    )
    if read is None or read.empty:
        return read
    near = footprints_on(np.asarray(read.geometry.values, dtype=object), pieces)
    return read.iloc[np.flatnonzero(near)].reset_index(drop=True)


def footprints_on(
    footprints: NDArray[np.object_], pieces: NDArray[np.object_]
) -> NDArray[np.bool_]:
    """Return which ``footprints`` lie within :data:`REACH_DEG` of ``pieces``."""
    found = np.zeros(len(footprints), dtype=bool)
    if not len(pieces) or not len(footprints):
        return found
    # The pieces are the query's side: GEOS prepares them (few, large), not the footprints.
    _, hits = shapely.STRtree(footprints).query(pieces, predicate="dwithin", distance=REACH_DEG)
    found[hits] = True
    return found
