"""The :class:`GridIndex`: exact point-in-polygon lookups on a uniform grid."""

from __future__ import annotations

import math
from typing import Any

import geopandas as gpd
import numba
import numpy as np
import shapely
from numpy.typing import ArrayLike, NDArray

from gis.gridindex._build import assemble, choose_refs, complete_cells, edge_cells, walk_rows
from gis.gridindex._lookup import lookup_parallel, lookup_serial

__all__ = ["GridIndex"]

CELLS_PER_EDGE = 2.0  # grid size: about this many cells per polygon edge (see benchmarks)
MAX_CELLS = 1 << 25  # 32 M cells, 128 MB of cell codes: beyond this a finer grid stops paying
PARALLEL_MIN_POINTS = 65_536  # below this, thread start-up costs more than it saves
_POLYGONAL = (3, 6)  # shapely type ids of Polygon and MultiPolygon
_PAD = 1e-7  # cell pad, as a fraction of the cell (see gis.gridindex._build)
_PAD_ABS = 1e-12  # ... and of the coordinates' magnitude, for far-from-origin data


class GridIndex:
    """Exact point-in-polygon index of a layer of units, for bulk geocoding.

    A point gets the unit that covers it, exactly as GEOS decides
    ``shapely.covers(unit, point)`` (interior or boundary). A point covered
    by several units, e.g. on an edge or vertex shared by neighbours, gets
    the one with the smallest code (string comparison; between rows with the
    same code, the first row). Points covered by no unit, and NaN
    coordinates, get none.

    Build it with :meth:`from_frame`. Coordinates are in the frame's CRS.
    Rows with the same code are indexed separately (e.g. a unit stored as
    several features); lookups return row positions of the frame or codes.
    The index is immutable and its lookups release the GIL.

    Notes
    -----
    Signs of orientation are computed exactly (:func:`gis.gridindex.orient2d`).
    GEOS computes them in double-double arithmetic, which is exact whenever
    coordinate differences are representable in binary64, as they are for
    neighbouring coordinates of a real layer; in contrived layers mixing
    magnitudes some 2**40 apart, GEOS can misjudge a point lying exactly on
    an edge, and the index keeps the exact answer. Polygons should be valid;
    invalid ones are read with the even-odd rule, polygon by polygon.

    Examples
    --------
    Two unit squares side by side::

        1 +-----+-----+
          |  B  |  A  |      A = "a" (right), B = "b" (left)
        0 +-----+-----+
          0     1     2

    >>> import geopandas as gpd, shapely
    >>> units = gpd.GeoDataFrame(
    ...     {"code": ["a", "b"]}, geometry=[shapely.box(1, 0, 2, 1), shapely.box(0, 0, 1, 1)]
    ... )
    >>> index = GridIndex.from_frame(units)
    >>> index.lookup([0.5, 1.5, 1.0, 3.0, float("nan")], [0.5, 0.5, 0.5, 0.5, 0.5]).tolist()
    ['b', 'a', 'a', None, None]
    >>> index.lookup_index([0.5, 1.0], [0.5, 1.0]).tolist()
    [1, 0]
    >>> len(index), index.codes.tolist()
    (2, ['a', 'b'])
    """

    def __init__(self, codes: NDArray[np.object_], arrays: dict[str, Any], crs: Any = None):
        self._codes = codes
        self._arrays = arrays
        self._kernel = (
            arrays["grid"],
            arrays["nx"],
            arrays["ny"],
            arrays["cell_code"],
            arrays["blob"],
        )
        self.crs = crs

    @classmethod
    def from_frame(cls, units: gpd.GeoDataFrame, code: str = "code") -> GridIndex:
        """Index the polygons of ``units`` under the codes of column ``code``.

        Parameters
        ----------
        units : GeoDataFrame
            Polygon or MultiPolygon units (holes allowed; empty geometries
            cover nothing).
        code : str, default "code"
            Column of unit codes; values are compared and returned as ``str``.

        Returns
        -------
        GridIndex
            The index, in the frame's CRS.

        Raises
        ------
        ValueError
            If the column is missing, a code is null, or a geometry is missing,
            not polygonal or has non-finite coordinates (naming its code).

        Examples
        --------
        >>> import geopandas as gpd, shapely
        >>> frame = gpd.GeoDataFrame({"code": ["x"]}, geometry=[shapely.Point(0, 0)])
        >>> GridIndex.from_frame(frame)
        Traceback (most recent call last):
        ...
        ValueError: unit 'x' (row 0) is a Point: only Polygon and MultiPolygon can be indexed
        """
        if code not in units.columns:
            raise ValueError(f"no column {code!r} in the units (columns: {list(units.columns)})")
        values = units[code].to_numpy(dtype=object)
        missing = np.flatnonzero(units[code].isna().to_numpy())
        if missing.size:
            raise ValueError(f"unit at row {int(missing[0])} has no {code!r}")
        codes = np.array([str(v) for v in values], dtype=object)
        geometries = np.asarray(units.geometry.values, dtype=object)
        return cls.from_geometries(geometries, codes, crs=units.crs)

    @classmethod
    def from_geometries(
        cls, geometries: ArrayLike, codes: ArrayLike, *, crs: Any = None
    ) -> GridIndex:
        """Index an array of polygons under the given codes (see :meth:`from_frame`).

        Examples
        --------
        >>> import shapely
        >>> index = GridIndex.from_geometries([shapely.box(0, 0, 1, 1)], ["k"])
        >>> index.lookup([0.25], [1.0]).tolist()
        ['k']
        """
        geoms = np.asarray(geometries, dtype=object)
        code_arr = np.array([str(c) for c in np.asarray(codes, dtype=object)], dtype=object)
        if geoms.ndim != 1 or geoms.shape != code_arr.shape:
            raise ValueError(
                f"geometries and codes must be 1-D of the same length, "
                f"got shapes {geoms.shape} and {code_arr.shape}"
            )
        _check_polygons(geoms, code_arr)
        return cls(code_arr, _build(geoms, code_arr), crs)

    @property
    def codes(self) -> NDArray[np.object_]:
        """The code of each indexed row, in row order (a copy)."""
        return self._codes.copy()

    def __len__(self) -> int:
        return len(self._codes)

    def __repr__(self) -> str:
        stats = self.stats
        return (
            f"<GridIndex: {len(self)} units, {stats['grid'][0]}x{stats['grid'][1]} cells, "
            f"{stats['candidate_cells']} with edges>"
        )

    @property
    def stats(self) -> dict[str, Any]:
        """Grid size, cells with candidate edges, mean edges per such cell, memory."""
        a = self._arrays
        return {
            "grid": (a["nx"], a["ny"]),
            "cells": int(a["cell_code"].size),
            "candidate_cells": a["candidate_cells"],
            "candidates": a["candidates"],
            "complete_cells": a["complete_cells"],
            "edges_per_candidate_cell": a["edge_entries"] / max(a["candidate_cells"], 1),
            "nbytes": int(sum(v.nbytes for v in a.values() if isinstance(v, np.ndarray))),
        }

    def lookup_index(
        self, x: ArrayLike, y: ArrayLike, *, parallel: bool | None = None
    ) -> NDArray[np.int64]:
        """Return the row of the unit covering each point, -1 where none does.

        Parameters
        ----------
        x, y : array_like
            Coordinates in the index's CRS, of the same shape.
        parallel : bool, optional
            Spread the points over numba's threads; by default only for
            large inputs when more than one thread is available.

        Returns
        -------
        ndarray of int64
            Row positions (shape of ``x``).

        Raises
        ------
        ValueError
            If ``x`` and ``y`` do not have the same shape.

        Examples
        --------
        >>> import shapely
        >>> index = GridIndex.from_geometries([shapely.box(0, 0, 1, 1)], ["k"])
        >>> index.lookup_index([0.5, 2.0], [0.5, 0.5]).tolist()
        [0, -1]
        """
        xa = np.asarray(x, dtype=np.float64)
        ya = np.asarray(y, dtype=np.float64)
        if xa.shape != ya.shape:
            raise ValueError(f"x and y must have the same shape, got {xa.shape} and {ya.shape}")
        fx = np.ascontiguousarray(xa).reshape(-1)
        fy = np.ascontiguousarray(ya).reshape(-1)
        out = np.empty(fx.size, dtype=np.int64)
        if parallel is None:
            parallel = fx.size >= PARALLEL_MIN_POINTS and numba.get_num_threads() > 1
        kernel = lookup_parallel if parallel else lookup_serial
        a = self._arrays
        kernel(fx, fy, out, a["grid"], a["nx"], a["ny"], a["cell_code"], a["blob"])
        return out.reshape(xa.shape)

    def lookup_point(self, x: float, y: float) -> int:
        """Return the row of the unit covering one point (-1 if none), with least overhead.

        Same answer as :meth:`lookup_index` on one point; for request-at-a-time
        callers (the locate API), where array plumbing would cost more than
        the lookup.

        Examples
        --------
        >>> import shapely
        >>> GridIndex.from_geometries([shapely.box(0, 0, 1, 1)], ["k"]).lookup_point(0.5, 0.5)
        0
        """
        out = np.empty(1, dtype=np.int64)
        return self.lookup_into(
            np.array([x], dtype=np.float64), np.array([y], dtype=np.float64), out
        )

    def lookup_into(
        self, x: NDArray[np.float64], y: NDArray[np.float64], out: NDArray[np.int64]
    ) -> int:
        """Look up the one point of ``x``, ``y`` into ``out``; return its row (-1 if none).

        For callers asking several indexes about the same point: the
        one-element arrays are made once and reused.

        Examples
        --------
        >>> import numpy as np, shapely
        >>> index = GridIndex.from_geometries([shapely.box(0, 0, 1, 1)], ["k"])
        >>> index.lookup_into(np.array([0.5]), np.array([2.0]), np.empty(1, dtype=np.int64))
        -1
        """
        lookup_serial(x, y, out, *self._kernel)
        return int(out[0])

    def lookup(
        self, x: ArrayLike, y: ArrayLike, *, parallel: bool | None = None
    ) -> NDArray[np.object_]:
        """Return the code of the unit covering each point, ``None`` where none does.

        Same arguments as :meth:`lookup_index`.

        Examples
        --------
        >>> import shapely
        >>> index = GridIndex.from_geometries([shapely.box(0, 0, 1, 1)], ["k"])
        >>> index.lookup([[0.5, 1.0], [1.5, 0.0]], [[0.5, 1.0], [0.5, 0.0]]).tolist()
        [['k', 'k'], [None, 'k']]
        """
        rows = self.lookup_index(x, y, parallel=parallel)
        out = np.full(rows.shape, None, dtype=object)
        hit = rows >= 0
        out[hit] = self._codes[rows[hit]]
        return out


