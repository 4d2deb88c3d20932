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

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from pyproj import CRS

from gis.crs import STORAGE_CRS, local_projected_crs, transformer
from gis.edits._autosplit_atoms import Arrangement, project
from gis.edits._autosplit_regions import Regions, partition
from gis.errors import InputError

__all__ = ["AutoSplitResult", "auto_split"]

#: Precision grid of the arrangement: 1e-7 degree (~1 cm, the storage
#: rounding of the sample city), or 1 cm for a projected CRS.
_GRID_DEGREES = 1e-7
_GRID_METRES = 0.01


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
    arrangement = Arrangement.build(
        unit, footprints, households, lines, n_parts, tolerance, grid, to_metres, from_metres
    )
    if arrangement.size < n_parts:
        raise InputError(
            f"the unit can be cut into {arrangement.size} piece(s) only "
            f"(streets and buildings): fewer than n_parts={n_parts}",
            field="n_parts",
        )
    best = partition(arrangement, n_parts, tolerance, seeds)
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


# -- result -------------------------------------------------------------------


def _result(
    arr: Arrangement,
    regions: Regions,
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
    metric = project(geoms, to_metres)
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
