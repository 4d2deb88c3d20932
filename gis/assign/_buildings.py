"""Assign building footprints to grid units: the ordered rule of :mod:`gis.assign`."""

from __future__ import annotations

from collections.abc import Hashable
from dataclasses import dataclass, field
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from numpy.typing import NDArray
from pyproj import CRS

from gis._prepared import prepared_copies
from gis.assign._measure import Metric, metric_for, nearest_units
from gis.assign._near import near_boundaries, unit_edges
from gis.gridindex import GridIndex

__all__ = ["COLUMNS", "RULES", "Assignment", "assign_buildings"]

#: The rules, in the order they are tried (the ``rule`` column's categories).
RULES = ("entrance", "covered", "largest_overlap", "unassigned")
#: The columns of :attr:`Assignment.frame`.
COLUMNS = ("key", "unit", "rule", "cut", "shares", "outside_share", "nearest", "distance_m")

_ENTRANCE, _COVERED, _LARGEST, _UNASSIGNED = range(4)
_POLYGON, _MULTIPOLYGON = 3, 6
_NOISE = 1e-6  # outside shares below this are the rounding of the pieces' areas
#: Up to this many point lookups (footprints plus entrances), no GridIndex is built.
SMALL_LOOKUPS = 256
_RULE_DTYPE = pd.CategoricalDtype(list(RULES))

Objects = NDArray[np.object_]
Floats = NDArray[np.float64]
Indices = NDArray[np.int64]


@dataclass(frozen=True)
class Assignment:
    """Where each building goes, by which rule, and whether a boundary cuts it.

    Attributes
    ----------
    frame : DataFrame
        One row per building, in input order and with the input's index:

        - ``key``: the building's key;
        - ``unit``: the code of its unit, ``None`` only when it is outside
          every unit;
        - ``rule``: which rule decided (categorical, :data:`RULES`);
        - ``cut``: a unit boundary splits the footprint into at least two
          pieces over the tolerances (the part outside every unit counts as
          a piece);
        - ``shares``: for cut buildings, a tuple ``((code, share), ...)`` of
          each unit holding a piece over the tolerances, largest first;
          ``()`` otherwise;
        - ``outside_share``: share of the footprint outside every unit
          (0 for covered buildings, 1 for unassigned ones);
        - ``nearest``, ``distance_m``: for unassigned buildings, the
          nearest unit and the distance to it in metres (0 when it only
          touches); ``None`` and NaN otherwise.
    repaired : tuple
        Keys of invalid footprints that met a boundary and were measured
        after :func:`shapely.make_valid` (nothing else is repaired).
    """

    frame: pd.DataFrame
    repaired: tuple[Hashable, ...] = field(default=())

    def __len__(self) -> int:
        return len(self.frame)

    def counts(self) -> dict[str, int]:
        """Return the number of buildings per rule, plus ``cut``.

        Examples
        --------
        >>> import geopandas as gpd, shapely
        >>> units = gpd.GeoDataFrame({"code": ["a"]}, geometry=[shapely.box(0, 0, 100, 100)])
        >>> buildings = gpd.GeoDataFrame({"key": [1]}, geometry=[shapely.box(1, 1, 9, 9)])
        >>> assign_buildings(buildings, units).counts()
        {'entrance': 0, 'covered': 1, 'largest_overlap': 0, 'unassigned': 0, 'cut': 0}
        """
        by_rule = self.frame["rule"].value_counts()
        out = {rule: int(by_rule.get(rule, 0)) for rule in RULES}
        out["cut"] = int(self.frame["cut"].sum())
        return out


