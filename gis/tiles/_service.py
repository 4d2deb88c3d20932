"""Vector tiles of every layer and level, cut from the in-memory coverage.

Why tiles are cut here and not by PostGIS ``ST_AsMVT``: the units of every
level are already in memory (the locate indexes), the same code then serves
SpatiaLite and PostGIS alike, and simplification must keep shared edges
shared - ``shapely.coverage_simplify`` (GEOS 3.12+) does, while PostGIS 3.3
has no coverage simplification (``ST_SimplifyPreserveTopology`` per polygon
opens gaps and overlaps between neighbours at low zooms).
``benchmarks/tiles.py`` compares both in one run.
"""

from __future__ import annotations

import hashlib
import logging
import threading
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import numpy as np
import shapely
from numpy.typing import NDArray

from gis import datum as datums
from gis.errors import InputError, NotFoundError
from gis.locate._indexes import IndexCache, LevelIndex
from gis.revisions import RevisionClock
from gis.tiles._mvt import TileLayer, encode_tile, to_tile_pixels

_log = logging.getLogger(__name__)

__all__ = ["DATUMS", "MAX_ZOOM", "TileService", "tile_bounds"]

#: Datums a tile can be drawn in: the stored CGCS2000 (= WGS84 to well under
#: a metre, what Tianditu and OSM basemaps use), or a Chinese offset datum
#: so that grids sit on an Amap/Tencent (GCJ-02) or Baidu (BD-09) basemap.
DATUMS = ("cgcs2000", "gcj02", "bd09")
MAX_ZOOM = 22
EXTENT = 4096
BUFFER = 64  # pixels of the neighbouring tiles, so that strokes meet at tile edges
_HALF = 20037508.342789244  # half the EPSG:3857 world width, metres
_EARTH_RADIUS = 6378137.0
_SIMPLIFY_UP_TO = 17  # above this zoom the stored vertices are drawn as they are


def tile_bounds(z: int, x: int, y: int) -> tuple[float, float, float, float]:
    """Return a tile's bounds in EPSG:3857 (XYZ scheme, y down from the north).

    Examples
    --------
    >>> tile_bounds(0, 0, 0)[2]
    20037508.342789244
    """
    size = 2 * _HALF / (1 << z)
    minx = -_HALF + x * size
    maxy = _HALF - y * size
    return (minx, maxy - size, minx + size, maxy)


@dataclass
class _Source:
    """One level's units in web mercator, simplified lazily per zoom."""

    level: LevelIndex
    mercator: NDArray[np.object_]
    households: Mapping[str, int]
    by_zoom: dict[int, tuple[NDArray[np.object_], shapely.STRtree]] = field(default_factory=dict)

    def at_zoom(self, z: int) -> tuple[NDArray[np.object_], shapely.STRtree]:
        key = min(z, _SIMPLIFY_UP_TO + 1)
        found = self.by_zoom.get(key)
        if found is None:
            if key > _SIMPLIFY_UP_TO:
                geometries = self.mercator
            else:
                # Half a screen pixel (256-pixel tiles): invisible, and shared
                # edges simplified once for both neighbours.
                tolerance = 2 * _HALF / (1 << z) / 512
                geometries = np.asarray(
                    shapely.coverage_simplify(self.mercator, tolerance), dtype=object
                )
            found = (geometries, shapely.STRtree(geometries))
            self.by_zoom[key] = found
        return found


