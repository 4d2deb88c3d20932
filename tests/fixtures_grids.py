"""Tiny hand-drawn grid fixtures for the validation rules (in the style of ``maup``'s tests).

Every fixture is a function returning a :class:`Grids`: the children, their
parents and the shape of the fault the validator must find (``None`` for clean
data). Coordinates are CGCS2000 / 3-degree Gauss-Kruger CM 120E (EPSG:4549), in
metres, offset from ``(X0, Y0)`` so that the pictures read in plain metres;
the cells are 100 m. The default parent is ``01``, the square 0..200 x 0..200,
and its four children are numbered west to east, north to south::

    y=200 +-------+-------+
          | 0101  | 0102  |
    y=100 +-------+-------+
          | 0103  | 0104  |
    y=0   +-------+-------+
         x=0     100     200
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import geopandas as gpd
import shapely
from shapely.geometry.base import BaseGeometry

CRS = "EPSG:4549"
X0 = 500_000.0
Y0 = 2_750_000.0
CHILD_CODES = ("0101", "0102", "0103", "0104")


class Grids(NamedTuple):
    """Children, parents (both EPSG:4549) and the fault (EPSG:4549, or ``None``)."""

    children: gpd.GeoDataFrame
    parents: gpd.GeoDataFrame
    fault: BaseGeometry | None


def rect(x0: float, y0: float, x1: float, y1: float) -> shapely.Polygon:
    """Return a rectangle given in metres relative to ``(X0, Y0)``."""
    return shapely.box(X0 + x0, Y0 + y0, X0 + x1, Y0 + y1)


def poly(*xy: tuple[float, float]) -> shapely.Polygon:
    """Return a polygon from vertices given in metres relative to ``(X0, Y0)``."""
    return shapely.Polygon([(X0 + x, Y0 + y) for x, y in xy])


def point(x: float, y: float) -> shapely.Point:
    """Return a point given in metres relative to ``(X0, Y0)``."""
    return shapely.Point(X0 + x, Y0 + y)


def frame(
    codes: Sequence[str | None],
    geometries: Sequence[BaseGeometry | None],
    parent_codes: Sequence[str | None] | None = None,
    crs: str | None = CRS,
) -> gpd.GeoDataFrame:
    """Build a unit frame (``code``, optional ``parent_code``, geometry)."""
    columns: dict[str, list[str | None]] = {"code": list(codes)}
    if parent_codes is not None:
        columns["parent_code"] = list(parent_codes)
    return gpd.GeoDataFrame(columns, geometry=list(geometries), crs=crs)


def parent_square() -> gpd.GeoDataFrame:
    """Return the parent level: ``01`` = 0..200 x 0..200, with a vertex every 100 m.

    The mid-side vertices matter: topology is computed in EPSG:4490, where a
    straight 200 m edge of the projected square is no longer exactly through
    the children's corner at its middle; without them the validator rightly
    finds sub-millimetre slivers (warnings) there.
    """
    return frame(["01"], [poly((0, 0), (100, 0), (200, 0), (200, 100), (200, 200), (100, 200),
                               (0, 200), (0, 100))])


def quads() -> list[shapely.Polygon]:
    """Return the four clean children 0101, 0102, 0103, 0104."""
    return [rect(0, 100, 100, 200), rect(100, 100, 200, 200), rect(0, 0, 100, 100),
            rect(100, 0, 200, 100)]


def _children(geometries: Sequence[BaseGeometry | None], codes: Sequence[str | None] = CHILD_CODES,
              parent_codes: Sequence[str | None] | None = None) -> gpd.GeoDataFrame:
    if parent_codes is None:
        parent_codes = ["01"] * len(codes)
    return frame(codes, geometries, parent_codes)


def clean() -> Grids:
    """Return a 2x2 parent split into four children: no problem at all.

    ::

        +-------+-------+
        | 0101  | 0102  |
        +-------+-------+      parent 01
        | 0103  | 0104  |
        +-------+-------+
    """
    return Grids(_children(quads()), parent_square(), None)


def overlap() -> Grids:
    """0101 reaches 20 m into 0102: a 20 x 100 m = 2,000 m² overlap.

    ::

        +---------+-----+
        | 0101  |#|0102 |     # = overlap, x 100..120, y 100..200
        +-------+-+-----+
        | 0103  | 0104  |
        +-------+-------+
    """
    geometries = quads()
    geometries[0] = rect(0, 100, 120, 200)
    return Grids(_children(geometries), parent_square(), rect(100, 100, 120, 200))


def gap_middle() -> Grids:
    """Each child misses a 10 x 10 m corner at the centre: a 20 x 20 m = 400 m² hole.

    ::

        +-------+-------+
        | 0101  | 0102  |
        |     +-+-+     |
        +-----+ # +-----+     # = gap, x 90..110, y 90..110, enclosed by all four
        |     +-+-+     |
        | 0103  | 0104  |
        +-------+-------+
    """
    notch = rect(90, 90, 110, 110)
    geometries = [g.difference(notch) for g in quads()]
    return Grids(_children(geometries), parent_square(), notch)


def gap_around_island() -> Grids:
    """Leave a 40 x 40 m hole at the centre with a 20 x 20 m island unit 0105 in it: 1,200 m².

    ::

        +-------+-------+
        | 0101  | 0102  |
        |   +---+---+   |
        +---+ +---+ +---+     hole x 80..120, y 80..120; 0105 = x 90..110, y 90..110
        |   | |0105|| |   |     gap = hole minus 0105 (a square ring)
        |   +---+---+   |
        | 0103  | 0104  |
        +-------+-------+
    """
    hole = rect(80, 80, 120, 120)
    island = rect(90, 90, 110, 110)
    geometries = [*(g.difference(hole) for g in quads()), island]
    children = _children(geometries, (*CHILD_CODES, "0105"))
    return Grids(children, parent_square(), hole.difference(island))


def outside_parent() -> Grids:
    """0102 sticks 30 m east out of its parent: 30 x 100 m = 3,000 m² outside.

    ::

        +-------+-------+---+
        | 0101  | 0102  | # |   # = outside, x 200..230, y 100..200
        +-------+-------+---+
        | 0103  | 0104  |
        +-------+-------+
    """
    geometries = quads()
    geometries[1] = rect(100, 100, 230, 200)
    return Grids(_children(geometries), parent_square(), rect(200, 100, 230, 200))


def parent_not_covered() -> Grids:
    """0104 stops 20 m short of the parent's east edge: 20 x 100 m = 2,000 m² uncovered.

    ::

        +-------+-------+
        | 0101  | 0102  |
        +-------+-----+-+
        | 0103  | 0104|#|     # = uncovered, x 180..200, y 0..100
        +-------+-----+-+
    """
    geometries = quads()
    geometries[3] = rect(100, 0, 180, 100)
    return Grids(_children(geometries), parent_square(), rect(180, 0, 200, 100))


def duplicate_code() -> Grids:
    """Call both northern children 0101 (they touch: not one multi-part unit).

    ::

        +-------+-------+
        | 0101  | 0101! |
        +-------+-------+
        | 0103  | 0104  |
        +-------+-------+
    """
    codes = ("0101", "0101", "0103", "0104")
    return Grids(_children(quads(), codes), parent_square(), rect(0, 100, 200, 200))


def multi_part() -> Grids:
    """0101 is two disjoint islands with equal properties: one multi-part unit, no problem.

    The parent is two squares 50 m apart; each island fills one, and 0102 fills
    the rest of the western one::

        +-------+-------+     +-------+
        | 0101  | 0102  |     | 0101  |     parent 01 = both squares
        +-------+-------+     +-------+
        x=0    100     200   250     350     y = 0..100
    """
    west = poly((0, 0), (100, 0), (200, 0), (200, 100), (100, 100), (0, 100))
    parents = frame(["01"], [shapely.MultiPolygon([west, rect(250, 0, 350, 100)])])
    children = _children([rect(0, 0, 100, 100), rect(100, 0, 200, 100), rect(250, 0, 350, 100)],
                         ("0101", "0102", "0101"))
    return Grids(children, parents, None)


def code_not_under_parent() -> Grids:
    """0104 is coded 0204 though it lies in, and names, parent 01.

    ::

        +-------+-------+
        | 0101  | 0102  |
        +-------+-------+
        | 0103  | 0204! |
        +-------+-------+
    """
    codes = ("0101", "0102", "0103", "0204")
    return Grids(_children(quads(), codes), parent_square(), rect(100, 0, 200, 100))


def unknown_parent() -> Grids:
    """0104 names parent 09, which does not exist.

    ::

        +-------+-------+
        | 0101  | 0102  |
        +-------+-------+
        | 0103  | 0104  |  <- parent_code 09
        +-------+-------+
    """
    return Grids(_children(quads(), parent_codes=("01", "01", "01", "09")), parent_square(),
                 rect(100, 0, 200, 100))


def missing_code() -> Grids:
    """0103 has no code (its parent_code is still 01).

    ::

        +-------+-------+
        | 0101  | 0102  |
        +-------+-------+
        |  ???  | 0104  |
        +-------+-------+
    """
    codes = ("0101", "0102", None, "0104")
    return Grids(_children(quads(), codes), parent_square(), rect(0, 0, 100, 100))


def bow_tie() -> Grids:
    r"""0104 is drawn as a bow-tie whose edges cross at (150, 50): an invalid polygon.

    ::

        +-------+-------+
        | 0101  | 0102  |
        +-------+-------+
        | 0103  |\   /|     0104 = (100,0) (200,100) (200,0) (100,100)
        |       |  X  |
        |       |/   \|
        +-------+-------+
    """
    geometries = quads()
    geometries[3] = poly((100, 0), (200, 100), (200, 0), (100, 100), (100, 0))
    return Grids(_children(geometries), parent_square(), point(150, 50))


def point_feature() -> Grids:
    """Add a fifth feature, 0105: a point inside 0101 among the four polygons.

    ::

        +-------+-------+
        | 0101  | 0102  |
        |   *   |       |     * = 0105, a Point at (50, 150)
        +-------+-------+
        | 0103  | 0104  |
        +-------+-------+
    """
    geometries: list[BaseGeometry] = [*quads(), point(50, 150)]
    codes = (*CHILD_CODES, "0105")
    return Grids(_children(geometries, codes), parent_square(), point(50, 150))


def sliver_overlap() -> Grids:
    """0101 reaches 1 cm into 0102 for 60 m: 0.6 m², under the tolerance (a warning).

    ::

        +-------+-------+
        | 0101  ||0102  |     | = 0.01 m x 60 m sliver, x 100..100.01, y 120..180
        +-------+-------+
        | 0103  | 0104  |
        +-------+-------+
    """
    geometries = quads()
    geometries[0] = poly((0, 100), (100, 100), (100, 120), (100.01, 120), (100.01, 180),
                         (100, 180), (100, 200), (0, 200))
    return Grids(_children(geometries), parent_square(), rect(100, 120, 100.01, 180))


def sliver_gap() -> Grids:
    """Leave a 0.5 x 0.5 m hole between the four children: 0.25 m², a warning.

    ::

        +-------+-------+
        | 0101  | 0102  |
        +------+.+------+     . = gap, x 99.75..100.25, y 99.75..100.25
        | 0103  | 0104  |
        +-------+-------+
    """
    notch = rect(99.75, 99.75, 100.25, 100.25)
    geometries = [g.difference(notch) for g in quads()]
    return Grids(_children(geometries), parent_square(), notch)


ALL = {
    "clean": clean,
    "overlap": overlap,
    "gap_middle": gap_middle,
    "gap_around_island": gap_around_island,
    "outside_parent": outside_parent,
    "parent_not_covered": parent_not_covered,
    "duplicate_code": duplicate_code,
    "multi_part": multi_part,
    "code_not_under_parent": code_not_under_parent,
    "unknown_parent": unknown_parent,
    "missing_code": missing_code,
    "bow_tie": bow_tie,
    "point_feature": point_feature,
    "sliver_overlap": sliver_overlap,
    "sliver_gap": sliver_gap,
}
