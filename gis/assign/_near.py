"""Which footprints come near a unit boundary: a conservative numba filter.

A footprint that meets no unit boundary lies inside one unit (or outside all
of them) as a whole, so its unit is the unit of any one of its points. Only
the others need exact geometry. This module finds them cheaply: unit edges
are binned on a uniform grid, and each footprint's bounding box, grown by a
small pad, is tested against the edges of the cells it overlaps.

The test errs on one side only. A footprint flagged here may not touch any
boundary (its box does, its shape does not); a footprint not flagged is
certainly clear of every boundary by more than the float error of the test,
because the pad (a billionth of the data's extent and magnitude, about 3 mm
in Gauss-Kruger metres, 1 cm in degrees) dwarfs it.
"""

from __future__ import annotations

import math

import numpy as np
import shapely
from numba import njit
from numpy.typing import NDArray

__all__ = ["near_boundaries", "unit_edges"]

Floats = NDArray[np.float64]

_PAD = 1e-9  # of the data's extent plus its largest coordinate (see the module docstring)
_MAX_CELLS = 1 << 24


def unit_edges(units: NDArray[np.object_]) -> tuple[Floats, NDArray[np.int64]]:
    """Return every ring edge of ``units`` as rows ``(x0, y0, x1, y1)``, and its unit's row.

    Examples
    --------
    >>> import numpy as np, shapely
    >>> edges, unit = unit_edges(np.array([shapely.box(0, 0, 1, 1)]))
    >>> edges.shape, unit.tolist()
    ((4, 4), [0, 0, 0, 0])
    >>> multi = shapely.MultiPolygon([shapely.box(0, 0, 1, 1), shapely.box(2, 0, 3, 1)])
    >>> unit_edges(np.array([shapely.box(5, 5, 6, 6), multi]))[1].tolist()
    [0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1]
    """
    # get_rings only reads Polygons: split MultiPolygons (as stored) into parts first.
    parts, part_unit = shapely.get_parts(units, return_index=True)
    rings, ring_part = shapely.get_rings(parts, return_index=True)  # holes are boundaries too
    ring_unit = part_unit[ring_part]
    coords, ring = shapely.get_coordinates(rings, return_index=True)
    same = np.flatnonzero(ring[:-1] == ring[1:])
    edges = np.column_stack([coords[same], coords[same + 1]])
    return edges, ring_unit[ring[same]].astype(np.int64)


