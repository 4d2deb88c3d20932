"""Datum mix-ups: a layer drawn on an Amap (GCJ-02) or Baidu (BD-09) basemap, stored as CGCS2000.

Such a layer is offset as a whole from every correctly georeferenced one by
the datum's shift at that place (GCJ-02 ~270-620 m, BD-09 ~0.95-1.4 km),
which is far more than a grid's width: compared naively it gives hundreds of
overlaps or violations. The offset is measured (the translation that
minimises the symmetric difference of the two layers' outlines, starting
from the difference of their area-weighted centroids) and compared with the
GCJ-02 and BD-09 shift vectors at the layer's centre.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import shapely
from numpy.typing import NDArray

from gis import datum

__all__ = ["DatumOffset", "convert_from_datum", "detect_datum_offset"]

Objects = NDArray[np.object_]

_M_PER_DEG_LAT = 110_574.0
_M_PER_DEG_LON_EQUATOR = 111_320.0
# Under this the layers agree (digitising noise, a survey shift): no datum mix-up.
_MIN_OFFSET_M = 100.0
# How far the measured offset may be from a datum's shift and still be it.
_MATCH_FRACTION = 0.15
_MATCH_M = 40.0
_SEARCH_STEPS_M = (16.0, 8.0, 4.0, 2.0, 1.0, 0.5)
# Total areas within this ratio: the layers cover about the same ground.
_SAME_GROUND = (0.8, 1.25)
# After the translation, at most this share of the reference may differ.
_LEFT_OVER = 0.1


@dataclass(frozen=True)
class DatumOffset:
    """A layer offset from its reference by the GCJ-02 or BD-09 shift of the place.

    Attributes
    ----------
    datum : str
        ``gcj02`` or ``bd09``: the basemap the layer was drawn on.
    offset_m : tuple of float
        Measured offset of the layer from the reference, east and north, in metres.
    expected_m : tuple of float
        The datum's shift at ``lon``, ``lat``, east and north, in metres.
    lon, lat : float
        Centre of the layer (CGCS2000 degrees, as stored).
    converted : bool
        Whether the figures that come with it were computed on the layer
        converted back to CGCS2000.
    """

    datum: str
    offset_m: tuple[float, float]
    expected_m: tuple[float, float]
    lon: float
    lat: float
    converted: bool = False

    @property
    def error_m(self) -> float:
        """Distance between the measured offset and the datum's shift, in metres."""
        return float(np.hypot(*np.subtract(self.offset_m, self.expected_m)))

    @property
    def distance_m(self) -> float:
        """Length of the measured offset, in metres."""
        return float(np.hypot(*self.offset_m))

    def message(self, layer: str = "the layer", reference: str = "the reference") -> str:
        """Say what was found and what to do, for people."""
        name = {"gcj02": "GCJ-02 (Amap/Tencent)", "bd09": "BD-09 (Baidu)"}[self.datum]
        east, north = self.offset_m
        return (
            f"{layer} is offset from {reference} by {self.distance_m:.0f} m "
            f"({east:+.0f} m east, {north:+.0f} m north), the {name} shift here "
            f"(expected {self.expected_m[0]:+.0f} m, {self.expected_m[1]:+.0f} m; "
            f"off by {self.error_m:.1f} m): it was drawn on a {self.datum} basemap and "
            f"stored as CGCS2000. 坐标系混用: convert it (import with --crs {self.datum})"
        )

    def to_dict(self) -> dict[str, Any]:
        """Return the offset as plain JSON types."""
        return {
            "datum": self.datum,
            "offset_m": [round(v, 2) for v in self.offset_m],
            "expected_m": [round(v, 2) for v in self.expected_m],
            "error_m": round(self.error_m, 2),
            "distance_m": round(self.distance_m, 2),
            "lon": round(self.lon, 7),
            "lat": round(self.lat, 7),
            "converted": self.converted,
            "message": self.message(),
        }


