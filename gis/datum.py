"""Chinese map datums: GCJ-02 and BD-09 to and from WGS84/CGCS2000.

GCJ-02 (the "Mars" datum used by Amap and Tencent) and BD-09 (Baidu) are
deliberate, non-linear offsets of WGS84 that apply only inside China. They
are not CRSs PROJ knows, so conversions are done here, explicitly, on numpy
arrays. The inverse directions have no closed form: they are solved by
fixed-point iteration until the forward transform reproduces the input to
better than 1e-9 degrees (about 0.1 mm).

CGCS2000 and WGS84 agree to centimetres, so GCJ-02/BD-09 are converted to
CGCS2000 through the WGS84 formulas.

Examples
--------
>>> import numpy as np
>>> lon, lat = gcj02_to_wgs84(np.array([118.5894]), np.array([24.9088]))
>>> back = wgs84_to_gcj02(lon, lat)
>>> bool(abs(back[0][0] - 118.5894) < 1e-9 and abs(back[1][0] - 24.9088) < 1e-9)
True
>>> wgs84_to_gcj02(np.array([2.35]), np.array([48.85]))  # Paris: untouched
(array([2.35]), array([48.85]))
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, NDArray

__all__ = [
    "bd09_to_gcj02",
    "bd09_to_wgs84",
    "gcj02_to_bd09",
    "gcj02_to_wgs84",
    "in_china",
    "wgs84_to_bd09",
    "wgs84_to_gcj02",
]

FloatArray = NDArray[np.float64]

# Krasovsky 1940 ellipsoid, as used by the GCJ-02 algorithm.
_A = 6378245.0
_EE = 0.00669342162296594323
_X_PI = np.pi * 3000.0 / 180.0
_MAX_ITERATIONS = 30
_TOLERANCE_DEG = 1e-10


def in_china(lon: ArrayLike, lat: ArrayLike) -> NDArray[np.bool_]:
    """Return which points lie inside the rectangle where the offsets apply.

    The rectangle is the one the GCJ-02 algorithm itself uses; outside it the
    datums equal WGS84.

    Examples
    --------
    >>> in_china([118.6, 2.35], [24.9, 48.85]).tolist()
    [True, False]
    """
    x = np.asarray(lon, dtype=np.float64)
    y = np.asarray(lat, dtype=np.float64)
    return (x >= 72.004) & (x <= 137.8347) & (y >= 0.8293) & (y <= 55.8271)


def _offset(lon: FloatArray, lat: FloatArray) -> tuple[FloatArray, FloatArray]:
    x = lon - 105.0
    y = lat - 35.0
    sqrt_abs_x = np.sqrt(np.abs(x))
    dlat = -100.0 + 2.0 * x + 3.0 * y + 0.2 * y * y + 0.1 * x * y + 0.2 * sqrt_abs_x
    dlat += (20.0 * np.sin(6.0 * x * np.pi) + 20.0 * np.sin(2.0 * x * np.pi)) * 2.0 / 3.0
    dlat += (20.0 * np.sin(y * np.pi) + 40.0 * np.sin(y / 3.0 * np.pi)) * 2.0 / 3.0
    dlat += (160.0 * np.sin(y / 12.0 * np.pi) + 320.0 * np.sin(y * np.pi / 30.0)) * 2.0 / 3.0
    dlon = 300.0 + x + 2.0 * y + 0.1 * x * x + 0.1 * x * y + 0.1 * sqrt_abs_x
    dlon += (20.0 * np.sin(6.0 * x * np.pi) + 20.0 * np.sin(2.0 * x * np.pi)) * 2.0 / 3.0
    dlon += (20.0 * np.sin(x * np.pi) + 40.0 * np.sin(x / 3.0 * np.pi)) * 2.0 / 3.0
    dlon += (150.0 * np.sin(x / 12.0 * np.pi) + 300.0 * np.sin(x / 30.0 * np.pi)) * 2.0 / 3.0
    rad_lat = lat / 180.0 * np.pi
    magic = 1.0 - _EE * np.sin(rad_lat) ** 2
    sqrt_magic = np.sqrt(magic)
    dlat = (dlat * 180.0) / ((_A * (1.0 - _EE)) / (magic * sqrt_magic) * np.pi)
    dlon = (dlon * 180.0) / (_A / sqrt_magic * np.cos(rad_lat) * np.pi)
    return dlon, dlat


def _as_arrays(lon: ArrayLike, lat: ArrayLike) -> tuple[FloatArray, FloatArray]:
    x = np.array(lon, dtype=np.float64, copy=True, ndmin=1)
    y = np.array(lat, dtype=np.float64, copy=True, ndmin=1)
    if x.shape != y.shape:
        raise ValueError(f"lon and lat differ in shape: {x.shape} != {y.shape}")
    return x, y


def wgs84_to_gcj02(lon: ArrayLike, lat: ArrayLike) -> tuple[FloatArray, FloatArray]:
    """Convert WGS84 (or CGCS2000) longitude/latitude to GCJ-02.

    Points outside China are returned unchanged.

    Examples
    --------
    >>> x, y = wgs84_to_gcj02([118.58], [24.91])
    >>> round(float(x[0]), 4), round(float(y[0]), 4)
    (118.5845, 24.907)
    """
    x, y = _as_arrays(lon, lat)
    inside = in_china(x, y)
    dlon, dlat = _offset(x[inside], y[inside])
    x[inside] += dlon
    y[inside] += dlat
    return x, y


def gcj02_to_wgs84(lon: ArrayLike, lat: ArrayLike) -> tuple[FloatArray, FloatArray]:
    """Convert GCJ-02 longitude/latitude to WGS84 by iterating the forward map.

    Points outside China are returned unchanged. The result reproduces the
    input through :func:`wgs84_to_gcj02` to better than 1e-9 degrees.
    """
    gx, gy = _as_arrays(lon, lat)
    x, y = gx.copy(), gy.copy()
    inside = in_china(gx, gy)
    tx, ty = gx[inside], gy[inside]
    wx, wy = tx.copy(), ty.copy()
    for _ in range(_MAX_ITERATIONS):
        dlon, dlat = _offset(wx, wy)
        ex = wx + dlon - tx
        ey = wy + dlat - ty
        wx -= ex
        wy -= ey
        if np.all(np.abs(ex) < _TOLERANCE_DEG) and np.all(np.abs(ey) < _TOLERANCE_DEG):
            break
    x[inside], y[inside] = wx, wy
    return x, y


def gcj02_to_bd09(lon: ArrayLike, lat: ArrayLike) -> tuple[FloatArray, FloatArray]:
    """Convert GCJ-02 longitude/latitude to BD-09 (points outside China unchanged)."""
    gx, gy = _as_arrays(lon, lat)
    inside = in_china(gx, gy)
    x, y = gx[inside], gy[inside]
    z = np.sqrt(x * x + y * y) + 0.00002 * np.sin(y * _X_PI)
    theta = np.arctan2(y, x) + 0.000003 * np.cos(x * _X_PI)
    gx[inside] = z * np.cos(theta) + 0.0065
    gy[inside] = z * np.sin(theta) + 0.006
    return gx, gy


def bd09_to_gcj02(lon: ArrayLike, lat: ArrayLike) -> tuple[FloatArray, FloatArray]:
    """Convert BD-09 longitude/latitude to GCJ-02 by iterating the forward map."""
    bx, by = _as_arrays(lon, lat)
    x, y = bx.copy(), by.copy()
    inside = in_china(bx, by)
    tx, ty = bx[inside], by[inside]
    gx, gy = tx - 0.0065, ty - 0.006
    for _ in range(_MAX_ITERATIONS):
        fx, fy = gcj02_to_bd09(gx, gy)
        ex, ey = fx - tx, fy - ty
        gx -= ex
        gy -= ey
        if np.all(np.abs(ex) < _TOLERANCE_DEG) and np.all(np.abs(ey) < _TOLERANCE_DEG):
            break
    x[inside], y[inside] = gx, gy
    return x, y


def wgs84_to_bd09(lon: ArrayLike, lat: ArrayLike) -> tuple[FloatArray, FloatArray]:
    """Convert WGS84 (or CGCS2000) longitude/latitude to BD-09."""
    return gcj02_to_bd09(*wgs84_to_gcj02(lon, lat))


def bd09_to_wgs84(lon: ArrayLike, lat: ArrayLike) -> tuple[FloatArray, FloatArray]:
    """Convert BD-09 longitude/latitude to WGS84 (or CGCS2000)."""
    return gcj02_to_wgs84(*bd09_to_gcj02(lon, lat))
