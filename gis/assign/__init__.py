"""Assign buildings, and what hangs on them, to grid units; measure the workload.

Every building (实有房屋) goes to exactly one unit, by the first of these
rules that applies. The rule is explicit, ordered and deterministic, in the
manner of ``maup.assign``; it never drops a building.

1. ``entrance`` - a building with an entrance point goes to the unit
   covering that point, exactly as :class:`~gis.gridindex.GridIndex` (GEOS
   ``covers``) decides; a point on an edge shared by several units goes to
   the smallest code. An entrance outside every unit falls through to 2-4.
2. ``covered`` - else the unit that covers the whole footprint (several,
   only in an overlapping layer: the smallest code).
3. ``largest_overlap`` - else the unit sharing the largest area with the
   footprint, in m² (ties: the smallest code).
4. ``unassigned`` - else (the footprint shares no area with any unit):
   no unit, with the ``nearest`` unit and the ``distance_m`` to it.

Whatever the rule, a building is flagged ``cut`` when unit boundaries split
it into two or more pieces of at least 1% of its area **and** 1 m² each
(feature integrity: "a boundary should not cut through a building"); the
part outside every unit counts as a piece. Its ``shares`` list each unit's
piece over the tolerances, largest first.

Topology is computed in the units' CRS, where boundaries are defined;
areas and distances in metres, in :func:`gis.crs.local_projected_crs` for
geographic data. Units must form a valid coverage for "the unit" to be
meaningful (see :func:`gis.validate.validate_units`).

Then :func:`inherit` gives addresses and households their building's unit,
:func:`diff` lists what moved after a boundary change, and :func:`workload`
counts buildings, households, persons and places per unit up the
hierarchy, against targets (a grid: 300-500 households).

Examples
--------
Units ``A`` and ``B``; building 1 lies in A, building 2 straddles the
boundary with most of it in B, building 3 is outside both::

    10 +--------+--------+
       | [1]    |        |     [3]
       |     [=2|====]   |
     0 +--------+--------+
       0   A   10   B   20      25

>>> import geopandas as gpd
>>> from shapely import box
>>> units = gpd.GeoDataFrame({"code": ["A", "B"]}, crs="EPSG:4549",
...     geometry=[box(500_000, 0, 500_010, 10), box(500_010, 0, 500_020, 10)])
>>> buildings = gpd.GeoDataFrame({"key": [1, 2, 3]}, crs="EPSG:4549", geometry=[
...     box(500_001, 6, 500_003, 8), box(500_008, 2, 500_015, 4), box(500_024, 4, 500_026, 6)])
>>> result = assign_buildings(buildings, units).frame
>>> result[["key", "unit", "rule", "cut", "nearest", "distance_m"]]
   key  unit             rule    cut nearest  distance_m
0    1     A          covered  False    None         NaN
1    2     B  largest_overlap   True    None         NaN
2    3  None       unassigned  False       B         4.0
>>> [(code, round(share, 3)) for code, share in result.shares[1]]
[('B', 0.714), ('A', 0.286)]
"""

from gis.assign._buildings import COLUMNS, RULES, Assignment, assign_buildings
from gis.assign._children import NO_BUILDING, diff, inherit
from gis.assign._workload import COUNTS, DEFAULT_TARGETS, Target, Workload, workload

__all__ = [
    "COLUMNS",
    "COUNTS",
    "DEFAULT_TARGETS",
    "NO_BUILDING",
    "RULES",
    "Assignment",
    "Target",
    "Workload",
    "assign_buildings",
    "diff",
    "inherit",
    "workload",
]
