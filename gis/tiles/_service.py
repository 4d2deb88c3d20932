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

import geopandas as gpd
import numpy as np
import shapely
from numpy.typing import NDArray
from shapely.geometry.base import BaseGeometry

from gis import datum as datums
from gis._prepared import prepare_for_points
from gis.errors import InputError, NotFoundError
from gis.locate._indexes import IndexCache, IndexSet, LevelIndex
from gis.places import BasemapPlaces
from gis.revisions import RevisionClock
from gis.tiles._mvt import TileLayer, encode_tile, to_tile_pixels

_log = logging.getLogger(__name__)

__all__ = ["DATUMS", "MAX_ZOOM", "PLACES_MIN_ZOOM", "TileService", "tile_bounds"]

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
#: Footprints from this zoom on (a street's width is a few pixels), POIs from one more.
PLACES_MIN_ZOOM = 14
_POIS_MIN_ZOOM = 15


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
    label_points: tuple[NDArray[np.object_], shapely.STRtree] | None = None

    def labels(self) -> tuple[NDArray[np.object_], shapely.STRtree]:
        """One label point per unit (inside it, far from its edges), made once."""
        if self.label_points is None:
            points = np.asarray([_label_point(g) for g in self.mercator], dtype=object)
            self.label_points = (points, shapely.STRtree(points))
        return self.label_points

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


@dataclass
class _PlacesSource:
    """Footprints and POIs in web mercator, with each one's unit per layer."""

    buildings: NDArray[np.object_]
    building_tree: shapely.STRtree
    building_units: dict[str, NDArray[np.object_]]
    keys: NDArray[np.object_]
    use: NDArray[np.object_]
    floors: NDArray[np.object_]
    pois: NDArray[np.object_]
    poi_tree: shapely.STRtree
    poi_units: dict[str, NDArray[np.object_]]
    poi_name: NDArray[np.object_]
    poi_category: NDArray[np.object_]
    streets: NDArray[np.object_]
    street_tree: shapely.STRtree
    street_name: NDArray[np.object_]
    street_class: NDArray[np.object_]


def _visible_rows(
    rows: NDArray[np.intp],
    units: dict[str, NDArray[np.object_]],
    visible: Mapping[str, frozenset[str]] | None,
) -> NDArray[np.intp]:
    """Rows whose unit, in some layer, is one the caller may see (all when None)."""
    if visible is None:
        return rows
    keep = np.zeros(len(rows), dtype=bool)
    for layer, codes in visible.items():
        column = units.get(layer)
        if column is None or not codes:
            continue
        keep |= np.fromiter((column[i] in codes for i in rows), dtype=bool, count=len(rows))
    return rows[keep]


