"""Numba lookup kernels of :class:`~gis.gridindex.GridIndex` (one point, serial, parallel)."""

from __future__ import annotations

import numpy as np
from numba import njit, prange
from numpy.typing import NDArray

from gis.gridindex._predicates import orient

__all__ = ["lookup_parallel", "lookup_serial"]

_CHUNK = 4096  # points per parallel task: large enough to amortise scheduling
_BATCH = 32  # points whose cell records are fetched together
_NEVER = -1.2345e300  # a sum of coordinates and small counts cannot be this


@njit(nogil=True, cache=True)
def _lookup_range(
    start: int,
    stop: int,
    x: NDArray[np.float64],
    y: NDArray[np.float64],
    out: NDArray[np.int64],
    grid: NDArray[np.float64],
    nx: int,
    ny: int,
    cell_code: NDArray[np.int32],
    blob: NDArray[np.float64],
) -> None:
    # One call per range, not per point: passing arrays to a compiled call
    # costs reference-count updates that would dominate a shortcut lookup.
    codes = np.empty(_BATCH, dtype=np.int64)
    last = blob.size - 1
    touched = 0.0
    for base in range(start, stop, _BATCH):
        batch_end = min(stop, base + _BATCH)
        # First pass: find the cells and touch their records. These loads do
        # not depend on each other, so their cache misses overlap instead of
        # stalling the branchy second pass one point at a time.
        for i in range(base, batch_end):
            px = x[i]
            py = y[i]
            # Written so that NaN fails the test: no unit's envelope covers it.
            if px >= grid[0] and px <= grid[2] and py >= grid[1] and py <= grid[3]:
                col = min(int((px - grid[4]) * grid[6]), nx - 1)
                row = min(int((py - grid[5]) * grid[7]), ny - 1)
                code = cell_code[row * nx + col]
                if code < 0:
                    o = -code - 1
                    touched += blob[o] + blob[min(o + 8, last)] + blob[min(o + 16, last)]
                    touched += blob[min(o + 24, last)]
                codes[i - base] = code
            else:
                codes[i - base] = 0
        for i in range(base, batch_end):
            px = x[i]
            py = y[i]
            code = codes[i - base]
            found = -1
            if code >= 0:
                found = code - 1  # inside one unit (or none), no edge touches the cell
            else:
                o = -code - 1  # the cell's record, see gis.gridindex._build.assemble
                rx = blob[o]
                ry = blob[o + 1]
                found = int(blob[o + 2])
                ncand = int(blob[o + 3])
                o += 4
                # Candidates come by increasing code: the first covering the point wins.
                for _ in range(ncand):
                    inside = blob[o + 1] != 0.0
                    n_cross = int(blob[o + 2])
                    end = o + 4 + 4 * (n_cross + int(blob[o + 3]))
                    boundary = False
                    j = o + 4
                    while j < end:
                        ax = blob[j]
                        ay = blob[j + 1]
                        bx = blob[j + 2]
                        by = blob[j + 3]
                        side = orient(ax, ay, bx, by, px, py)
                        if side == 0:
                            in_x = min(ax, bx) <= px <= max(ax, bx)
                            if in_x and min(ay, by) <= py <= max(ay, by):
                                boundary = True
                                break
                        elif (
                            side < 0
                            and j < o + 4 + 4 * n_cross
                            and (orient(px, py, rx, ry, ax, ay) >= 0)
                            != (orient(px, py, rx, ry, bx, by) >= 0)
                        ):
                            # The point is right of the edge's line, the reference
                            # left, and the edge's ends straddle the line through
                            # both (a vertex on it counting as left): the edge
                            # crosses the segment between them (see _build._crossings).
                            inside = not inside
                        j += 4
                    if boundary or inside:
                        found = int(blob[o])
                        break
                    o = end
            out[i] = found
    if touched == _NEVER:  # keeps the touching loads alive; never true
        out[start] = -2


@njit(nogil=True, cache=True)
def lookup_serial(
    x: NDArray[np.float64],
    y: NDArray[np.float64],
    out: NDArray[np.int64],
    grid: NDArray[np.float64],
    nx: int,
    ny: int,
    cell_code: NDArray[np.int32],
    blob: NDArray[np.float64],
) -> None:
    """Write the unit row covering each point (or -1) into ``out``, on one thread."""
    _lookup_range(0, x.size, x, y, out, grid, nx, ny, cell_code, blob)


@njit(nogil=True, cache=True, parallel=True)
def lookup_parallel(
    x: NDArray[np.float64],
    y: NDArray[np.float64],
    out: NDArray[np.int64],
    grid: NDArray[np.float64],
    nx: int,
    ny: int,
    cell_code: NDArray[np.int32],
    blob: NDArray[np.float64],
) -> None:
    """Write the unit row covering each point (or -1) into ``out``, on numba's threads."""
    n = x.size
    for c in prange((n + _CHUNK - 1) // _CHUNK):
        _lookup_range(
            c * _CHUNK, min(n, (c + 1) * _CHUNK), x, y, out, grid, nx, ny, cell_code, blob
        )
