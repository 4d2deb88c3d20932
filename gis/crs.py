"""Coordinate reference systems: parsing user input, storage CRS, local projections.

Every coordinate the service touches has an explicit CRS. Geometries are
stored in CGCS2000 (EPSG:4490). Areas and distances are computed in a local
projected CRS: the CGCS2000 3-degree Gauss-Kruger zone inside China, a
Lambert azimuthal equal-area projection centred on the data elsewhere.

GCJ-02 and BD-09 are not CRSs PROJ knows; they are handled explicitly by
:mod:`gis.datum` and must be declared by the caller, never guessed.

Examples
--------
>>> parse_crs("gcj02").datum
'gcj02'
>>> parse_crs("EPSG:4547").crs.to_epsg()
4547
>>> local_projected_crs(118.6, 24.9).to_epsg()
4549
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass
from functools import lru_cache

import geopandas as gpd
import numpy as np
import shapely
from pyproj import CRS, Transformer
from pyproj.exceptions import CRSError

from gis import datum
from gis.errors import InputError

__all__ = [
    "STORAGE_CRS",
    "CoordinateSystem",
    "local_projected_crs",
    "parse_crs",
    "to_storage_crs",
    "transformer",
]

STORAGE_CRS = CRS.from_epsg(4490)
#: Transformers kept per thread (local Lambert projections make new pairs).
_MAX_TRANSFORMERS = 64
_OFFSET_DATUMS = ("gcj02", "bd09")
_ALIASES = {
    "wgs84": "EPSG:4326",
    "wgs-84": "EPSG:4326",
    "cgcs2000": "EPSG:4490",
    "cgcs-2000": "EPSG:4490",
    "gcj02": "gcj02",
    "gcj-02": "gcj02",
    "bd09": "bd09",
    "bd-09": "bd09",
}


@dataclass(frozen=True)
class CoordinateSystem:
    """A declared coordinate system: a PROJ CRS, or WGS84 plus a Chinese offset datum.

    Attributes
    ----------
    name : str
        What the user said, normalised (``"gcj02"``, ``"EPSG:4547"``...).
    crs : pyproj.CRS
        The CRS the coordinates are in once any offset is removed.
    datum : str or None
        ``"gcj02"`` or ``"bd09"`` when the coordinates carry that offset.
    """

    name: str
    crs: CRS
    datum: str | None = None

    def __post_init__(self) -> None:
        # Looked up once: PROJ's to_epsg() (and even hashing a CRS) is slow.
        object.__setattr__(self, "_epsg", self.crs.to_epsg())

    @property
    def epsg(self) -> int | None:
        """The EPSG code of ``crs``, or ``None``."""
        code: int | None = self.__dict__["_epsg"]
        return code


def parse_crs(value: str | int | CRS) -> CoordinateSystem:
    """Parse a CRS given as a name (wgs84, cgcs2000, gcj02, bd09), EPSG code or WKT.

    Raises
    ------
    InputError
        If the value is not a CRS PROJ or this module knows.
    """
    if isinstance(value, CRS):
        return CoordinateSystem(name=value.to_string(), crs=value)
    return _parse_text(str(value).strip())


@lru_cache(maxsize=256)
def _parse_text(text: str) -> CoordinateSystem:
    # Requests name a handful of CRSs over and over; PROJ parsing is not free.
    alias = _ALIASES.get(text.lower())
    if alias in _OFFSET_DATUMS:
        return CoordinateSystem(name=alias, crs=CRS.from_epsg(4326), datum=alias)
    try:
        crs = CRS.from_user_input(alias or (int(text) if text.isdigit() else text))
    except CRSError:
        known = ", ".join(sorted({"wgs84", "cgcs2000", "gcj02", "bd09"}))
        raise InputError(
            f"unknown CRS {text!r}: use one of {known} or an EPSG code such as EPSG:4490",
            field="crs",
        ) from None
    return CoordinateSystem(name=alias or crs.to_string(), crs=crs)


_transformers = threading.local()


def _forget_transformers() -> None:
    # A forked child starts afresh: PROJ contexts are not carried across a fork.
    global _transformers
    _transformers = threading.local()


os.register_at_fork(after_in_child=_forget_transformers)


def _srs(crs: object) -> str:
    return crs.srs if isinstance(crs, CRS) else repr(crs)


def transformer(source: CRS, target: CRS) -> Transformer:
    """Return a PROJ transformer with x = longitude/easting, always.

    Made once per pair of CRSs and thread: PROJ takes a tenth of a second
    or more to choose the operation (a weekly schedule routes dozens of
    days, each asking again), and a transformer is not shared between
    threads (each has its own PROJ context).
    """
    cache: dict[tuple[str, str], Transformer] | None = getattr(_transformers, "cache", None)
    if cache is None:
        cache = _transformers.cache = {}
    # ``srs`` is the text the CRS was made from: cheap, unlike hashing a CRS.
    key = (_srs(source), _srs(target))
    found = cache.get(key)
    if found is None:
        if len(cache) >= _MAX_TRANSFORMERS:
            cache.clear()
        found = cache[key] = Transformer.from_crs(source, target, always_xy=True)
    return found


def local_projected_crs(lon: float, lat: float) -> CRS:
    """Choose a projected CRS for measuring areas and distances around a point.

    Inside China: the CGCS2000 3-degree Gauss-Kruger zone whose central
    meridian is nearest (EPSG:4534-4554, no zone prefix on eastings).
    Elsewhere: a Lambert azimuthal equal-area projection centred on the point.
    """
    if bool(datum.in_china([lon], [lat])[0]) and 73.5 <= lon <= 136.5:
        central = int(np.clip(round(lon / 3.0) * 3, 75, 135))
        return CRS.from_epsg(4534 + (central - 75) // 3)
    return CRS.from_proj4(
        f"+proj=laea +lat_0={lat:.6f} +lon_0={lon:.6f} +ellps=GRS80 +units=m +no_defs"
    )


def _offset_to_wgs84(geometries: np.ndarray, offset: str) -> np.ndarray:
    inverse = datum.gcj02_to_wgs84 if offset == "gcj02" else datum.bd09_to_wgs84

    def convert(coords: np.ndarray) -> np.ndarray:
        x, y = inverse(coords[:, 0], coords[:, 1])
        return np.column_stack([x, y])

    return shapely.transform(geometries, convert)


def to_storage_crs(
    frame: gpd.GeoDataFrame, *, declared: CoordinateSystem | None = None
) -> gpd.GeoDataFrame:
    """Return ``frame`` in CGCS2000 (EPSG:4490).

    Parameters
    ----------
    frame : GeoDataFrame
        Data with a CRS, or without one when ``declared`` is given.
    declared : CoordinateSystem, optional
        The CRS the caller declares; required for GCJ-02/BD-09 and for data
        without a CRS. A declared CRS that contradicts the file's is an error.

    Raises
    ------
    InputError
        With ``rule="crs_missing"`` when neither the data nor the caller says.
    """
    if declared is None:
        if frame.crs is None:
            raise InputError(
                "the data has no CRS: declare one with --crs (e.g. --crs EPSG:4490, "
                "--crs wgs84, --crs gcj02)",
                rule="crs_missing",
            )
        check_plausible(frame, CRS(frame.crs))
        return _to_storage(frame)
    if frame.crs is not None and declared.datum is None and not CRS(frame.crs).equals(declared.crs):
        raise InputError(
            f"the file says its CRS is {CRS(frame.crs).to_string()} but --crs says "
            f"{declared.name}; drop --crs or fix the file",
            field="crs",
        )
    check_plausible(frame, declared.crs)
    if declared.datum is not None:
        frame = frame.set_crs(declared.crs, allow_override=True)
        converted = _offset_to_wgs84(np.asarray(frame.geometry.values), declared.datum)
        frame = frame.set_geometry(gpd.GeoSeries(converted, index=frame.index, crs=declared.crs))
        return _to_storage(frame)
    return _to_storage(frame.set_crs(declared.crs, allow_override=True))


def check_plausible(frame: gpd.GeoDataFrame, crs: CRS) -> None:
    """Refuse coordinates that cannot be in ``crs`` (rule ``crs_mismatch``).

    Metres labelled with a geographic CRS (x = 500,000 "degrees"), degrees
    labelled with a projected one (a district 0.1 "m" wide near 0°, 0°), and
    data outside the area ``crs`` is defined for are mix-ups of the label,
    not data to transform: transformed anyway they land off the coast of
    Africa or make PROJ fail.

    Examples
    --------
    >>> from shapely import box
    >>> metres = gpd.GeoDataFrame(geometry=[box(500_000, 2_750_000, 500_100, 2_750_100)])
    >>> check_plausible(metres, CRS.from_epsg(4490))
    Traceback (most recent call last):
    ...
    gis.errors.InputError: coordinates up to (500100, 2750100) cannot be degrees, ...
    """
    bounds = np.asarray(frame.geometry.total_bounds, dtype=float)
    if len(frame) == 0 or not np.all(np.isfinite(bounds)):
        return
    minx, miny, maxx, maxy = bounds
    name = crs.to_string()
    if crs.is_geographic:
        if minx < -180 or maxx > 180 or miny < -90 or maxy > 90:
            raise InputError(
                f"coordinates up to ({maxx:.0f}, {maxy:.0f}) cannot be degrees, but the data "
                f"says {name}: they look like metres; declare the projected CRS they are in "
                "(e.g. --crs EPSG:4549, CGCS2000 3-degree Gauss-Kruger CM 120E)",
                rule="crs_mismatch",
                field="crs",
            )
        return
    looks_like_degrees = -180 <= minx <= maxx <= 180 and -90 <= miny <= maxy <= 90
    if looks_like_degrees and maxx - minx < 10 and maxy - miny < 10:
        raise InputError(
            f"coordinates such as ({(minx + maxx) / 2:.4f}, {(miny + maxy) / 2:.4f}) look like "
            f"degrees, but the data says {name} (metres): the units would be a few metres "
            "wide near 0°, 0°; declare --crs EPSG:4490 (CGCS2000) or --crs wgs84",
            rule="crs_mismatch",
            field="crs",
        )
    area = crs.area_of_use
    if area is None:
        return
    try:
        lon, lat = transformer(crs, STORAGE_CRS).transform(
            [minx, maxx, minx, maxx], [miny, miny, maxy, maxy]
        )
    except Exception:  # PROJ cannot place them at all: surely outside
        lon, lat = [float("nan")], [float("nan")]
    lon_a, lat_a = np.asarray(lon, dtype=float), np.asarray(lat, dtype=float)
    margin = 1.0  # degrees: data just over a zone edge is common and harmless
    inside = (
        np.all(np.isfinite(lon_a))
        and np.all(np.isfinite(lat_a))
        and lon_a.max() >= area.west - margin
        and lon_a.min() <= area.east + margin
        and lat_a.max() >= area.south - margin
        and lat_a.min() <= area.north + margin
    )
    if not inside:
        raise InputError(
            f"the data lies outside the area {name} is defined for ({area.name}: "
            f"{area.west:.1f}..{area.east:.1f}°E, {area.south:.1f}..{area.north:.1f}°N): "
            "the coordinates are probably in another CRS; declare the right one with --crs",
            rule="crs_mismatch",
            field="crs",
        )


def _to_storage(frame: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    try:
        stored = frame.to_crs(STORAGE_CRS)
    except Exception as error:  # PROJ refuses: the label does not fit the numbers
        raise InputError(
            f"the coordinates cannot be transformed from {CRS(frame.crs).to_string()} "
            f"({str(error).splitlines()[0][:120]}): is the CRS right?",
            rule="crs_mismatch",
            field="crs",
        ) from None
    bounds = np.asarray(stored.geometry.total_bounds, dtype=float)
    if len(stored) and not np.all(np.isfinite(bounds)):
        raise InputError(
            f"the coordinates do not transform from {CRS(frame.crs).to_string()} to "
            "longitude/latitude (infinite results): is the CRS right?",
            rule="crs_mismatch",
            field="crs",
        )
    return stored