def _check_polygons(geoms: NDArray[np.object_], codes: NDArray[np.object_]) -> None:
    types = shapely.get_type_id(geoms)
    bad = np.flatnonzero(~np.isin(types, _POLYGONAL))
    if bad.size:
        row = int(bad[0])
        kind = "missing" if geoms[row] is None else f"a {geoms[row].geom_type}"
        raise ValueError(
            f"unit {codes[row]!r} (row {row}) is {kind}: "
            "only Polygon and MultiPolygon can be indexed"
        )
    coords, which = shapely.get_coordinates(geoms, return_index=True)
    finite = np.isfinite(coords).all(axis=1)
    if not finite.all():
        row = int(which[np.argmin(finite)])
        raise ValueError(f"unit {codes[row]!r} (row {row}) has non-finite coordinates")


def _grid_shape(width: float, height: float, edges: int) -> tuple[int, int, float, float]:
    # Degenerate extents still need a positive cell size.
    w_eff = width if width > 0 else (height if height > 0 else 1.0)
    h_eff = height if height > 0 else w_eff
    target = min(max(CELLS_PER_EDGE * edges, 1.0), float(MAX_CELLS))
    side = math.sqrt(w_eff * h_eff / target)
    nx = max(1, min(math.ceil(w_eff / side), MAX_CELLS))
    ny = max(1, min(math.ceil(h_eff / side), MAX_CELLS // nx))
    return nx, ny, w_eff / nx, h_eff / ny


def _build(geoms: NDArray[np.object_], codes: NDArray[np.object_]) -> dict[str, Any]:
    parts, part_unit = shapely.get_parts(geoms, return_index=True)
    keep = ~shapely.is_empty(parts)
    parts, part_unit = parts[keep], part_unit[keep].astype(np.int64)
    rings, ring_part = shapely.get_rings(parts, return_index=True)
    coords, coord_ring = shapely.get_coordinates(rings, return_index=True)
    vx = np.ascontiguousarray(coords[:, 0])
    vy = np.ascontiguousarray(coords[:, 1])
    # An edge joins two consecutive coordinates of the same (closed) ring.
    edge_a = np.flatnonzero(coord_ring[:-1] == coord_ring[1:]).astype(np.int64)
    edge_part = ring_part[coord_ring[edge_a]].astype(np.int64)
    # Interior side of each edge, meaningful for valid parts: left along a
    # counter-clockwise shell or a clockwise hole (rings come shell first).
    first_ring = np.searchsorted(ring_part, ring_part)
    is_hole = np.arange(len(rings)) > first_ring
    edge_left = (shapely.is_ccw(rings) != is_hole)[coord_ring[edge_a]].astype(np.uint8)
    part_valid = shapely.is_valid(parts).astype(np.uint8)

    # Rank of each row by (code, row): candidates are tried in this order.
    unit_rank = np.empty(len(codes), dtype=np.int64)
    unit_rank[np.argsort(codes.astype(str), kind="stable")] = np.arange(len(codes))
    part_rank = unit_rank[part_unit]

    if edge_a.size == 0:
        x0 = y0 = math.inf
        x1 = y1 = -math.inf  # nothing passes the envelope test
        nx = ny = 1
        w = h = 1.0
    else:
        x0, x1 = float(vx.min()), float(vx.max())
        y0, y1 = float(vy.min()), float(vy.max())
        nx, ny, w, h = _grid_shape(x1 - x0, y1 - y0, edge_a.size)
    gx0 = x0 if math.isfinite(x0) else 0.0
    gy0 = y0 if math.isfinite(y0) else 0.0
    pad_x = _PAD * w + _PAD_ABS * max(abs(gx0), abs(gx0 + nx * w))
    pad_y = _PAD * h + _PAD_ABS * max(abs(gy0), abs(gy0 + ny * h))
    build_grid = np.array([gx0, gy0, w, h, pad_x, pad_y], dtype=np.float64)
    ncells = nx * ny

    pair_edge, pair_cell = edge_cells(vx, vy, edge_a, build_grid, nx, ny)
    # Group the (edge, cell) pairs by (part, cell); edges stay ascending in a group.
    key = edge_part[pair_edge] * ncells + pair_cell
    order = np.argsort(key, kind="stable")
    pair_edge = pair_edge[order]
    key = key[order]
    del order, pair_cell
    starts = np.flatnonzero(np.concatenate(([True], key[1:] != key[:-1]))) if key.size else key
    group_ptr = np.append(starts, key.size).astype(np.int64)
    group_part = key[starts] // ncells
    group_cell = key[starts] % ncells
    del key, starts
    group_rank = part_rank[group_part]
    by_cell = np.lexsort((group_part, group_rank, group_cell))

    _, ref_x, ref_y, group_t = choose_refs(
        by_cell, group_cell, group_ptr, pair_edge, edge_a, vx, vy, build_grid, nx
    )
    inside, owner_part = walk_rows(
        group_part,
        group_cell,
        group_ptr,
        group_t,
        pair_edge,
        part_rank,
        ref_x,
        ref_y,
        edge_a,
        vx,
        vy,
        build_grid,
        nx,
        ncells,
    )
    owner_unit = np.full(ncells, -1, dtype=np.int64)
    owner_rank = np.full(ncells, np.iinfo(np.int64).max, dtype=np.int64)
    has_owner = owner_part >= 0
    owner_unit[has_owner] = part_unit[owner_part[has_owner]]
    owner_rank[has_owner] = part_rank[owner_part[has_owner]]
    del owner_part, has_owner
    # A candidate ranked after the cell's owner can never win: the owner covers the cell.
    kept = by_cell[group_rank[by_cell] < owner_rank[group_cell[by_cell]]]
    del owner_rank
    cell_code = (owner_unit + 1).astype(np.int32)
    auto = complete_cells(
        kept,
        group_cell,
        group_part,
        group_ptr,
        pair_edge,
        edge_a,
        edge_left,
        part_valid,
        owner_unit,
        vx,
        vy,
    )
    blob = assemble(
        kept,
        auto,
        group_cell,
        group_part,
        group_ptr,
        group_t,
        inside,
        pair_edge,
        edge_a,
        part_unit,
        owner_unit,
        ref_x,
        ref_y,
        vx,
        vy,
        cell_code,
    )
    lookup_grid = np.array([x0, y0, x1, y1, gx0, gy0, 1.0 / w, 1.0 / h], dtype=np.float64)
    return {
        "grid": lookup_grid,
        "nx": nx,
        "ny": ny,
        "cell_code": cell_code,
        "blob": blob,
        "candidate_cells": int(np.count_nonzero(cell_code < 0)),
        "candidates": int(kept.size),
        "complete_cells": int(auto.sum()),
        "edge_entries": int(((group_ptr[kept + 1] - group_ptr[kept]) * (auto == 0)).sum()),
    }
