"""Vector tiles (Mapbox Vector Tile 2.1) of every layer and level, for the web map.

- :class:`TileService`: cut, simplify (shared edges kept shared), encode and
  cache tiles from the in-memory coverage, limited to a caller's units;
- :func:`encode_tile`, :class:`TileLayer`, :func:`to_tile_pixels`: the encoder;
- :func:`tile_bounds`: XYZ tile address to EPSG:3857 bounds.
"""

from gis.tiles._mvt import TileLayer, encode_tile, to_tile_pixels
from gis.tiles._service import DATUMS, MAX_ZOOM, PLACES_MIN_ZOOM, TileService, tile_bounds

__all__ = [
    "DATUMS",
    "MAX_ZOOM",
    "PLACES_MIN_ZOOM",
    "TileLayer",
    "TileService",
    "encode_tile",
    "tile_bounds",
    "to_tile_pixels",
]