def detect_datum_offset(reference: Objects, layer: Objects) -> DatumOffset | None:
    """Say whether ``layer`` is offset from ``reference`` by a Chinese datum shift.

    Parameters
    ----------
    reference, layer : ndarray of Geometry
        Polygons in EPSG:4490 (CGCS2000 lon/lat) covering about the same ground,
        e.g. grids and beats, or beats and the county.

    Returns
    -------
    DatumOffset or None
        The measured offset when it is the GCJ-02 or BD-09 shift at the
        layer's centre (within 15 % or 40 m) and, moved back by it, the
        outlines match (under 10 % of the reference's area differs), ``None``
        otherwise — also when the two cover different ground (total areas
        differing by more than 25 %, e.g. a partial import). Cheap when the
        layers agree: two area-weighted centroids.

    Examples
    --------
    >>> import numpy as np
    >>> from shapely import box
    >>> county = np.array([box(118.55, 24.88, 118.62, 24.94)], dtype=object)
    >>> found = detect_datum_offset(county, convert_to_datum(county, "gcj02"))
    >>> found.datum, found.error_m < 5
    ('gcj02', True)
    >>> detect_datum_offset(county, county) is None
    True
    """
    ref = _usable(reference)
    lay = _usable(layer)
    if not len(ref) or not len(lay):
        return None
    # Only layers covering about the same ground can be compared as wholes
    # (a partial import, a few units of a parent, are offset by nothing).
    ref_area, lay_area = float(shapely.area(ref).sum()), float(shapely.area(lay).sum())
    if not (_SAME_GROUND[0] * ref_area <= lay_area <= _SAME_GROUND[1] * ref_area):
        return None
    (rx, ry), (lx, ly) = _centre(ref), _centre(lay)
    if not bool(datum.in_china([lx], [ly])[0]):
        return None
    scale = np.array([_M_PER_DEG_LON_EQUATOR * np.cos(np.radians(ry)), _M_PER_DEG_LAT])
    guess = np.array([lx - rx, ly - ry]) * scale
    if np.hypot(*guess) < _MIN_OFFSET_M:
        return None
    candidates = {}
    for name, forward in (("gcj02", datum.wgs84_to_gcj02), ("bd09", datum.wgs84_to_bd09)):
        fx, fy = forward([rx], [ry])
        candidates[name] = np.array([fx[0] - rx, fy[0] - ry]) * scale
    name = min(candidates, key=lambda n: float(np.hypot(*(guess - candidates[n]))))
    expected = candidates[name]
    if np.hypot(*(guess - expected)) > max(_MATCH_M, _MATCH_FRACTION * np.hypot(*expected)):
        return None
    ref_outline, lay_outline = shapely.union_all(ref), shapely.union_all(lay)
    measured, misfit = _best_translation(ref_outline, lay_outline, guess, scale)
    if np.hypot(*(measured - expected)) > max(_MATCH_M, _MATCH_FRACTION * np.hypot(*expected)):
        return None
    # Moved back, the outlines must match: what is left is noise, not ground.
    if misfit > _LEFT_OVER * float(shapely.area(ref_outline)):
        return None
    return DatumOffset(
        datum=name,
        offset_m=(float(measured[0]), float(measured[1])),
        expected_m=(float(expected[0]), float(expected[1])),
        lon=float(lx),
        lat=float(ly),
    )


def convert_from_datum(geoms: Objects, name: str) -> Objects:
    """Convert EPSG:4490 geometries that are really in ``name`` (gcj02, bd09) to CGCS2000.

    Every vertex is converted on its own, so vertices shared by two units stay shared.
    """
    inverse = {"gcj02": datum.gcj02_to_wgs84, "bd09": datum.bd09_to_wgs84}[name]
    return _transform(geoms, inverse)


def convert_to_datum(geoms: Objects, name: str) -> Objects:
    """Shift CGCS2000 geometries as a GCJ-02 (``gcj02``) or BD-09 (``bd09``) basemap draws them."""
    forward = {"gcj02": datum.wgs84_to_gcj02, "bd09": datum.wgs84_to_bd09}[name]
    return _transform(geoms, forward)


def _transform(geoms: Objects, function: Any) -> Objects:
    def apply(xy: NDArray[np.float64]) -> NDArray[np.float64]:
        x, y = function(xy[:, 0], xy[:, 1])
        return np.column_stack([x, y])

    return np.asarray(shapely.transform(np.asarray(geoms, dtype=object), apply), dtype=object)


def _usable(geoms: Objects) -> Objects:
    geoms = np.asarray(geoms, dtype=object)
    ok = ~shapely.is_missing(geoms)
    ok[ok] = ~shapely.is_empty(geoms[ok]) & shapely.is_valid(geoms[ok])
    return geoms[ok]


def _centre(geoms: Objects) -> tuple[float, float]:
    # Area-weighted centroid of the units: the centroid of their union
    # without computing it (units of a coverage do not overlap).
    areas = shapely.area(geoms)
    centroids = shapely.centroid(geoms)
    total = float(areas.sum())
    if total <= 0:
        c = shapely.centroid(shapely.union_all(geoms))
        return float(c.x), float(c.y)
    x = float((shapely.get_x(centroids) * areas).sum() / total)
    y = float((shapely.get_y(centroids) * areas).sum() / total)
    return x, y


def _best_translation(
    reference: shapely.Geometry,
    layer: shapely.Geometry,
    start: NDArray[np.float64],
    scale: NDArray[np.float64],
) -> tuple[NDArray[np.float64], float]:
    """Find the translation (m) of ``reference`` best matching ``layer`` (pattern search)."""
    # Outlines simplified to ~1 m keep the search cheap and do not move the optimum.
    ref = shapely.simplify(reference, 1.0 / scale[1])
    lay = shapely.simplify(layer, 1.0 / scale[1])

    def misfit(t: NDArray[np.float64]) -> float:
        dx, dy = t / scale
        moved = shapely.transform(ref, lambda xy: xy + np.array([dx, dy]))
        return float(shapely.area(shapely.symmetric_difference(moved, lay)))

    best, best_cost = start.astype(float), misfit(start)
    for step in _SEARCH_STEPS_M:
        improved = True
        while improved:
            improved = False
            for d in ((step, 0.0), (-step, 0.0), (0.0, step), (0.0, -step)):
                trial = best + np.array(d)
                cost = misfit(trial)
                if cost < best_cost:
                    best, best_cost, improved = trial, cost, True
    return best, best_cost
