"""Numba kernels that build a :class:`~gis.gridindex.GridIndex` from flat ring arrays.

Vocabulary: vertices ``vx, vy`` are every ring's coordinates end to end (rings
closed); an *edge* is a vertex index ``a`` with ``a + 1`` in the same ring; a
*part* is one polygon of a unit (a MultiPolygon has several); a *group* is
one (part, cell) pair with the part's edges that touch the cell.

"Touch" is always tested against the cell grown by a small pad (``pad_x``,
``pad_y``), much larger than the rounding error of mapping a point to its
cell, so a query point is always inside the padded cell it is mapped to and
every edge that matters for it is in that cell's lists.
"""

from __future__ import annotations

import numpy as np
from numba import njit
from numpy.typing import NDArray

from gis.gridindex._predicates import orient

__all__ = ["assemble", "choose_refs", "complete_cells", "edge_cells", "walk_rows"]

_GOLDEN = 0.6180339887498949  # low-discrepancy steps for trying reference points
_PLASTIC = 0.7548776662466927
_MAX_TRIES = 256


@njit(nogil=True, cache=True)
def _span(lo: float, hi: float, origin: float, size: float, pad: float, n: int) -> tuple[int, int]:
    first = int(np.floor((lo - pad - origin) / size))
    last = int(np.floor((hi + pad - origin) / size))
    return max(first, 0), min(last, n - 1)


@njit(nogil=True, cache=True)
def edge_cells(
    vx: NDArray[np.float64],
    vy: NDArray[np.float64],
    edge_a: NDArray[np.int64],
    grid: NDArray[np.float64],
    nx: int,
    ny: int,
) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
    """Return ``(edge, cell)`` for every padded cell each edge's segment touches, edge-ordered.

    Conservative: a cell is kept unless the edge's line passes clearly (by
    more than the float error of the test) beside the padded cell.
    """
    gx0, gy0, w, h, pad_x, pad_y = grid[0], grid[1], grid[2], grid[3], grid[4], grid[5]
    counts = np.zeros(edge_a.size, dtype=np.int64)
    out_edge = np.empty(0, dtype=np.int64)
    out_cell = np.empty(0, dtype=np.int64)
    for stage in range(2):
        if stage == 1:
            total = counts.sum()
            out_edge = np.empty(total, dtype=np.int64)
            out_cell = np.empty(total, dtype=np.int64)
        k = 0
        for e in range(edge_a.size):
            a = edge_a[e]
            ax, ay, bx, by = vx[a], vy[a], vx[a + 1], vy[a + 1]
            c0, c1 = _span(min(ax, bx), max(ax, bx), gx0, w, pad_x, nx)
            r0, r1 = _span(min(ay, by), max(ay, by), gy0, h, pad_y, ny)
            dx = bx - ax
            dy = by - ay
            length = abs(dx) + abs(dy)
            tol = 1e-13 * length * (length + w + h + pad_x + pad_y)
            count = 0
            for r in range(r0, r1 + 1):
                y_lo = gy0 + r * h - pad_y - ay
                y_hi = gy0 + (r + 1) * h + pad_y - ay
                for c in range(c0, c1 + 1):
                    if c0 != c1 and r0 != r1:
                        x_lo = gx0 + c * w - pad_x - ax
                        x_hi = gx0 + (c + 1) * w + pad_x - ax
                        f1 = dx * y_lo - dy * x_lo
                        f2 = dx * y_lo - dy * x_hi
                        f3 = dx * y_hi - dy * x_lo
                        f4 = dx * y_hi - dy * x_hi
                        if f1 > tol and f2 > tol and f3 > tol and f4 > tol:
                            continue
                        if f1 < -tol and f2 < -tol and f3 < -tol and f4 < -tol:
                            continue
                    if stage == 1:
                        out_edge[k] = e
                        out_cell[k] = r * nx + c
                        k += 1
                    count += 1
            counts[e] = count
    return out_edge, out_cell


@njit(nogil=True, cache=True)
def _on_edge(ax: float, ay: float, bx: float, by: float, px: float, py: float) -> bool:
    if px < min(ax, bx) or px > max(ax, bx) or py < min(ay, by) or py > max(ay, by):
        return False
    return orient(ax, ay, bx, by, px, py) == 0