class TileService:
    """Encodes and caches the tiles of every layer and level.

    Parameters
    ----------
    indexes : IndexCache
        The locate service's indexes (one per level, shared): tiles follow
        boundary changes exactly when locating does.
    households : callable, optional
        ``households(layer) -> {code: households}`` for the tiles' property.
    places : callable, optional
        ``places(layers) -> BasemapPlaces``: footprints and POIs for the basemap.
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
        places: Callable[[list[str]], BasemapPlaces] | None = None,
        clock: RevisionClock | None = None,
        max_tiles: int = 4096,
    ) -> None:
        self._indexes = indexes
        self._clock = clock
        self._households = households
        self._places = places
        self._places_sources: dict[str, _PlacesSource] = {}
        self._areas: dict[tuple[int, str], tuple[BaseGeometry, BaseGeometry]] = {}
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
        partial: frozenset[str] = frozenset(),
        area: BaseGeometry | None = None,
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
        partial, area : optional
            Units seen only where they overlap the caller's ``area`` (EPSG:4490):
            drawn cut to it (another layer's units over a street, say).
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
        key = (layer, level, datum, z, x, y, visible, partial, id(area) if partial else None)
        with self._lock:
            self._follow(indexes)
            cached = self._tiles.get(key)
            if cached is not None:
                self._tiles.move_to_end(key)
                return cached, _etag(cached)
            source = self._source(indexes.find(layer, level), layer, level, datum)
            cut = self._area(area, datum) if partial else None
        data = _encode(source, level, z, x, y, visible, partial, cut)
        with self._lock:
            self._tiles[key] = data
            while len(self._tiles) > self._max_tiles:
                self._tiles.popitem(last=False)
        return data, _etag(data)

    def places_tile(
        self,
        *,
        z: int,
        x: int,
        y: int,
        visible: Mapping[str, frozenset[str]] | None = None,
        area: BaseGeometry | None = None,
        datum: str = "cgcs2000",
    ) -> tuple[bytes, str]:
        """Return the basemap tile of the city's own places and its ETag.

        Source layers ``buildings`` (footprints with ``key``, ``use``,
        ``floors``; from zoom 14), ``streets`` (centre lines with ``name``
        and ``class``; from zoom 14) and ``pois`` (``name``, ``category``;
        from zoom 15). A caller with a jurisdiction (``visible``: codes per
        layer) gets only the places inside it, and the streets cut to its
        ``area`` (EPSG:4490). No counts of people: those are personal data.
        """
        _check_address(z, x, y)
        if datum not in DATUMS:
            raise InputError(f"datum must be one of {', '.join(DATUMS)}", field="datum")
        if z < PLACES_MIN_ZOOM or self._places is None:
            return b"", _etag(b"")
        indexes = self._indexes.get()
        scope = None if visible is None else tuple(sorted(visible.items()))
        key = ("places", datum, z, x, y, scope, None if visible is None else id(area))
        with self._lock:
            self._follow(indexes)
            cached = self._tiles.get(key)
            if cached is not None:
                self._tiles.move_to_end(key)
                return cached, _etag(cached)
            source = self._places_source(indexes, datum)
            cut = None if visible is None else self._area(area, datum)
        data = _encode_places(source, z, x, y, visible, cut)
        with self._lock:
            self._tiles[key] = data
            while len(self._tiles) > self._max_tiles:
                self._tiles.popitem(last=False)
        return data, _etag(data)

    def _area(self, area: BaseGeometry | None, datum: str) -> BaseGeometry:
        # A caller's area in web mercator, kept while its jurisdiction is (the
        # resolver caches jurisdictions, so the same object comes back).
        if area is None:
            return shapely.Polygon()
        found = self._areas.get((id(area), datum))
        if found is None or found[0] is not area:
            found = (area, _to_mercator(np.array([area], dtype=object), datum)[0])
            prepare_for_points(found[1])  # read by request threads at once
            if len(self._areas) > 256:
                self._areas.clear()
            self._areas[(id(area), datum)] = found
        return found[1]

    def _follow(self, indexes: IndexSet) -> None:
        # Boundaries or places changed: every tile and prepared source is stale.
        places = self._clock.current().places if self._clock is not None else 0
        generation = (indexes.revision, indexes.start, places)
        if generation != self._generation:
            self._generation = generation
            self._sources.clear()
            self._places_sources.clear()
            self._tiles.clear()

    def _places_source(self, indexes: IndexSet, datum: str) -> _PlacesSource:
        found = self._places_sources.get(datum)
        if found is not None:
            return found
        assert self._places is not None
        by_layer = indexes.layers()
        snapshot = self._places(list(by_layer))
        footprints = np.asarray(snapshot.buildings.geometry.values, dtype=object)
        buildings = _to_mercator(footprints, datum)
        building_units = {
            layer: column
            for layer, column in snapshot.units.items()
            if len(column) == len(buildings)
        }
        lon = snapshot.pois["lon"].to_numpy(dtype=float)
        lat = snapshot.pois["lat"].to_numpy(dtype=float)
        poi_units = {}
        for layer, levels in by_layer.items():
            lowest = max(levels, key=lambda lv: lv.rank)
            poi_units[layer] = lowest.index.lookup(lon, lat)
        pois = _to_mercator(np.asarray(shapely.points(lon, lat), dtype=object), datum)
        lines = snapshot.streets
        if lines is None:
            lines = gpd.GeoDataFrame({"name": [], "class": []}, geometry=[], crs=4490)
        streets = _to_mercator(np.asarray(lines.geometry.values, dtype=object), datum)
        found = _PlacesSource(
            buildings=buildings,
            building_tree=shapely.STRtree(buildings),
            building_units=building_units,
            keys=snapshot.buildings["key"].to_numpy(dtype=object),
            use=snapshot.buildings["use"].to_numpy(dtype=object),
            floors=snapshot.buildings["floors"].to_numpy(dtype=object),
            pois=pois,
            poi_tree=shapely.STRtree(pois),
            poi_units=poi_units,
            poi_name=snapshot.pois["name"].to_numpy(dtype=object),
            poi_category=snapshot.pois["category"].to_numpy(dtype=object),
            streets=streets,
            street_tree=shapely.STRtree(streets),
            street_name=lines["name"].to_numpy(dtype=object),
            street_class=lines["class"].to_numpy(dtype=object),
        )
        self._places_sources[datum] = found
        return found

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
    source: _Source,
    level: str,
    z: int,
    x: int,
    y: int,
    visible: frozenset[str] | None,
    partial: frozenset[str] = frozenset(),
    area: BaseGeometry | None = None,
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
    clipped = np.asarray(
        shapely.clip_by_rect(
            geometries[hits], bounds[0] - pad, bounds[1] - pad, bounds[2] + pad, bounds[3] + pad
        ),
        dtype=object,
    )
    if partial and area is not None:
        cut = np.fromiter((codes[i] in partial for i in hits), dtype=bool, count=len(hits))
        if cut.any():
            clipped[cut] = shapely.intersection(clipped[cut], area)
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
    return encode_tile(
        [
            TileLayer(level, pixels, properties, extent=EXTENT),
            _labels(source, bounds, visible, partial, area),
        ]
    )


def _label_point(geometry: BaseGeometry) -> BaseGeometry:
    # The pole of inaccessibility of the largest part: where a name fits best.
    parts = shapely.get_parts(geometry)
    if not len(parts):
        return shapely.Point()
    largest = parts[int(np.argmax(shapely.area(parts)))]
    try:
        return shapely.polylabel(largest, tolerance=max(float(np.sqrt(largest.area)) / 40, 0.5))
    except Exception:  # a degenerate ring: any point inside will do
        return shapely.point_on_surface(largest)


def _labels(
    source: _Source,
    bounds: tuple[float, float, float, float],
    visible: frozenset[str] | None,
    partial: frozenset[str],
    area: BaseGeometry | None,
) -> TileLayer:
    """Source layer ``labels``: each unit's label point, in exactly one tile.

    A unit cut by tile edges would be labelled once per piece; its one point
    lies in one tile only (bounds half-open), so the map names it once.
    """
    points, tree = source.labels()
    rows = np.sort(tree.query(shapely.box(*bounds)))
    x, y = shapely.get_x(points[rows]), shapely.get_y(points[rows])
    rows = rows[(x >= bounds[0]) & (x < bounds[2]) & (y > bounds[1]) & (y <= bounds[3])]
    codes = source.level.codes
    if visible is not None:
        keep = np.fromiter(
            (
                codes[i] in visible
                and (codes[i] not in partial or (area is not None and area.contains(points[i])))
                for i in rows
            ),
            dtype=bool,
            count=len(rows),
        )
        rows = rows[keep]
    return TileLayer(
        "labels",
        to_tile_pixels(points[rows], bounds, extent=EXTENT),
        [{"code": codes[i], "name": source.level.names[i]} for i in rows],
        extent=EXTENT,
    )


def _encode_places(
    source: _PlacesSource,
    z: int,
    x: int,
    y: int,
    visible: Mapping[str, frozenset[str]] | None,
    area: BaseGeometry | None = None,
) -> bytes:
    bounds = tile_bounds(z, x, y)
    pad = (bounds[2] - bounds[0]) * BUFFER / EXTENT
    box = (bounds[0] - pad, bounds[1] - pad, bounds[2] + pad, bounds[3] + pad)
    layers = []
    rows = _visible_rows(
        np.sort(source.building_tree.query(shapely.box(*box))), source.building_units, visible
    )
    footprints = shapely.clip_by_rect(source.buildings[rows], *box)
    layers.append(
        TileLayer(
            "buildings",
            to_tile_pixels(np.asarray(footprints, dtype=object), bounds, extent=EXTENT),
            [
                {"key": source.keys[i], "use": source.use[i], "floors": source.floors[i]}
                for i in rows
            ],
            extent=EXTENT,
        )
    )
    # Streets: public geography, but a caller with a jurisdiction sees them
    # only across its own area, like everything else on its map.
    rows = np.sort(source.street_tree.query(shapely.box(*box)))
    lines = np.asarray(shapely.clip_by_rect(source.streets[rows], *box), dtype=object)
    if area is not None:
        lines = np.asarray(shapely.intersection(lines, area), dtype=object)
    keep = ~shapely.is_empty(lines) if len(lines) else np.zeros(0, dtype=bool)
    layers.append(
        TileLayer(
            "streets",
            to_tile_pixels(lines[keep], bounds, extent=EXTENT),
            [{"name": source.street_name[i], "class": source.street_class[i]} for i in rows[keep]],
            extent=EXTENT,
        )
    )
    if z >= _POIS_MIN_ZOOM:
        rows = _visible_rows(
            np.sort(source.poi_tree.query(shapely.box(*bounds))), source.poi_units, visible
        )
        layers.append(
            TileLayer(
                "pois",
                to_tile_pixels(source.pois[rows], bounds, extent=EXTENT),
                [{"name": source.poi_name[i], "category": source.poi_category[i]} for i in rows],
                extent=EXTENT,
            )
        )
    return encode_tile(layers)


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
