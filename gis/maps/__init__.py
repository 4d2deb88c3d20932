"""Maps people would rather look at than tables: folium (Leaflet) HTML maps.

The only package that imports folium, so that nothing else (the API at
start-up, the core) loads it. See :func:`units_map`, :func:`problems_map`,
:func:`alignment_map` and :func:`incidents_map`.
"""

from gis.maps._alignment import alignment_map
from gis.maps._incidents import incidents_map
from gis.maps._units import problems_map, units_map

__all__ = ["alignment_map", "incidents_map", "problems_map", "units_map"]
