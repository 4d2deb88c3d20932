"""Which units of layer B overlap each unit of layer A, and by how much."""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from typing import TypeAlias

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from numpy.typing import NDArray

from gis.alignment._units import (
    Floats,
    Indices,
    Layer,
    Metric,
    Objects,
    Reuse,
    as_layer,
    metric_for,
    owner_rows,
)
from gis.crs import STORAGE_CRS

Weights: TypeAlias = gpd.GeoDataFrame | str | None


@dataclass(frozen=True)
class Overlaps:
    """Every (A unit, B unit) pair sharing ground, with the ground and its measures.

    Attributes
    ----------
    a, b : Layer
        The two layers.
    metric : Metric
        The CRS areas are measured in.
    a_area, b_area : ndarray
        Unit areas in m².
    ai, bi : ndarray of int
        Rows of the pairs in ``a`` and ``b``, sorted by ``ai`` then by area,
        largest first. Only pairs with a positive area are kept.
    area : ndarray
        The area shared by each pair, in m².
    whole : ndarray of bool
        Whether the A unit lies wholly in the B unit (no intersection was
        computed: ``pieces`` holds the A unit itself).
    pieces : ndarray of Geometry
        The shared ground of each pair, EPSG:4490 (may include touching lines).
    households : ndarray or None
        Households of each pair's shared ground, when weights were given.
    width : ndarray
        Width of each pair's shared ground in metres: the mean width
        (2 x area / perimeter) of its widest polygon; ``inf`` for whole A units
        (a whole unit is never a sliver).
    a_households, b_households : ndarray or None
        Households of each unit, inside the other layer or not.
    reuse : Reuse or None
        The work shared with other checks of the same geometries, if any.
    """

    a: Layer
    b: Layer
    metric: Metric
    a_area: Floats
    b_area: Floats
    ai: Indices
    bi: Indices
    area: Floats
    whole: NDArray[np.bool_]
    pieces: Objects
    households: Floats | None = None
    a_households: Floats | None = None
    b_households: Floats | None = None
    width: Floats | None = None
    reuse: Reuse | None = None

    @property
    def share(self) -> Floats:
        """Share of the A unit's area in each pair."""
        return _ratio(self.area, self.a_area[self.ai])

    @property
    def household_share(self) -> Floats | None:
        """Share of the A unit's households in each pair (NaN for A units without any)."""
        if self.households is None or self.a_households is None:
            return None
        return _ratio(self.households, self.a_households[self.ai], empty=np.nan)

    def a_uncovered_m2(self) -> Floats:
        """Area of each A unit outside every B unit, in m² (float noise included)."""
        inside = np.bincount(self.ai, weights=self.area, minlength=len(self.a))
        return np.clip(self.a_area - inside, 0.0, None)

    def b_uncovered_m2(self) -> Floats:
        """Area of each B unit outside every A unit, in m² (float noise included)."""
        inside = np.bincount(self.bi, weights=self.area, minlength=len(self.b))
        return np.clip(self.b_area - inside, 0.0, None)

    def frame(self) -> pd.DataFrame:
        """Return the pairs as the :func:`shares` frame."""
        data: dict[str, object] = {
            "a_code": self.a.codes[self.ai].astype(str),
            "b_code": self.b.codes[self.bi].astype(str),
            "area_m2": self.area,
            "area_share": self.share,
            "whole": self.whole,
        }
        if self.households is not None:
            data["households"] = self.households
            data["household_share"] = self.household_share
        return pd.DataFrame(data)