@njit(nogil=True, cache=True)
def choose_refs(
    order: NDArray[np.int64],
    group_cell: NDArray[np.int64],
    group_ptr: NDArray[np.int64],
    pair_edge: NDArray[np.int64],
    edge_a: NDArray[np.int64],
    vx: NDArray[np.float64],
    vy: NDArray[np.float64],
    grid: NDArray[np.float64],
    nx: int,
) -> tuple[NDArray[np.int64], NDArray[np.float64], NDArray[np.float64], NDArray[np.int64]]:
    """Pick, per touched cell, a reference point inside it on no edge touching it.

    ``order`` lists the groups cell by cell. Returns the touched cells, their
    reference points and, per group, its touched-cell number.
    """
    gx0, gy0, w, h = grid[0], grid[1], grid[2], grid[3]
    n = order.size
    cells = np.empty(n, dtype=np.int64)
    ref_x = np.empty(n, dtype=np.float64)
    ref_y = np.empty(n, dtype=np.float64)
    group_t = np.empty(n, dtype=np.int64)
    t = 0
    i = 0
    while i < n:
        cell = group_cell[order[i]]
        j = i
        while j < n and group_cell[order[j]] == cell:
            group_t[order[j]] = t
            j += 1
        col = cell % nx
        row = cell // nx
        found = False
        for k in range(_MAX_TRIES):
            # Try the centre first, then a low-discrepancy sequence over the cell.
            fx = (0.5 + k * _GOLDEN) % 1.0
            fy = (0.5 + k * _PLASTIC) % 1.0
            rx = gx0 + (col + fx) * w
            ry = gy0 + (row + fy) * h
            clear = True
            for q in range(i, j):
                g = order[q]
                for p in range(group_ptr[g], group_ptr[g + 1]):
                    a = edge_a[pair_edge[p]]
                    if _on_edge(vx[a], vy[a], vx[a + 1], vy[a + 1], rx, ry):
                        clear = False
                        break
                if not clear:
                    break
            if clear:
                found = True
                break
        if not found:
            raise ValueError("no reference point off every edge of a grid cell")
        cells[t] = cell
        ref_x[t] = rx
        ref_y[t] = ry
        t += 1
        i = j
    return cells[:t], ref_x[:t], ref_y[:t], group_t


@njit(nogil=True, cache=True)
def _crossings(
    ux: float,
    uy: float,
    wx: float,
    wy: float,
    edges: NDArray[np.int64],
    start: int,
    stop: int,
    skip: NDArray[np.int64],
    skip_start: int,
    skip_stop: int,
    edge_a: NDArray[np.int64],
    vx: NDArray[np.float64],
    vy: NDArray[np.float64],
) -> int:
    """Parity of the edges ``edges[start:stop]`` (minus ``skip[...]``) crossing segment u-w.

    Neither u nor w is on an edge. An edge crosses iff u and w are strictly
    on opposite sides of its line and its ends are on opposite sides of the
    line u-w, a vertex exactly on that line counting as on its left: the
    same as shifting the segment infinitesimally to the right, which changes
    neither end's status and makes every crossing proper.
    """
    parity = 0
    s = skip_start
    for p in range(start, stop):
        e = edges[p]
        while s < skip_stop and skip[s] < e:
            s += 1
        if s < skip_stop and skip[s] == e:
            continue  # already counted with the other cell
        a = edge_a[e]
        ax, ay, bx, by = vx[a], vy[a], vx[a + 1], vy[a + 1]
        if orient(ax, ay, bx, by, ux, uy) * orient(ax, ay, bx, by, wx, wy) < 0 and (
            orient(ux, uy, wx, wy, ax, ay) >= 0
        ) != (orient(ux, uy, wx, wy, bx, by) >= 0):
            parity ^= 1
    return parity


