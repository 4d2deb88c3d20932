"""Geocoding: exact, compiled point-in-polygon lookups of grid units.

:class:`GridIndex` answers "which unit covers this point?" for millions of
points per second, with the same answer as GEOS (``shapely.covers``) for
every point, boundaries included; ties on shared edges and vertices go to
the smallest code. :func:`orient2d` is the exact orientation predicate it
is built on.

Design (as timezonefinder, but exact and compiled with numba): a uniform
grid over the layer's extent, about two cells per polygon edge. A cell that
no edge touches is a shortcut: it lies inside one unit (or none), decided
once at build time. Any other cell keeps one flat record: its candidate
units in code order, each with only its edges touching the cell and whether
the cell's reference point is inside. A lookup counts, with exact
predicates, the edges crossing the segment from the point to that reference
point, and checks whether the point is on one of them; the first candidate
covering the point wins. When the candidates provably cover the whole cell
(every edge in it shared, reversed, by another polygon), the last one needs
no test.

Examples
--------
>>> import geopandas as gpd, shapely
>>> units = gpd.GeoDataFrame({"code": ["350503001"]}, geometry=[shapely.box(0, 0, 4, 4)])
>>> GridIndex.from_frame(units).lookup([1.0, 4.0, 5.0], [1.0, 2.0, 1.0]).tolist()
['350503001', '350503001', None]
"""

from gis.gridindex._index import GridIndex
from gis.gridindex._predicates import orient2d

__all__ = ["GridIndex", "orient2d"]
