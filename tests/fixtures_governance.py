"""The governance units most tests stand on: a county, two streets, four communities.

Shared by the repository, places, locate, access and revision tests
(``load_governance``), with three buildings over them (``write_buildings``).
Degrees, EPSG:4490.
"""

from __future__ import annotations

from pathlib import Path

import geopandas as gpd
import shapely
from shapely import box

from gis.repository import Database
from gis.units import import_units

# A county split into two streets, each split into two communities (degrees, EPSG:4490):
#
#   118.50      118.55      118.60
#   +-----------+-----------+ 24.95
#   | 001001    | 002001    |
#   +-----------+-----------+ 24.925      county 350502
#   | 001002    | 002002    |             streets 350502001 (west), 350502002 (east)
#   +-----------+-----------+ 24.90       communities 350502001001 ... 350502002002
COUNTY = box(118.50, 24.90, 118.60, 24.95)
STREETS = {
    "350502001": box(118.50, 24.90, 118.55, 24.95),
    "350502002": box(118.55, 24.90, 118.60, 24.95),
}
COMMUNITIES = {
    "350502001001": box(118.50, 24.925, 118.55, 24.95),
    "350502001002": box(118.50, 24.90, 118.55, 24.925),
    "350502002001": box(118.55, 24.925, 118.60, 24.95),
    "350502002002": box(118.55, 24.90, 118.60, 24.925),
}


def frame(units: dict[str, shapely.Geometry], parent: str | None = None) -> gpd.GeoDataFrame:
    """Build a unit frame in EPSG:4490 (parent code = code prefix unless given)."""
    codes = list(units)
    return gpd.GeoDataFrame(
        {
            "code": codes,
            "name": [f"单元{c[-3:]}" for c in codes],
            "parent_code": [parent or (c[:-3] if len(c) > 6 else None) for c in codes],
            "kind": ["comprehensive"] * len(codes),
            "attributes": [{"households": 400}] * len(codes),
        },
        geometry=list(units.values()),
        crs=4490,
    )


def load_governance(db: Database, when: str = "2026-01-01") -> None:
    """Import county, streets and communities."""
    import_units(
        db,
        units=frame({"350502": COUNTY}),
        layer="governance",
        level="county",
        source="test",
        valid_from=when,
    )
    import_units(
        db, units=frame(STREETS), layer="governance", level="street", source="test", valid_from=when
    )
    import_units(
        db,
        units=frame(COMMUNITIES),
        layer="governance",
        level="community",
        source="test",
        valid_from=when,
    )


# Three buildings over the northern communities (street boundary at 118.55):
#
#   118.54         118.55         118.56
#     +-------------+-------------+ 24.94
#     |  B1 [ ]     |     [ ] B3  |
#     |        [ B2 | B2 ]        |    B2 straddles the street boundary (cut, 70/30)
#     +-------------+-------------+ 24.93
B1 = box(118.541, 24.935, 118.542, 24.936)
B2 = box(118.5493, 24.932, 118.5503, 24.933)
B3 = box(118.558, 24.935, 118.559, 24.936)


def write_buildings(tmp_path: Path, **extra: list[object]) -> Path:
    """Write B1, B2 and B3 (key, address, floors and ``extra`` columns) as GeoJSON."""
    table = {
        "key": ["B1", "B2", "B3"],
        "address": ["中山南路1号", "中山南路2号", "中山南路3号"],
        "floors": [6, 12, 3],
        **extra,
    }
    path = tmp_path / "buildings.geojson"
    gpd.GeoDataFrame(table, geometry=[B1, B2, B3], crs=4490).to_file(path)
    return path
