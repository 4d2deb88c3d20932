"""Geometry rules: type and GEOS validity. Returns which rows are usable for overlay."""

from __future__ import annotations

import re

import numpy as np
import shapely
from numpy.typing import NDArray

from gis.validate._report import Locator, Problem, ValidationReport

_POLYGONAL = {"Polygon", "MultiPolygon"}
_REASON_POINT = re.compile(r"\[(-?[\d.eE+-]+)\s+(-?[\d.eE+-]+)")


def check_geometries(
    codes: list[str],
    storage: NDArray[np.object_],
    projected: NDArray[np.object_],
    locator: Locator,
    report: ValidationReport,
) -> NDArray[np.bool_]:
    """Check type and validity; return a mask of rows usable in overlays.

    ``storage`` holds the geometries in EPSG:4490 (validity is judged there,
    because that is what gets stored); ``projected`` the same in metres.
    """
    usable = np.ones(len(codes), dtype=bool)
    types = shapely.get_type_id(storage)
    for i, geometry in enumerate(storage):
        code = codes[i]
        if geometry is None or types[i] < 0:
            usable[i] = False
            report.problems.append(
                Problem(
                    "invalid_geometry", (code,), None, None, None, f"unit {code!r} has no geometry"
                )
            )
            continue
        if geometry.geom_type not in _POLYGONAL:
            usable[i] = False
            point = shapely.point_on_surface(geometry) if not geometry.is_empty else None
            report.problems.append(
                Problem(
                    "wrong_geometry_type",
                    (code,),
                    round(point.x, 7) if point is not None else None,
                    round(point.y, 7) if point is not None else None,
                    None,
                    f"unit {code!r} is a {geometry.geom_type}, expected Polygon or MultiPolygon",
                    geometry=geometry,
                )
            )
            continue
        if geometry.is_empty:
            usable[i] = False
            report.problems.append(
                Problem("invalid_geometry", (code,), None, None, None, f"unit {code!r} is empty")
            )
    valid = shapely.is_valid(storage)
    for row in np.flatnonzero(usable & ~valid):
        i = int(row)
        usable[i] = False
        reason = shapely.is_valid_reason(storage[i])
        match = _REASON_POINT.search(reason)
        if match:
            lon, lat = round(float(match.group(1)), 7), round(float(match.group(2)), 7)
        else:
            point = shapely.point_on_surface(shapely.make_valid(storage[i]))
            lon, lat = round(point.x, 7), round(point.y, 7)
        area = _valid_area(locator, storage[i])
        report.problems.append(
            Problem(
                "invalid_geometry",
                (codes[i],),
                lon,
                lat,
                area,
                f"unit {codes[i]!r} is not a valid polygon: {reason}",
                geometry=storage[i],
            )
        )
    return usable


def _valid_area(locator: Locator, geometry: object) -> float | None:
    # GEOS computes areas of invalid polygons with signed-ring arithmetic;
    # measure the repaired shape instead so the number means something.
    try:
        return round(locator.area(shapely.make_valid(geometry)), 3)
    except shapely.errors.GEOSException:
        return None
