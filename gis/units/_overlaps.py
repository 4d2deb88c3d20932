"""Which units of the other layers cover a unit, and with what share (同格 at a glance).

A grid's panel answers "which police beat, which work area is this?" — for
every other layer and level, the units overlapping it by more than a sliver,
with the share of the unit's area each one covers. Areas are measured in the
local CGCS2000 Gauss-Kruger zone, never in degrees.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import numpy as np
import shapely

from gis.access.jurisdiction import Jurisdiction
from gis.crs import STORAGE_CRS, local_projected_crs, transformer
from gis.repository import Database
from gis.times import parse_time

__all__ = ["MIN_SHARE", "unit_overlaps"]

#: Overlaps under this share of the unit (and under :data:`MIN_AREA_M2`) are
#: digitising slivers, not coverage.
MIN_SHARE = 0.001
MIN_AREA_M2 = 1.0
#: More units of one level over one unit than this is not a panel's business.
_LIMIT = 1000


def unit_overlaps(
    db: Database,
    *,
    code: str,
    layer: str | None = None,
    at: str | datetime | None = None,
    jurisdiction: Jurisdiction | None = None,
) -> dict[str, Any]:
    """Return the unit and, per other layer and level, the units covering part of it.

    Parameters
    ----------
    db : Database
        The registry.
    code, layer : str
        The unit (``layer`` when the code exists in several layers).
    at : str or datetime, optional
        Versions valid at this time (default now).
    jurisdiction : Jurisdiction, optional
        The caller's: a unit it may not see answers like a missing one, and
        only units of other layers it may see are listed (their ground inside
        its area).

    Returns
    -------
    dict
        ``layer``, ``code``, ``area_m2`` and ``overlaps``: records with
        ``layer``, ``level``, ``code``, ``name``, ``area_m2`` and ``share``
        (of the unit's area), largest share first within each level.
    """
    from gis.units import list_layers, unit_detail, units_page  # the package imports this module

    when = parse_time(at, field="at")
    unit = unit_detail(db, code=code, layer=layer, at=when, jurisdiction=jurisdiction)["unit"]
    own_layer = str(unit["layer"])
    geometry = unit.geometry
    point = geometry.representative_point()
    to_metres = transformer(STORAGE_CRS, local_projected_crs(point.x, point.y))
    projected = shapely.transform(geometry, to_metres.transform, interleaved=False)
    area = float(projected.area)
    found: list[dict[str, Any]] = []
    for summary in list_layers(db, at=when, jurisdiction=jurisdiction):
        if summary.name == own_layer:
            continue
        for level in summary.levels:
            if level.unit_count == 0:
                continue
            frame, _ = units_page(
                db,
                layer=summary.name,
                level=level.name,
                bbox=geometry.bounds,
                at=when,
                limit=_LIMIT,
                jurisdiction=jurisdiction,
            )
            if frame.empty:
                continue
            others = shapely.transform(
                np.asarray(frame.geometry.values), to_metres.transform, interleaved=False
            )
            shared = shapely.area(shapely.intersection(others, projected))
            rows = []
            for (_, row), piece in zip(frame.iterrows(), shared, strict=True):
                share = float(piece) / area if area > 0 else 0.0
                if piece < MIN_AREA_M2 or share < MIN_SHARE:
                    continue
                rows.append(
                    {
                        "layer": summary.name,
                        "level": level.name,
                        "code": row["code"],
                        "name": row["name"],
                        "area_m2": round(float(piece), 1),
                        "share": round(share, 4),
                    }
                )
            found.extend(sorted(rows, key=lambda r: -r["share"]))
    return {"layer": own_layer, "code": code, "area_m2": round(area, 1), "overlaps": found}