def assign_buildings(
    buildings: gpd.GeoDataFrame,
    units: gpd.GeoDataFrame,
    *,
    code: str = "code",
    key: str = "key",
    entrance: str | None = None,
    cut_tolerance_share: float = 0.01,
    cut_tolerance_m2: float = 1.0,
    index: GridIndex | None = None,
) -> Assignment:
    """Assign every building to one unit (see :mod:`gis.assign` for the rule).

    Parameters
    ----------
    buildings : GeoDataFrame
        Polygon or MultiPolygon footprints with a unique ``key`` column.
    units : GeoDataFrame
        The units (a valid coverage: no overlaps), one row per ``code``.
    code : str, default "code"
        Column of unit codes (compared as strings).
    key : str, default "key"
        Column of building keys.
    entrance : str, optional
        Column of entrance points (``None`` or empty where unknown). A
        geometry column in another CRS is reprojected; plain shapely points
        are taken to be in the buildings' CRS.
    cut_tolerance_share, cut_tolerance_m2 : float, default 0.01 and 1.0
        A piece of a footprint counts (for ``cut`` and ``shares``) when it
        is at least this share of the footprint **and** this many m².
    index : GridIndex, optional
        A :class:`~gis.gridindex.GridIndex` of ``units`` (same rows, same CRS)
        to reuse across calls; built when not given.

    Returns
    -------
    Assignment
        One row per building.

    Raises
    ------
    ValueError
        If a column is missing, keys are missing or repeated, there are no
        units, codes are missing or repeated, the frames disagree on having a CRS, a
        footprint is missing, empty or not polygonal, an entrance is not a
        point, or ``index`` does not index ``units``.

    Notes
    -----
    Cost is about one point lookup per building: a numba filter finds the
    footprints whose bounding box meets a unit edge; every other footprint
    lies wholly inside one unit (or outside all) and takes the unit of its
    first vertex from the exact :class:`~gis.gridindex.GridIndex`. Only the
    filtered ones are tested with ``covers`` and, if no unit covers them,
    intersected with the units they meet.

    Examples
    --------
    Two units side by side (metres), one building across the boundary::

        10 +---------+---------+
           |  [=====:==]       |     building "b1": 4 m in A, 2 m in B
         0 +---------+---------+
           0    A   10    B   20

    >>> import geopandas as gpd, shapely
    >>> units = gpd.GeoDataFrame({"code": ["A", "B"]}, crs="EPSG:4549",
    ...     geometry=[shapely.box(500_000, 0, 500_010, 10), shapely.box(500_010, 0, 500_020, 10)])
    >>> buildings = gpd.GeoDataFrame({"key": ["b1"]}, crs="EPSG:4549",
    ...     geometry=[shapely.box(500_006, 4, 500_012, 6)])
    >>> row = assign_buildings(buildings, units).frame.iloc[0]
    >>> row.unit, row.rule, bool(row.cut), [(c, round(s, 3)) for c, s in row.shares]
    ('A', 'largest_overlap', True, [('A', 0.667), ('B', 0.333)])
    """
    keys = _check_keys(buildings, key)
    codes = _check_codes(units, code)
    # Each .crs reads the geometry column into a new GeoSeries: read once.
    buildings_crs, units_crs = buildings.crs, units.crs
    if (buildings_crs is None) != (units_crs is None):
        raise ValueError("buildings and units must both have a CRS, or both have none")
    entrances = _entrance_points(buildings, entrance, units_crs, buildings_crs)
    if buildings_crs is not None and not _same_crs(buildings_crs, units_crs):
        buildings = buildings.to_crs(units_crs)
    footprints = np.asarray(buildings.geometry.values, dtype=object)
    _check_footprints(footprints, keys)
    ugeoms = np.asarray(units.geometry.values, dtype=object)
    lookups = len(footprints) + (0 if entrances is None else int(entrances[0].sum()))
    if index is None and lookups <= SMALL_LOOKUPS:
        # A few dozen points (an edit's buildings): building the grid index
        # costs more than asking GEOS about each point (same answers).
        lookup: GridIndex | _FewPoints = _FewPoints(ugeoms, codes)
    else:
        lookup = _check_index(index, units, codes, code)
    rank = np.empty(len(codes), dtype=np.int64)
    rank[np.argsort(codes.astype(str), kind="stable")] = np.arange(len(codes))

    n = len(footprints)
    bounds = shapely.bounds(footprints)
    edges, edge_unit = unit_edges(ugeoms)
    near = near_boundaries(bounds, edges)
    # A multi-part footprint may have parts in several units without touching
    # any boundary: only exact geometry can tell.
    near |= shapely.get_type_id(footprints) == _MULTIPOLYGON

    unit = np.full(n, -1, dtype=np.int64)
    rule = np.full(n, _UNASSIGNED, dtype=np.int8)
    cut = np.zeros(n, dtype=bool)
    outside = np.ones(n, dtype=float)
    shares = np.empty(n, dtype=object)
    shares.fill(())  # one shared empty tuple: 200,000 empty lists cost a garbage collection

    # Rule 2 for footprints clear of every boundary: the unit of any point of
    # theirs is the unit of the whole, and the first vertex is the cheapest.
    clear = np.flatnonzero(~near)
    coords, which = shapely.get_coordinates(footprints[clear], return_index=True)
    first = coords[np.searchsorted(which, np.arange(len(clear)))]
    found = lookup.lookup_index(first[:, 0], first[:, 1]) if len(clear) else clear
    unit[clear] = found
    rule[clear[found >= 0]] = _COVERED
    outside[clear[found >= 0]] = 0.0

    metric = metric_for(units_crs, _total_bounds(bounds))
    candidates = np.flatnonzero(near)
    exact = _exact(
        footprints[candidates], ugeoms, rank, metric, cut_tolerance_share, cut_tolerance_m2
    )
    unit[candidates] = exact.unit
    rule[candidates] = exact.rule
    cut[candidates] = exact.cut
    outside[candidates] = exact.outside
    for row, listed in exact.shares.items():
        shares[candidates[row]] = tuple((str(codes[u]), share) for u, share in listed)

    # Rule 1 overrides: the entrance is where people go in.
    if entrances is not None:
        has = np.flatnonzero(entrances[0])
        at = lookup.lookup_index(entrances[1][has], entrances[2][has])
        inside = has[at >= 0]
        unit[inside] = at[at >= 0]
        rule[inside] = _ENTRANCE

    lost = np.flatnonzero(unit < 0)
    nearest, distance = nearest_units(footprints[lost], edges, edge_unit, rank, metric)
    labels = np.array([*codes, None], dtype=object)  # row -1 reads the trailing None
    near_code = np.full(n, None, dtype=object)
    near_code[lost] = labels[nearest]
    distance_m = np.full(n, np.nan)
    distance_m[lost] = distance

    frame = pd.DataFrame(
        {
            "key": buildings[key].to_numpy(),
            "unit": pd.Series(labels[unit], dtype=object, index=buildings.index),
            "rule": pd.Categorical.from_codes(rule, dtype=_RULE_DTYPE),
            "cut": cut,
            "shares": pd.Series(shares, dtype=object, index=buildings.index),
            "outside_share": outside,
            "nearest": pd.Series(near_code, dtype=object, index=buildings.index),
            "distance_m": distance_m,
        },
        index=buildings.index,
    )
    return Assignment(frame, tuple(keys[candidates[exact.repaired]].tolist()))