def shares(
    a_units: gpd.GeoDataFrame,
    b_units: gpd.GeoDataFrame,
    *,
    weights: Weights = None,
    weight_column: str | None = None,
) -> pd.DataFrame:
    """For every unit of layer A, the units of layer B overlapping it, and by how much.

    Parameters
    ----------
    a_units, b_units : GeoDataFrame
        The two layers (e.g. governance grids and police beats), each with a
        unique ``code`` per unit (features sharing a code are joined when they
        are disjoint parts with equal properties) and a CRS; valid polygons.
    weights : GeoDataFrame or str, optional
        What to count households with: a frame of points (e.g. households or
        buildings; polygons such as micro-grids are reduced to a point on
        their surface) whose ``weight_column`` holds the count, or the name of
        a column of ``a_units`` whose per-unit count is spread by area.
    weight_column : str, optional
        Count column of a ``weights`` frame; default ``households``, else
        ``count``, else each feature counts 1.

    Returns
    -------
    DataFrame
        One row per pair sharing ground (positive area), sorted by A code then
        area, largest first: ``a_code``, ``b_code``, ``area_m2`` (in the local
        CGCS2000 Gauss-Kruger zone), ``area_share`` (of the A unit),
        ``whole`` (the A unit lies wholly in the B unit) and, with weights,
        ``households`` and ``household_share`` (of the A unit's households;
        NaN when it has none). An A unit's shares add up to less than 1 when
        part of it is outside every B unit. Slivers are kept: tolerances are
        applied by :func:`check_alignment`.

    Notes
    -----
    Candidates come from an STR-tree; an A unit lying wholly in one B unit
    (the common case between aligned layers) is found by a ``covered_by``
    query and never intersected, so the cost is about that of the predicate.
    Topology is computed in EPSG:4490, where both layers share vertices; only
    areas are measured in metres. Points exactly on a boundary count in the
    first unit holding them (row order).

    Examples
    --------
    >>> import geopandas as gpd
    >>> from shapely import box
    >>> grids = gpd.GeoDataFrame({"code": ["g1", "g2"]}, crs="EPSG:4490",
    ...     geometry=[box(118.600, 24.900, 118.601, 24.901), box(118.601, 24.900, 118.602, 24.901)])
    >>> beats = gpd.GeoDataFrame({"code": ["b1", "b2"]}, crs="EPSG:4490",
    ...     geometry=[box(118.600, 24.900, 118.6017, 24.901),
    ...               box(118.6017, 24.900, 118.602, 24.901)])
    >>> table = shares(grids, beats)
    >>> table.round({"area_m2": -1, "area_share": 3})
      a_code b_code  area_m2  area_share  whole
    0     g1     b1  11200.0         1.0   True
    1     g2     b1   7840.0         0.7  False
    2     g2     b2   3360.0         0.3  False
    """
    a = as_layer(a_units, role="a_units")
    b = as_layer(b_units, role="b_units")
    return overlaps(a, b, weights=weights, weight_column=weight_column).frame()


def overlaps(
    a: Layer,
    b: Layer,
    *,
    weights: Weights = None,
    weight_column: str | None = None,
    metric: Metric | None = None,
    reuse: Reuse | None = None,
) -> Overlaps:
    """Compute the :class:`Overlaps` of two layers (see :func:`shares`).

    ``reuse`` shares the projections and intersections with other checks of
    the same geometries (the same answers, computed once).
    """
    metric = metric or metric_for(a.geoms, b.geoms)
    project = metric.project if reuse is None else partial(reuse.project, metric)
    a_area = metric.area(a.geoms) if reuse is None else reuse.area(metric, a.geoms)
    b_area = metric.area(b.geoms) if reuse is None else reuse.area(metric, b.geoms)
    tree = shapely.STRtree(b.geoms)

    # Aligned layers: nearly every A unit lies in one B unit. A covered_by
    # query finds those without computing a single intersection.
    whole_a, whole_b = tree.query(a.geoms, predicate="covered_by")
    covered = np.zeros(len(a), dtype=bool)
    covered[whole_a] = True

    # The rest: intersect with every candidate, keep what has area (neighbours
    # that only touch give lines or points).
    rest = np.flatnonzero(~covered)
    cut_i, cut_b = tree.query(a.geoms[rest], predicate="intersects")
    cut_a = rest[cut_i]
    cut_pieces = (
        shapely.intersection(a.geoms[cut_a], b.geoms[cut_b])
        if reuse is None
        else reuse.intersection(a.geoms[cut_a], b.geoms[cut_b])
    )
    cut_projected = project(cut_pieces)
    cut_area = np.nan_to_num(shapely.area(cut_projected), nan=0.0)
    keep = cut_area > 0
    cut_width = widths_m(cut_projected[keep])

    ai = np.concatenate([whole_a, cut_a[keep]]).astype(np.intp)
    bi = np.concatenate([whole_b, cut_b[keep]]).astype(np.intp)
    area = np.concatenate([a_area[whole_a], cut_area[keep]])
    whole = np.concatenate([np.ones(len(whole_a), bool), np.zeros(int(keep.sum()), bool)])
    pieces = np.concatenate([a.geoms[whole_a], cut_pieces[keep]]).astype(object)
    width = np.concatenate([np.full(len(whole_a), np.inf), cut_width])
    order = np.lexsort((bi, -area, ai))
    ai, bi, area, whole, pieces = ai[order], bi[order], area[order], whole[order], pieces[order]
    width = width[order]

    households = a_households = b_households = None
    if isinstance(weights, str):
        if weights not in a.frame:
            raise ValueError(f"a_units has no column {weights!r} to weight by")
        a_households = pd.to_numeric(a.frame[weights], errors="coerce").fillna(0).to_numpy(float)
        households = a_households[ai] * _ratio(area, a_area[ai])
        b_households = np.bincount(bi, weights=households, minlength=len(b)).astype(float)
    elif weights is not None:
        households, a_households, b_households = _point_weights(
            a, b, ai, bi, weights, weight_column
        )
    return Overlaps(
        a, b, metric, a_area, b_area, ai, bi, area, whole, pieces,
        households, a_households, b_households, width, reuse,
    )  # fmt: skip