@njit(nogil=True, cache=True)
def walk_rows(
    group_part: NDArray[np.int64],
    group_cell: NDArray[np.int64],
    group_ptr: NDArray[np.int64],
    group_t: NDArray[np.int64],
    pair_edge: NDArray[np.int64],
    part_rank: NDArray[np.int64],
    ref_x: NDArray[np.float64],
    ref_y: NDArray[np.float64],
    edge_a: NDArray[np.int64],
    vx: NDArray[np.float64],
    vy: NDArray[np.float64],
    grid: NDArray[np.float64],
    nx: int,
    ncells: int,
) -> tuple[NDArray[np.uint8], NDArray[np.int64]]:
    """Classify reference points and untouched cells, part by part, row by row.

    Groups are sorted by (part, cell), hence by row then column. In each row
    a part touches, walk from the untouched cell left of its first touched
    cell (outside: a leftward ray from it meets none of the part's edges)
    through every cell up to its last touched one, flipping the status at
    each exact crossing of the part's edges between consecutive points
    (reference points of touched cells, centres of untouched ones). Returns
    whether each group's reference point is inside its part, and per cell
    the smallest-rank part containing the whole (padded) cell, or -1.
    """
    gx0, gy0, w, h = grid[0], grid[1], grid[2], grid[3]
    ngroups = group_part.size
    inside = np.zeros(ngroups, dtype=np.uint8)
    owner = np.full(ncells, -1, dtype=np.int64)
    empty = np.empty(0, dtype=np.int64)
    g = 0
    while g < ngroups:
        part = group_part[g]
        rank = part_rank[part]
        row_end = g
        while row_end < ngroups and group_part[row_end] == part:
            row_start = row_end
            row = group_cell[row_start] // nx
            while (
                row_end < ngroups
                and group_part[row_end] == part
                and group_cell[row_end] // nx == row
            ):
                row_end += 1
            cy = gy0 + (row + 0.5) * h
            prev_col = group_cell[row_start] % nx - 1
            ux = gx0 + (prev_col + 0.5) * w
            uy = cy
            prev = -1
            status = 0
            for q in range(row_start, row_end):
                col = group_cell[q] % nx
                t = group_t[q]
                if col > prev_col + 1:
                    # Leave the previous touched cell for the untouched one after it ...
                    nxt = gx0 + (prev_col + 1.5) * w
                    status ^= _crossings(
                        ux,
                        uy,
                        nxt,
                        cy,
                        pair_edge,
                        group_ptr[prev],
                        group_ptr[prev + 1],
                        empty,
                        0,
                        0,
                        edge_a,
                        vx,
                        vy,
                    )
                    if status:
                        for c in range(prev_col + 1, col):
                            cell = row * nx + c
                            if owner[cell] < 0 or part_rank[owner[cell]] > rank:
                                owner[cell] = part
                    # ... cross the untouched run (no edges) and enter this cell.
                    ux = gx0 + (col - 0.5) * w
                    uy = cy
                if col > prev_col + 1 or prev < 0:
                    status ^= _crossings(
                        ux,
                        uy,
                        ref_x[t],
                        ref_y[t],
                        pair_edge,
                        group_ptr[q],
                        group_ptr[q + 1],
                        empty,
                        0,
                        0,
                        edge_a,
                        vx,
                        vy,
                    )
                else:
                    # Adjacent touched cells: the segment stays in their union,
                    # so the edges of both (each counted once) are all it can cross.
                    status ^= _crossings(
                        ux,
                        uy,
                        ref_x[t],
                        ref_y[t],
                        pair_edge,
                        group_ptr[prev],
                        group_ptr[prev + 1],
                        empty,
                        0,
                        0,
                        edge_a,
                        vx,
                        vy,
                    )
                    status ^= _crossings(
                        ux,
                        uy,
                        ref_x[t],
                        ref_y[t],
                        pair_edge,
                        group_ptr[q],
                        group_ptr[q + 1],
                        pair_edge,
                        group_ptr[prev],
                        group_ptr[prev + 1],
                        edge_a,
                        vx,
                        vy,
                    )
                inside[q] = status
                ux = ref_x[t]
                uy = ref_y[t]
                prev = q
                prev_col = col
        g = row_end
    return inside, owner


@njit(nogil=True, cache=True)
def complete_cells(
    kept: NDArray[np.int64],
    group_cell: NDArray[np.int64],
    group_part: NDArray[np.int64],
    group_ptr: NDArray[np.int64],
    pair_edge: NDArray[np.int64],
    edge_a: NDArray[np.int64],
    edge_left: NDArray[np.uint8],
    part_valid: NDArray[np.uint8],
    owner_unit: NDArray[np.int64],
    vx: NDArray[np.float64],
    vy: NDArray[np.float64],
) -> NDArray[np.uint8]:
    """Flag the last candidate of each cell that the candidates cover entirely.

    A cell without owner is covered by the closures of the units touching
    it if every edge touching it, directed with its polygon's interior on
    the left, has an exact reverse from another part: the interiors are
    then on both sides of every edge and of every vertex, so the uncovered
    part of the (connected) padded cell has no frontier in it, and being
    smaller than the cell, is empty. A point covered by no earlier candidate
    is then covered by the last one, which needs no test. Only valid parts
    qualify: there ring orientation gives the interior side. Cells with
    many edges are not checked (quadratic).

    Returns, per position in ``kept``, 1 for such a last candidate.
    """
    auto = np.zeros(kept.size, dtype=np.uint8)
    limit = 64
    sx = np.empty(limit, dtype=np.float64)
    sy = np.empty(limit, dtype=np.float64)
    tx = np.empty(limit, dtype=np.float64)
    ty = np.empty(limit, dtype=np.float64)
    owner = np.empty(limit, dtype=np.int64)
    i = 0
    while i < kept.size:
        cell = group_cell[kept[i]]
        j = i
        while j < kept.size and group_cell[kept[j]] == cell:
            j += 1
        ok = owner_unit[cell] < 0
        m = 0
        for q in range(i, j):
            g = kept[q]
            part = group_part[g]
            if not ok or part_valid[part] == 0:
                ok = False
                break
            for p in range(group_ptr[g], group_ptr[g + 1]):
                e = pair_edge[p]
                a = edge_a[e]
                if vx[a] == vx[a + 1] and vy[a] == vy[a + 1]:
                    continue  # a repeated vertex bounds nothing
                if m == limit:
                    ok = False
                    break
                b = a + 1
                if edge_left[e] == 0:
                    a, b = b, a
                sx[m], sy[m], tx[m], ty[m] = vx[a], vy[a], vx[b], vy[b]
                owner[m] = part
                m += 1
        for u in range(m if ok else 0):
            matched = False
            for v in range(m):
                if (
                    owner[v] != owner[u]
                    and sx[v] == tx[u]
                    and sy[v] == ty[u]
                    and tx[v] == sx[u]
                    and ty[v] == sy[u]
                ):
                    matched = True
                    break
            if not matched:
                ok = False
                break
        if ok and m > 0:
            auto[j - 1] = 1
        i = j
    return auto