def near_boundaries(bounds: Floats, edges: Floats) -> NDArray[np.bool_]:
    """Flag the boxes that touch or come within the pad of an edge.

    Parameters
    ----------
    bounds : ndarray of shape (n, 4)
        ``(xmin, ymin, xmax, ymax)`` of each footprint (NaN: never flagged).
    edges : ndarray of shape (m, 4)
        Unit edges from :func:`unit_edges`.

    Returns
    -------
    ndarray of bool
        ``True`` for boxes that may meet an edge.

    Examples
    --------
    >>> import numpy as np, shapely
    >>> edges, _ = unit_edges(np.array([shapely.box(0, 0, 10, 10)]))
    >>> near_boundaries(np.array([[1.0, 1, 2, 2], [9.5, 1, 10.5, 2]]), edges).tolist()
    [False, True]
    """
    out = np.zeros(len(bounds), dtype=bool)
    if len(edges) == 0 or len(bounds) == 0:
        return out
    x0 = float(min(edges[:, 0].min(), edges[:, 2].min()))
    y0 = float(min(edges[:, 1].min(), edges[:, 3].min()))
    x1 = float(max(edges[:, 0].max(), edges[:, 2].max()))
    y1 = float(max(edges[:, 1].max(), edges[:, 3].max()))
    span = max(x1 - x0, y1 - y0)
    pad = _PAD * (span + max(abs(x0), abs(x1), abs(y0), abs(y1)))
    # About one edge per cell: an edge then spans a cell or two and a
    # footprint, much smaller than a unit, a handful.
    cells = min(max(len(edges), 1), _MAX_CELLS)
    side = max(math.sqrt(max(x1 - x0, pad) * max(y1 - y0, pad) / cells), pad)
    nx = max(1, min(math.ceil((x1 - x0) / side) + 1, _MAX_CELLS))
    ny = max(1, min(math.ceil((y1 - y0) / side) + 1, _MAX_CELLS // nx))
    grid = np.array([x0, y0, side, pad], dtype=np.float64)
    ptr, items = _bin_edges(np.ascontiguousarray(edges), grid, nx, ny)
    _flag(np.ascontiguousarray(bounds, dtype=np.float64), edges, grid, nx, ny, ptr, items, out)
    return out


@njit(nogil=True, cache=True)
def _span(lo: float, hi: float, origin: float, side: float, n: int) -> tuple[int, int]:
    first = int(np.floor((lo - origin) / side))
    last = int(np.floor((hi - origin) / side))
    return max(first, 0), min(last, n - 1)


@njit(nogil=True, cache=True)
def _bin_edges(
    edges: Floats, grid: Floats, nx: int, ny: int
) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
    # CSR lists of the edges whose padded box overlaps each cell (count, then fill).
    x0, y0, side, pad = grid[0], grid[1], grid[2], grid[3]
    counts = np.zeros(nx * ny + 1, dtype=np.int64)
    for stage in range(2):
        if stage == 1:
            ptr = np.zeros(nx * ny + 1, dtype=np.int64)
            ptr[1:] = np.cumsum(counts[:-1])
            fill = ptr[:-1].copy()
            items = np.empty(ptr[-1], dtype=np.int64)
        for e in range(edges.shape[0]):
            ax, ay, bx, by = edges[e, 0], edges[e, 1], edges[e, 2], edges[e, 3]
            c0, c1 = _span(min(ax, bx) - pad, max(ax, bx) + pad, x0, side, nx)
            r0, r1 = _span(min(ay, by) - pad, max(ay, by) + pad, y0, side, ny)
            for r in range(r0, r1 + 1):
                for c in range(c0, c1 + 1):
                    cell = r * nx + c
                    if stage == 0:
                        counts[cell] += 1
                    else:
                        items[fill[cell]] = e
                        fill[cell] += 1
    return ptr, items


@njit(nogil=True, cache=True)
def _flag(
    bounds: Floats,
    edges: Floats,
    grid: Floats,
    nx: int,
    ny: int,
    ptr: NDArray[np.int64],
    items: NDArray[np.int64],
    out: NDArray[np.bool_],
) -> None:
    x0, y0, side, pad = grid[0], grid[1], grid[2], grid[3]
    for i in range(bounds.shape[0]):
        bx0 = bounds[i, 0] - pad
        by0 = bounds[i, 1] - pad
        bx1 = bounds[i, 2] + pad
        by1 = bounds[i, 3] + pad
        if not (bx0 <= bx1 and by0 <= by1):  # NaN bounds (empty geometry)
            continue
        c0, c1 = _span(bx0, bx1, x0, side, nx)
        r0, r1 = _span(by0, by1, y0, side, ny)
        hit = False
        for r in range(r0, r1 + 1):
            for c in range(c0, c1 + 1):
                cell = r * nx + c
                for k in range(ptr[cell], ptr[cell + 1]):
                    e = items[k]
                    if _segment_meets_box(
                        edges[e, 0], edges[e, 1], edges[e, 2], edges[e, 3], bx0, by0, bx1, by1
                    ):
                        hit = True
                        break
                if hit:
                    break
            if hit:
                break
        out[i] = hit


@njit(nogil=True, cache=True)
def _segment_meets_box(
    ax: float, ay: float, bx: float, by: float, x0: float, y0: float, x1: float, y1: float
) -> bool:
    if max(ax, bx) < x0 or min(ax, bx) > x1 or max(ay, by) < y0 or min(ay, by) > y1:
        return False
    # The boxes overlap: the segment misses the box only if all four corners
    # are clearly on one side of its line. "Clearly" allows for the rounding
    # of the cross products; the pad already covers that of the coordinates.
    dx = bx - ax
    dy = by - ay
    f1 = dx * (y0 - ay) - dy * (x0 - ax)
    f2 = dx * (y0 - ay) - dy * (x1 - ax)
    f3 = dx * (y1 - ay) - dy * (x0 - ax)
    f4 = dx * (y1 - ay) - dy * (x1 - ax)
    tol = 1e-12 * (abs(dx) + abs(dy)) * (abs(dx) + abs(dy) + (x1 - x0) + (y1 - y0))
    if f1 > tol and f2 > tol and f3 > tol and f4 > tol:
        return False
    return not (f1 < -tol and f2 < -tol and f3 < -tol and f4 < -tol)
