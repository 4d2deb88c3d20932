"""Incoming coordinates: declared CRS/datum in, CGCS2000 lon/lat out, bad values refused."""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import ArrayLike, NDArray

from gis import datum
from gis.crs import STORAGE_CRS, CoordinateSystem, parse_crs, transformer
from gis.errors import InputError

FloatArray = NDArray[np.float64]
# WGS84 and CGCS2000 agree to centimetres; PROJ's transformation between them
# is the identity (a "ballpark" null transformation), so skip the call.
_IDENTITY_EPSG = {4326, 4490}


def _same_as_storage(system: CoordinateSystem) -> bool:
    return system.epsg in _IDENTITY_EPSG


def point_to_storage(x: float, y: float, system: CoordinateSystem) -> tuple[float, float]:
    """Convert one point (see :func:`to_storage_lonlat`); raises on bad input.

    WGS84/CGCS2000 points skip numpy entirely: this is the dispatch hot path.
    """
    if system.datum is None and _same_as_storage(system):
        if not (math.isfinite(x) and math.isfinite(y) and abs(x) <= 180.0 and abs(y) <= 90.0):
            to_storage_lonlat([x], [y], system)  # raises the detailed error
        return float(x), float(y)
    lon, lat, _ = to_storage_lonlat([x], [y], system)
    return float(lon[0]), float(lat[0])


def to_storage_lonlat(
    x: ArrayLike, y: ArrayLike, crs: str | CoordinateSystem = "cgcs2000", *, strict: bool = True
) -> tuple[FloatArray, FloatArray, NDArray[np.bool_]]:
    """Convert coordinates in a declared CRS to CGCS2000 longitude/latitude.

    Parameters
    ----------
    x, y : array_like
        Longitude/latitude (geographic CRSs, GCJ-02, BD-09) or easting/northing.
    crs : str or CoordinateSystem
        ``wgs84``, ``cgcs2000``, ``gcj02``, ``bd09`` or any EPSG code. GCJ-02 and
        BD-09 are converted with the iterative inverse inside China only.
    strict : bool, default True
        Raise on the first bad coordinate (single requests); when False, bad
        rows are flagged in the returned mask and set to NaN (bulk work).

    Returns
    -------
    lon, lat : ndarray
        CGCS2000 degrees.
    ok : ndarray of bool
        Which rows were usable.

    Examples
    --------
    >>> lon, lat, ok = to_storage_lonlat([118.5845], [24.9070], "gcj02")
    >>> round(float(lon[0]), 4), round(float(lat[0]), 4), bool(ok[0])
    (118.58, 24.91, True)
    """
    system = parse_crs(crs) if not isinstance(crs, CoordinateSystem) else crs
    xs = np.asarray(x, dtype=np.float64).reshape(-1)
    ys = np.asarray(y, dtype=np.float64).reshape(-1)
    if xs.shape != ys.shape:
        raise InputError(f"x and y differ in length ({len(xs)} != {len(ys)})", field="x")
    ok = np.isfinite(xs) & np.isfinite(ys)
    geographic = system.datum is not None or system.crs.is_geographic
    if geographic:
        ok &= (np.abs(xs) <= 180.0) & (np.abs(ys) <= 90.0)
    if strict and not ok.all():
        bad = int(np.flatnonzero(~ok)[0])
        what = "longitude/latitude" if geographic else "coordinate"
        raise InputError(
            f"{what} ({xs[bad]}, {ys[bad]}) is not usable: need finite numbers"
            + (", |longitude| <= 180 and |latitude| <= 90" if geographic else ""),
            field="x" if not np.isfinite(xs[bad]) or abs(xs[bad]) > 180 else "y",
        )
    xs = np.where(ok, xs, np.nan)
    ys = np.where(ok, ys, np.nan)
    if system.datum == "gcj02":
        xs, ys = datum.gcj02_to_wgs84(xs, ys)
    elif system.datum == "bd09":
        xs, ys = datum.bd09_to_wgs84(xs, ys)
    if system.datum is None and not _same_as_storage(system):
        xs, ys = transformer(system.crs, STORAGE_CRS).transform(xs, ys)
        xs, ys = np.asarray(xs, dtype=np.float64), np.asarray(ys, dtype=np.float64)
        converted = np.isfinite(xs) & np.isfinite(ys)
        if strict and not converted[ok].all():
            raise InputError(f"coordinates are outside the area of {system.name}", field="x")
        ok &= converted
    return xs, ys, ok