@dataclass(frozen=True)
class _Exact:
    """Rules 2 and 3 decided with exact geometry, one entry per footprint given."""

    unit: Indices
    rule: NDArray[np.int8]
    cut: NDArray[np.bool_]
    outside: Floats
    shares: dict[int, list[tuple[int, float]]]  # cut footprints: (unit row, share), largest first
    repaired: Indices


def _exact(
    geoms: Objects,
    ugeoms: Objects,
    rank: Indices,
    metric: Metric,
    share_min: float,
    m2_min: float,
) -> _Exact:
    """Apply rules 2 and 3 to footprints near a boundary, with GEOS."""
    n = len(geoms)
    invalid = np.flatnonzero(~shapely.is_valid(geoms))
    if invalid.size:
        geoms = geoms.copy()
        geoms[invalid] = shapely.make_valid(geoms[invalid])
    bi, ui = shapely.STRtree(ugeoms).query(geoms, predicate="intersects")
    order = np.lexsort((rank[ui], bi))  # per footprint, in code order
    bi, ui = bi[order], ui[order]
    unit = np.full(n, -1, dtype=np.int64)
    rule = np.full(n, _UNASSIGNED, dtype=np.int8)
    outside = np.ones(n)

    # Rule 2: the first covering unit in code order has the smallest code.
    # Preparing the units pays off from the second footprint on; they are
    # copies because the units come from caches other threads use at the
    # same time (GEOS prepared polygons are not thread-safe: gis._prepared).
    met_units, local = np.unique(ui, return_inverse=True)
    prepared = prepared_copies(ugeoms[met_units])
    hit = np.flatnonzero(shapely.covers(prepared[local], geoms[bi]))
    hit = hit[_firsts(bi[hit])]
    unit[bi[hit]] = ui[hit]
    rule[bi[hit]] = _COVERED
    outside[bi[hit]] = 0.0

    # Rule 3: intersect what no unit covers with every unit it meets.
    keep = rule[bi] != _COVERED
    bi, ui = bi[keep], ui[keep]
    area = metric.area(np.asarray(shapely.intersection(geoms[bi], ugeoms[ui]), dtype=object))
    met = np.unique(bi)
    total = np.zeros(n)
    total[met] = metric.area(geoms[met])
    share = np.divide(area, total[bi], out=np.zeros_like(area), where=total[bi] > 0)
    positive = np.flatnonzero(area > 0)
    order = positive[np.lexsort((rank[ui[positive]], -area[positive], bi[positive]))]
    largest = order[_firsts(bi[order])]
    unit[bi[largest]] = ui[largest]
    rule[bi[largest]] = _LARGEST

    # Cut: two pieces over the tolerances, the part outside every unit included.
    out_m2 = np.clip(total - np.bincount(bi, weights=area, minlength=n), 0.0, None)
    out_share = np.divide(out_m2, total, out=np.zeros(n), where=total > 0)
    out_share[out_share < _NOISE] = 0.0  # pieces that add up to the whole, but for rounding
    outside[met] = out_share[met]
    counted = order[(share[order] >= share_min) & (area[order] >= m2_min)]
    pieces = np.bincount(bi[counted], minlength=n) + ((out_share >= share_min) & (out_m2 >= m2_min))
    cut = pieces >= 2
    listed: dict[int, list[tuple[int, float]]] = {}
    for k in counted[cut[bi[counted]]]:  # cut footprints only: a few percent at most
        listed.setdefault(int(bi[k]), []).append((int(ui[k]), float(share[k])))
    return _Exact(unit, rule, cut, outside, listed, invalid)