def widths_m(projected: Objects) -> Floats:
    """Width of projected geometries: the mean width (2 x area / perimeter) of the widest polygon.

    The width of a sliver along an edge drawn twice is about the distance
    between the two drawings; a compact piece (a whole block, a micro-grid)
    is as wide as about half its diameter. Lines and points have width 0.
    """
    out = np.zeros(len(projected))
    if not len(projected):
        return out
    parts, owner = shapely.get_parts(projected, return_index=True)
    polygons = shapely.get_type_id(parts) == 3
    parts, owner = parts[polygons], owner[polygons]
    perimeter = shapely.length(parts)
    width = np.divide(
        2.0 * shapely.area(parts), perimeter, out=np.zeros(len(parts)), where=perimeter > 0
    )
    np.maximum.at(out, owner, width)
    return out


def _point_weights(
    a: Layer,
    b: Layer,
    ai: Indices,
    bi: Indices,
    weights: gpd.GeoDataFrame,
    weight_column: str | None,
) -> tuple[Floats, Floats, Floats]:
    if weights.crs is None:
        raise ValueError("weights has no CRS")
    frame = weights.to_crs(STORAGE_CRS)
    frame = frame[~frame.geometry.isna() & ~frame.geometry.is_empty]
    column = weight_column or next((c for c in ("households", "count") if c in frame), None)
    if column is not None and column not in frame:
        raise ValueError(f"weights has no column {column!r}")
    counts = (
        pd.to_numeric(frame[column], errors="coerce").fillna(0).to_numpy(float)
        if column
        else np.ones(len(frame))
    )
    geoms = np.asarray(frame.geometry.values, dtype=object)
    # Polygons (micro-grids, buildings) count where they are: at a point on
    # their surface. Exact when they nest in both layers, as micro-grids do.
    points = np.where(shapely.get_type_id(geoms) == 0, geoms, shapely.point_on_surface(geoms))
    a_of = owner_rows(a.geoms, points)
    b_of = owner_rows(b.geoms, points)
    a_households = np.bincount(a_of[a_of >= 0], counts[a_of >= 0], minlength=len(a)).astype(float)
    b_households = np.bincount(b_of[b_of >= 0], counts[b_of >= 0], minlength=len(b)).astype(float)
    both = (a_of >= 0) & (b_of >= 0)
    keys, sums = _sum_by(a_of[both] * len(b) + b_of[both], counts[both])
    pair_keys = ai.astype(np.int64) * len(b) + bi
    at = np.clip(np.searchsorted(keys, pair_keys), 0, max(len(keys) - 1, 0))
    found = (keys[at] == pair_keys) if len(keys) else np.zeros(len(pair_keys), bool)
    households = np.where(found, sums[at] if len(keys) else 0.0, 0.0).astype(float)
    return households, a_households, b_households


def _sum_by(keys: NDArray[np.int64], values: Floats) -> tuple[NDArray[np.int64], Floats]:
    unique, inverse = np.unique(keys, return_inverse=True)
    return unique, np.bincount(inverse, weights=values, minlength=len(unique)).astype(float)


def _ratio(num: Floats, den: Floats, *, empty: float = 0.0) -> Floats:
    out = np.full(len(num), empty, dtype=float)
    np.divide(num, den, out=out, where=den > 0)
    return out
