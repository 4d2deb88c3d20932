"""Layers as arrays: codes, CGCS2000 geometries, and the metric CRS areas are measured in."""

from __future__ import annotations

from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from numpy.typing import NDArray
from pyproj import CRS

from gis.crs import STORAGE_CRS, local_projected_crs, transformer
from gis.unitframe import merge_multipart_units

Objects = NDArray[np.object_]
Floats = NDArray[np.float64]
Indices = NDArray[np.intp]


@dataclass(frozen=True)
class Layer:
    """One layer's units, row ``i`` of every array being the unit ``codes[i]``.

    Attributes
    ----------
    frame : GeoDataFrame
        The input rows (features sharing a code joined), in the input CRS.
    codes : ndarray of str
        Unit codes.
    geoms : ndarray of Geometry
        Geometries in EPSG:4490, where boundaries are defined: topology is
        computed there so that vertices shared by both layers stay shared.
    parent_codes : ndarray of (str or None), or None
        The ``parent_code`` column, when the frame has one.
    """

    frame: gpd.GeoDataFrame
    codes: Objects
    geoms: Objects
    parent_codes: Objects | None

    def __len__(self) -> int:
        return len(self.codes)

    def row_of(self) -> dict[str, int]:
        """Map each code to its row."""
        return {str(code): i for i, code in enumerate(self.codes)}


def as_layer(frame: gpd.GeoDataFrame, *, role: str) -> Layer:
    """Check a unit frame and turn it into a :class:`Layer`.

    Raises
    ------
    ValueError
        Without a CRS or a ``code`` column, with missing or duplicate codes
        (other than the parts of one multi-part unit), or with geometries that
        are missing, empty, not polygonal or invalid. Alignment is only
        meaningful between valid layers: run :func:`gis.validate.validate_units`.
    """
    if frame.crs is None:
        raise ValueError(f"{role} has no CRS: declare it (e.g. EPSG:4490)")
    if "code" not in frame:
        raise ValueError(f"{role} has no 'code' column")
    merged, _joins = merge_multipart_units(frame)
    # The codes as an array: an edit's preview converts small frames, where
    # each pandas pass costs more than the data.
    values = merged["code"].to_numpy(dtype=object)
    if pd.isna(values).any():
        raise ValueError(f"{role} has units without a code")
    text = np.array([str(v) for v in values], dtype=object)
    if len(set(text)) != len(text):
        seen = pd.Series(text)
        repeated = sorted(set(seen[seen.duplicated()]))[:5]
        raise ValueError(f"{role} has duplicate codes {repeated}: validate the layer first")
    geoms = np.asarray(merged.geometry.to_crs(STORAGE_CRS).values, dtype=object)
    bad = (
        shapely.is_missing(geoms)
        | shapely.is_empty(geoms)
        | ~np.isin(shapely.get_type_id(geoms), (3, 6))
    )
    bad[~bad] = ~shapely.is_valid(geoms[~bad])
    if bad.any():
        shown = text[bad].tolist()[:5]
        raise ValueError(
            f"{role} has missing, empty, non-polygonal or invalid geometries {shown}: "
            "validate the layer first"
        )
    parents = None
    if "parent_code" in merged:
        parents = np.array(
            [None if _missing(p) else str(p) for p in merged["parent_code"]], dtype=object
        )
    return Layer(merged, text, geoms, parents)


def _missing(value: object) -> bool:
    return value is None or (isinstance(value, float) and np.isnan(value)) or value == ""


@dataclass(frozen=True)
class Metric:
    """Measures EPSG:4490 geometries in metres, in a local projected CRS."""

    crs: CRS

    def project(self, geoms: Objects) -> Objects:
        """Project EPSG:4490 geometries (all coordinates in one PROJ call)."""
        to_metres = transformer(STORAGE_CRS, self.crs)
        return np.asarray(
            shapely.transform(
                geoms, lambda xy: np.column_stack(to_metres.transform(xy[:, 0], xy[:, 1]))
            ),
            dtype=object,
        )

    def area(self, geoms: Objects) -> Floats:
        """Areas in m² (0 for missing geometries)."""
        if len(geoms) == 0:
            return np.zeros(0)
        return np.nan_to_num(shapely.area(self.project(geoms)), nan=0.0)