class TileService:
    """Encodes and caches the tiles of every layer and level.

    Parameters
    ----------
    indexes : IndexCache
        The locate service's indexes (one per level, shared): tiles follow
        boundary changes exactly when locating does.
    households : callable, optional
        ``households(layer) -> {code: households}`` for the tiles' property.
    clock : RevisionClock, optional
        The shared change counters: a places change refreshes the households.
    max_tiles : int
        Encoded tiles kept (least recently used dropped first).
    """

    def __init__(
        self,
        indexes: IndexCache,
        *,
        households: Callable[[str], Mapping[str, int]] | None = None,
        clock: RevisionClock | None = None,
        max_tiles: int = 4096,
    ) -> None:
        self._indexes = indexes
        self._clock = clock
        self._households = households
        self._max_tiles = max_tiles
        self._lock = threading.Lock()
        self._generation: tuple[int, datetime | None, int] | None = None
        self._sources: dict[tuple[str, str, str], _Source] = {}
        self._tiles: OrderedDict[tuple[Any, ...], bytes] = OrderedDict()

    def tile(
        self,
        *,
        layer: str,
        level: str,
        z: int,
        x: int,
        y: int,
        visible: frozenset[str] | None = None,
        datum: str = "cgcs2000",
    ) -> tuple[bytes, str]:
        """Return a tile's bytes and its ETag.

        Parameters
        ----------
        layer, level : str
            Which units; the tile's source layer is named after the level.
        z, x, y : int
            XYZ tile address (EPSG:3857 tiling).
        visible : frozenset of str, optional
            The unit codes the caller may see (None: all): others are left out.
        datum : {"cgcs2000", "gcj02", "bd09"}
            Shift the units into this datum (to sit on such a basemap).

        Raises
        ------
        InputError
            A tile address outside the zoom's range or an unknown datum.
        NotFoundError
            An unknown layer or level.
        """
        _check_address(z, x, y)
        if datum not in DATUMS:
            raise InputError(f"datum must be one of {', '.join(DATUMS)}", field="datum")
        indexes = self._indexes.get()
        places = self._clock.current().places if self._clock is not None else 0
        generation = (indexes.revision, indexes.start, places)
        key = (layer, level, datum, z, x, y, visible)
        with self._lock:
            if generation != self._generation:
                # Boundaries or places changed: every tile is stale.
                self._generation = generation
                self._sources.clear()
                self._tiles.clear()
            cached = self._tiles.get(key)
            if cached is not None:
                self._tiles.move_to_end(key)
                return cached, _etag(cached)
            source = self._source(indexes.find(layer, level), layer, level, datum)
        data = _encode(source, level, z, x, y, visible)
        with self._lock:
            self._tiles[key] = data
            while len(self._tiles) > self._max_tiles:
                self._tiles.popitem(last=False)
        return data, _etag(data)

    def warm(self, *, zooms: tuple[int, ...] = (12, 13, 14)) -> None:
        """Prepare every level now (households, web mercator, district-view zooms).

        Called once in the background at start-up, so that the first map
        view does not wait for the households of every unit to be counted.
        Errors are logged, never raised: the tiles are then made on demand.
        """
        try:
            indexes = self._indexes.get()
            for level in indexes.levels:
                with self._lock:
                    source = self._source(level, level.layer, level.level, "cgcs2000")
                for z in zooms:
                    source.at_zoom(z)
        except Exception:  # the first requests will try again and report
            _log.exception("preparing the vector tiles failed")

    def _source(self, found: LevelIndex | None, layer: str, level: str, datum: str) -> _Source:
        if found is None:
            raise NotFoundError(f"no level {level!r} in layer {layer!r}", field="level")
        source = self._sources.get((layer, level, datum))
        if source is None:
            households = self._households(layer) if self._households is not None else {}
            source = _Source(found, _to_mercator(found.geometries, datum), households)
            self._sources[(layer, level, datum)] = source
        return source


def _encode(
    source: _Source, level: str, z: int, x: int, y: int, visible: frozenset[str] | None
) -> bytes:
    bounds = tile_bounds(z, x, y)
    pad = (bounds[2] - bounds[0]) * BUFFER / EXTENT
    geometries, tree = source.at_zoom(z)
    hits = np.sort(
        tree.query(shapely.box(bounds[0] - pad, bounds[1] - pad, bounds[2] + pad, bounds[3] + pad))
    )
    codes = source.level.codes
    if visible is not None:
        hits = hits[np.fromiter((codes[i] in visible for i in hits), dtype=bool, count=len(hits))]
    clipped = shapely.clip_by_rect(
        geometries[hits], bounds[0] - pad, bounds[1] - pad, bounds[2] + pad, bounds[3] + pad
    )
    properties = [
        {
            "code": codes[i],
            "name": source.level.names[i],
            "parent_code": source.level.parents[i],
            "households": source.households.get(codes[i]),
        }
        for i in hits
    ]
    pixels = to_tile_pixels(np.asarray(clipped, dtype=object), bounds, extent=EXTENT)
    return encode_tile([TileLayer(level, pixels, properties, extent=EXTENT)])


def _to_mercator(geometries: NDArray[np.object_], datum: str) -> NDArray[np.object_]:
    def project(coords: NDArray[np.float64]) -> NDArray[np.float64]:
        lon, lat = coords[:, 0], coords[:, 1]
        if datum == "gcj02":
            lon, lat = datums.wgs84_to_gcj02(lon, lat)
        elif datum == "bd09":
            lon, lat = datums.wgs84_to_bd09(lon, lat)
        out = np.empty_like(coords)
        out[:, 0] = np.radians(lon) * _EARTH_RADIUS
        out[:, 1] = np.log(np.tan(np.pi / 4 + np.radians(np.clip(lat, -85.06, 85.06)) / 2))
        out[:, 1] *= _EARTH_RADIUS
        return out

    return np.asarray(shapely.transform(geometries, project), dtype=object)


def _etag(data: bytes) -> str:
    return '"' + hashlib.blake2b(data, digest_size=12).hexdigest() + '"'


def _check_address(z: int, x: int, y: int) -> None:
    if not 0 <= z <= MAX_ZOOM:
        raise InputError(f"zoom must be between 0 and {MAX_ZOOM}", field="z")
    limit = 1 << z
    if not 0 <= x < limit:
        raise InputError(f"x must be between 0 and {limit - 1} at zoom {z}", field="x")
    if not 0 <= y < limit:
        raise InputError(f"y must be between 0 and {limit - 1} at zoom {z}", field="y")