@njit(nogil=True, cache=True)
def assemble(
    kept: NDArray[np.int64],
    auto: NDArray[np.uint8],
    group_cell: NDArray[np.int64],
    group_part: NDArray[np.int64],
    group_ptr: NDArray[np.int64],
    group_t: NDArray[np.int64],
    inside: NDArray[np.uint8],
    pair_edge: NDArray[np.int64],
    edge_a: NDArray[np.int64],
    part_unit: NDArray[np.int64],
    owner_unit: NDArray[np.int64],
    ref_x: NDArray[np.float64],
    ref_y: NDArray[np.float64],
    vx: NDArray[np.float64],
    vy: NDArray[np.float64],
    cell_code: NDArray[np.int32],
) -> NDArray[np.float64]:
    """Lay out the kept groups (sorted by cell, rank, part) as one flat record per cell.

    A lookup then reads one contiguous run of memory instead of chasing
    pointers through several arrays. Record of a cell, all float64 (integers
    below 2**53 are exact)::

        rx, ry, owner row (-1: none), number of candidates
        per candidate: unit row, reference inside (0/1), n_cross, n_flat
            n_cross edges ax, ay, bx, by, oriented with the reference strictly left
            n_flat edges ax, ay, bx, by whose line passes through the reference

    A candidate flagged in ``auto`` (see :func:`complete_cells`) gets no
    edges and "inside": it wins whenever the earlier ones do not.

    Writes ``-(offset + 1)`` of each record into ``cell_code``; returns the records.
    """
    nkept = kept.size
    size = 0
    for i in range(nkept):
        g = kept[i]
        if i == 0 or group_cell[kept[i - 1]] != group_cell[g]:
            size += 4
        size += 4
        if auto[i] == 0:
            size += 4 * (group_ptr[g + 1] - group_ptr[g])
    if size >= 2**31 - 1:
        raise ValueError("grid index too large: more than 2**31 values of cell records")
    blob = np.empty(size, dtype=np.float64)
    o = 0
    head = 0
    for i in range(nkept):
        g = kept[i]
        cell = group_cell[g]
        src = group_t[g]
        rx = ref_x[src]
        ry = ref_y[src]
        if i == 0 or group_cell[kept[i - 1]] != cell:
            head = o
            cell_code[cell] = -(o + 1)
            blob[o] = rx
            blob[o + 1] = ry
            blob[o + 2] = owner_unit[cell]
            blob[o + 3] = 0.0
            o += 4
        blob[head + 3] += 1.0
        blob[o] = part_unit[group_part[g]]
        blob[o + 1] = inside[g]
        start = group_ptr[g]
        stop = group_ptr[g + 1]
        if auto[i]:
            blob[o + 1] = 1.0
            stop = start
        n_cross = 0
        q = o + 4
        for p in range(start, stop):
            a = edge_a[pair_edge[p]]
            side = orient(vx[a], vy[a], vx[a + 1], vy[a + 1], rx, ry)
            if side > 0:
                blob[q], blob[q + 1], blob[q + 2], blob[q + 3] = vx[a], vy[a], vx[a + 1], vy[a + 1]
            elif side < 0:
                blob[q], blob[q + 1], blob[q + 2], blob[q + 3] = vx[a + 1], vy[a + 1], vx[a], vy[a]
            else:
                continue
            n_cross += 1
            q += 4
        for p in range(start, stop):
            a = edge_a[pair_edge[p]]
            if orient(vx[a], vy[a], vx[a + 1], vy[a + 1], rx, ry) == 0:
                blob[q], blob[q + 1], blob[q + 2], blob[q + 3] = vx[a], vy[a], vx[a + 1], vy[a + 1]
                q += 4
        blob[o + 2] = n_cross
        blob[o + 3] = (stop - start) - n_cross
        o = q
    return blob