class Reuse:
    """Results of GEOS and PROJ work on the same geometry objects, shared between checks.

    An edit's preview checks the units around the change twice, before and
    after it: most units (and the whole other layer) are the same objects
    on both sides, and their projections, pairwise intersections and
    uncovered ground come out the same. Kept by the objects' identity
    (the geometries are held, so an identity is never reused meanwhile)
    and, for measures, per metric CRS (another CRS is measured afresh).
    Deterministic work only: the answers are those computed without it.
    Not thread-safe: one per preview.
    """

    def __init__(self) -> None:
        self._crs: str | None = None
        # Results keyed by the ids of their inputs, stored with the inputs
        # themselves (held alive, so an id is not reused meanwhile).
        self._projected: dict[Hashable, tuple[object, ...]] = {}
        self._pairs: dict[Hashable, tuple[object, ...]] = {}
        self._ground: dict[tuple[int, ...], tuple[object, shapely.Geometry]] = {}

    def project(self, metric: Metric, geoms: Objects) -> Objects:
        """Return ``metric.project(geoms)``, projecting only the geometries not seen."""
        srs = metric.crs.srs
        if self._crs is None:
            self._crs = srs
        if srs != self._crs or not len(geoms):
            return metric.project(geoms)
        return _memoised(
            self._projected,
            [id(g) for g in geoms],
            lambda i: (geoms[i],),
            lambda rows: metric.project(geoms[rows]),
        )

    def area(self, metric: Metric, geoms: Objects) -> Floats:
        """Return ``metric.area(geoms)`` from the projections kept."""
        if len(geoms) == 0:
            return np.zeros(0)
        return np.nan_to_num(shapely.area(self.project(metric, geoms)), nan=0.0)

    def intersection(self, a: Objects, b: Objects) -> Objects:
        """Return ``shapely.intersection(a, b)``, pair by pair, computing only new pairs."""
        return _memoised(
            self._pairs,
            [(id(x), id(y)) for x, y in zip(a, b, strict=True)],
            lambda i: (a[i], b[i]),
            lambda rows: shapely.intersection(a[rows], b[rows]),
        )

    def ground(
        self, unit: shapely.Geometry, held: Objects, make: Callable[[], shapely.Geometry]
    ) -> shapely.Geometry:
        """Return ``make()`` (``unit``'s ground outside the pieces ``held``), once per inputs."""
        key = (id(unit), *(id(p) for p in held))
        found = self._ground.get(key)
        if found is None:
            found = self._ground[key] = ((unit, tuple(held)), make())
        return found[1]


def metric_for(*layers: Objects) -> Metric:
    """Measure in the CGCS2000 Gauss-Kruger zone (or a local equal-area CRS) of the data."""
    bounds = np.array([shapely.total_bounds(g) for g in layers if len(g)])
    if not len(bounds) or not np.all(np.isfinite(bounds)):
        return Metric(local_projected_crs(0.0, 0.0))
    xmin, ymin = bounds[:, 0].min(), bounds[:, 1].min()
    xmax, ymax = bounds[:, 2].max(), bounds[:, 3].max()
    return Metric(local_projected_crs((xmin + xmax) / 2, (ymin + ymax) / 2))


def polygonal(geometry: shapely.Geometry) -> shapely.Geometry:
    """Keep the polygonal part of an overlay result (drop touching lines and points)."""
    parts = shapely.get_parts(geometry)
    polygons = [p for p in parts if shapely.get_type_id(p) == 3 and not p.is_empty]
    if len(polygons) == 1:
        return polygons[0]
    return shapely.multipolygons(polygons) if polygons else shapely.Polygon()


def lonlat(geometry: shapely.Geometry | None) -> tuple[float | None, float | None]:
    """Return a CGCS2000 lon/lat on the geometry (on its surface), rounded to ~1 cm."""
    if geometry is None or geometry.is_empty:
        return None, None
    point = shapely.point_on_surface(geometry)
    return round(point.x, 7), round(point.y, 7)


def owner_rows(geoms: Objects, points: Objects) -> Indices:
    """For each point, the first row (in row order) of ``geoms`` holding it, or -1.

    A point on a shared edge belongs to both neighbours; taking the first row
    makes the answer deterministic.
    """
    owner = np.full(len(points), -1, dtype=np.intp)
    if not len(points) or not len(geoms):
        return owner
    point_i, geom_i = shapely.STRtree(geoms).query(points, predicate="intersects")
    order = np.lexsort((geom_i, point_i))
    point_i, geom_i = point_i[order], geom_i[order]
    first = np.r_[True, point_i[1:] != point_i[:-1]] if len(point_i) else np.zeros(0, bool)
    owner[point_i[first]] = geom_i[first]
    return owner


def parent_labels(child: Layer, parents: Layer | None) -> Objects | None:
    """Return each child's parent code (``None`` where unknown), or ``None`` if unknowable.

    A child's parent is the one its ``parent_code`` names; with a parent layer,
    a child whose code names no parent is matched by place (the parent holding
    a point on its surface). Without a parent layer, ``parent_code`` is taken
    as it is; without that column either, nothing is known.
    """
    if parents is None:
        return None if child.parent_codes is None else child.parent_codes.copy()
    index = parents.row_of()
    rows = np.full(len(child), -1, dtype=np.intp)
    if child.parent_codes is not None:
        rows[:] = [index.get(p, -1) if p else -1 for p in child.parent_codes]
    unknown = rows < 0
    if unknown.any():
        # A point on the surface is inside the unit: its parent is the one holding it.
        points = shapely.point_on_surface(child.geoms[unknown])
        rows[unknown] = owner_rows(parents.geoms, points)
    labels = np.empty(len(child), dtype=object)
    labels[:] = [str(parents.codes[r]) if r >= 0 else None for r in rows]
    return labels


def _memoised(
    cache: dict[Hashable, tuple[object, ...]],
    keys: Sequence[Hashable],
    inputs: Callable[[int], tuple[object, ...]],
    compute: Callable[[NDArray[np.intp]], Objects],
) -> Objects:
    """Return one result per key: the cached ones, and ``compute(rows)`` for keys not seen.

    ``inputs(i)`` is stored before the result of row ``i`` (the last item of
    the cached tuple), keeping alive the objects whose ids make the key.
    """
    out = np.empty(len(keys), dtype=object)
    todo = []
    for i, key in enumerate(keys):
        found = cache.get(key)
        if found is None:
            todo.append(i)
        else:
            out[i] = found[-1]
    if todo:
        made = compute(np.asarray(todo, dtype=np.intp))
        for i, result in zip(todo, made, strict=True):
            out[i] = result
            cache[keys[i]] = (*inputs(i), result)
    return out