def _firsts(sorted_keys: Indices) -> NDArray[np.bool_]:
    """Mark the first of each run of equal keys."""
    return (
        np.r_[True, sorted_keys[1:] != sorted_keys[:-1]] if len(sorted_keys) else np.zeros(0, bool)
    )


def _total_bounds(bounds: Floats) -> Floats:
    if len(bounds) == 0 or np.isnan(bounds).all():
        return np.full(4, np.nan)
    return np.array(
        [
            np.nanmin(bounds[:, 0]),
            np.nanmin(bounds[:, 1]),
            np.nanmax(bounds[:, 2]),
            np.nanmax(bounds[:, 3]),
        ]
    )


def _check_keys(buildings: gpd.GeoDataFrame, key: str) -> Objects:
    if key not in buildings.columns:
        raise ValueError(f"no column {key!r} in the buildings (columns: {list(buildings.columns)})")
    column = buildings[key]
    if column.isna().any():
        raise ValueError(f"building at row {int(np.argmax(column.isna().to_numpy()))} has no key")
    values = column.to_numpy(dtype=object)
    if len(set(values)) == len(values):  # the usual case, without a pass of pandas
        return values
    repeated = column[column.duplicated()]
    if len(repeated):
        raise ValueError(
            f"building keys must be unique; repeated: {repeated.unique()[:5].tolist()}"
        )
    return column.to_numpy(dtype=object)


def _check_codes(units: gpd.GeoDataFrame, code: str) -> Objects:
    if code not in units.columns:
        raise ValueError(f"no column {code!r} in the units (columns: {list(units.columns)})")
    # The column read once: each read of a frame's column costs a Series.
    values = units[code].to_numpy(dtype=object)
    missing = pd.isna(values)
    if missing.any():
        raise ValueError(f"unit at row {int(np.argmax(missing))} has no code")
    if len(units) == 0:
        raise ValueError("no units to assign the buildings to")
    codes = np.array([str(c) for c in values], dtype=object)
    if len(set(codes)) != len(codes):
        text = pd.Series(codes)
        repeated = sorted(set(text[text.duplicated()]))[:5]
        raise ValueError(
            f"unit codes must be unique, repeated: {repeated}; join the parts of a unit into "
            "one MultiPolygon first (gis.unitframe.merge_multipart_units)"
        )
    types = shapely.get_type_id(np.asarray(units.geometry.values, dtype=object))
    bad = np.flatnonzero(~np.isin(types, (_POLYGON, _MULTIPOLYGON)))
    if bad.size:
        raise ValueError(f"unit {codes[bad[0]]!r} is not a Polygon or MultiPolygon")
    return codes


