"""Measuring in metres, and finding the nearest unit of footprints outside every unit.

Topology (covers, intersections) is computed in the units' CRS, where the
boundaries are defined; only the resulting pieces are projected, to measure
them. A geographic CRS is measured in :func:`gis.crs.local_projected_crs`
(the CGCS2000 Gauss-Kruger zone in China); a projected CRS in itself; data
without a CRS in its own coordinate units.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import Any

import numpy as np
import shapely
from numpy.typing import NDArray
from pyproj import CRS, Transformer

from gis.crs import local_projected_crs, transformer

__all__ = ["Metric", "metric_for", "nearest_units"]

Objects = NDArray[np.object_]
Floats = NDArray[np.float64]
Indices = NDArray[np.int64]


@dataclass(frozen=True)
class Metric:
    """Projects geometries of a source CRS to a metre CRS (identity when already metric).

    Attributes
    ----------
    source, target : pyproj.CRS or None
        The data's CRS and the one distances and areas are measured in;
        ``None`` when no projection is needed.
    """

    source: CRS | None = None
    target: CRS | None = None

    @cached_property
    def _forward(self) -> Transformer:
        # Building a PROJ pipeline costs tens of milliseconds: once per metric.
        assert self.source is not None and self.target is not None
        return transformer(self.source, self.target)

    def project_xy(self, x: Floats, y: Floats) -> tuple[Floats, Floats]:
        """Return coordinates in the metre CRS."""
        if self.target is None or len(x) == 0:
            return x, y
        px, py = self._forward.transform(x, y)
        return np.asarray(px, dtype=float), np.asarray(py, dtype=float)

    def project(self, geoms: Objects) -> Objects:
        """Return ``geoms`` in the metre CRS (all coordinates in one PROJ call)."""
        if self.target is None or len(geoms) == 0:
            return geoms

        def forward(xy: Floats) -> Floats:
            return np.column_stack(self.project_xy(xy[:, 0], xy[:, 1]))

        return np.asarray(shapely.transform(geoms, forward), dtype=object)

    def area(self, geoms: Objects) -> Floats:
        """Areas in m² (0 for missing geometries)."""
        return np.nan_to_num(np.asarray(shapely.area(self.project(geoms)), dtype=float))


def metric_for(crs: Any, bounds: Floats) -> Metric:
    """Choose how to measure data in ``crs`` lying within ``bounds``.

    Examples
    --------
    >>> import numpy as np
    >>> metric_for("EPSG:4490", np.array([118.5, 24.8, 118.7, 25.0])).target.to_epsg()
    4549
    >>> metric_for("EPSG:4549", np.array([0.0, 0, 1, 1])).target is None
    True
    """
    if crs is None:
        return Metric()
    source = CRS.from_user_input(crs)
    if not source.is_geographic:
        return Metric()
    known = bool(np.isfinite(bounds).all())
    lon = float((bounds[0] + bounds[2]) / 2.0) if known else 0.0
    lat = float((bounds[1] + bounds[3]) / 2.0) if known else 0.0
    return Metric(source, local_projected_crs(lon, lat))


def nearest_units(
    geoms: Objects, edges: Floats, edge_unit: Indices, rank: Indices, metric: Metric
) -> tuple[Indices, Floats]:
    """Return the nearest unit row of each geometry and the distance in metres.

    A footprint that shares no area with a unit is as far from it as from
    its boundary, so the search runs on the units' edges, projected to
    metres (each edge straight between its projected ends: exact in a
    projected CRS, within millimetres of the curve otherwise). Equally near
    units (e.g. both sides of a shared edge) go to the lowest ``rank``.

    Parameters
    ----------
    geoms : ndarray of Geometry
        Footprints sharing no area with any unit, in the units' CRS.
    edges : ndarray of shape (m, 4)
        Unit edges in the units' CRS (see :func:`gis.assign._near.unit_edges`).
    edge_unit : ndarray of int
        Unit row of each edge.
    rank : ndarray of int
        Rank of each unit row in code order.
    metric : Metric
        How to measure.

    Returns
    -------
    rows : ndarray of int
        Nearest unit row (-1 without units).
    distance_m : ndarray of float
        Distance to it in metres (NaN without units).

    Examples
    --------
    >>> import numpy as np, shapely
    >>> from gis.assign._near import unit_edges
    >>> edges, unit = unit_edges(np.array([shapely.box(0, 0, 1, 1), shapely.box(1, 0, 2, 1)]))
    >>> nearest_units(np.array([shapely.Point(1, 3)]), edges, unit, np.array([1, 0]), Metric())
    (array([1]), array([2.]))
    """
    rows = np.full(len(geoms), -1, dtype=np.int64)
    dist = np.full(len(geoms), np.nan)
    if len(geoms) == 0 or len(edges) == 0:
        return rows, dist
    x0, y0 = metric.project_xy(edges[:, 0], edges[:, 1])
    x1, y1 = metric.project_xy(edges[:, 2], edges[:, 3])
    segments = shapely.linestrings(
        np.stack([np.column_stack([x0, y0]), np.column_stack([x1, y1])], 1)
    )
    tree = shapely.STRtree(segments)
    (gi, ei), d = tree.query_nearest(metric.project(geoms), return_distance=True, all_matches=True)
    order = np.lexsort((rank[edge_unit[ei]], gi))  # ties on distance only: all_matches
    first = order[np.r_[True, gi[order][1:] != gi[order][:-1]]]
    rows[gi[first]] = edge_unit[ei[first]]
    dist[gi[first]] = d[first]
    return rows, dist