def _check_footprints(footprints: Objects, keys: Objects) -> None:
    polygonal = np.isin(shapely.get_type_id(footprints), (_POLYGON, _MULTIPOLYGON))
    bad = ~polygonal
    bad[polygonal] = shapely.is_empty(footprints[polygonal])
    if bad.any():
        row = int(np.argmax(bad))
        geom = footprints[row]
        kind = "missing" if geom is None else "empty" if polygonal[row] else f"a {geom.geom_type}"
        raise ValueError(
            f"building {keys[row]!r} is {kind}: footprints must be non-empty "
            "Polygon or MultiPolygon"
        )


def _check_index(
    index: GridIndex | None, units: gpd.GeoDataFrame, codes: Objects, code: str
) -> GridIndex:
    if index is None:
        return GridIndex.from_frame(units, code=code)
    if len(index) != len(codes) or not np.array_equal(index.codes, codes):
        raise ValueError("index does not index these units: build it with GridIndex.from_frame")
    if index.crs is not None and units.crs is not None and not CRS(index.crs).equals(units.crs):
        raise ValueError("index is in another CRS than the units")
    return index


def _entrance_points(
    buildings: gpd.GeoDataFrame, column: str | None, crs: Any, buildings_crs: Any
) -> tuple[NDArray[np.bool_], Floats, Floats] | None:
    """Return ``(has_entrance, x, y)`` in the units' CRS, or ``None`` without a column."""
    if column is None:
        return None
    if column not in buildings.columns:
        raise ValueError(f"no entrance column {column!r} in the buildings")
    values = buildings[column]
    source = values.crs if isinstance(values, gpd.GeoSeries) else None
    points = _plain_points(values) if source is None else None
    if points is None:
        points = gpd.GeoSeries(
            np.asarray(values.to_numpy(), dtype=object), crs=source or buildings_crs
        )
        points_crs = points.crs
        geoms = np.asarray(points.values, dtype=object)
    else:
        # Shapely points (or None) in the buildings' CRS: no GeoSeries to make.
        points_crs, geoms = buildings_crs, points
    types = shapely.get_type_id(geoms)
    bad = np.flatnonzero((types != 0) & (types != -1))
    if bad.size:
        raise ValueError(f"entrance of building row {int(bad[0])} is not a Point")
    if points_crs is not None and crs is not None and not _same_crs(points_crs, crs):
        points = gpd.GeoSeries(geoms, crs=points_crs).to_crs(crs)
        geoms = np.asarray(points.values, dtype=object)
    has = (types == 0) & ~shapely.is_empty(geoms)
    xy = np.full((len(geoms), 2), np.nan)
    xy[has] = shapely.get_coordinates(geoms[has])
    return has, xy[:, 0], xy[:, 1]


def _plain_points(values: pd.Series) -> Objects | None:
    """Return a column of shapely geometries or ``None`` as an array (else ``None``)."""
    geoms = np.asarray(values.to_numpy(), dtype=object)
    try:
        shapely.get_type_id(geoms)
    except TypeError:  # something else: the GeoSeries constructor says what
        return None
    return geoms


def _same_crs(a: Any, b: Any) -> bool:
    """Whether two CRS are equal (the same object is, without parsing either)."""
    return a is b or bool(CRS(a).equals(CRS(b)))


class _FewPoints:
    """Point lookups as :meth:`GridIndex.lookup_index` answers them, asked of GEOS.

    The unit that covers the point (interior or boundary); of several, the
    one with the smallest code; none: -1. For a few points, cheaper than
    building a :class:`GridIndex`.
    """

    def __init__(self, geometries: Objects, codes: Objects) -> None:
        coords, which = shapely.get_coordinates(geometries, return_index=True)
        finite = np.isfinite(coords).all(axis=1)
        if not finite.all():  # as GridIndex refuses them
            row = int(which[np.argmin(finite)])
            raise ValueError(f"unit {codes[row]!r} (row {row}) has non-finite coordinates")
        self._tree = shapely.STRtree(geometries)
        self._rank = np.empty(len(codes), dtype=np.int64)
        self._rank[np.argsort(codes.astype(str), kind="stable")] = np.arange(len(codes))

    def lookup_index(self, x: Floats, y: Floats) -> Indices:
        found = np.full(len(x), -1, dtype=np.int64)
        if not len(x):
            return found
        point, unit = self._tree.query(shapely.points(x, y), predicate="covered_by")
        order = np.lexsort((self._rank[unit], point))  # per point, the smallest code first
        point, unit = point[order], unit[order]
        first = _firsts(point)
        found[point[first]] = unit[first]
        return found
