"""A tiny city with two grids, A and B, for jurisdiction tests.

Community 350502001001 (the north-west community of ``load_governance``)
holds grid A (甲网格, west) and grid B (乙网格, east), two micro-grids
each; one police station with beat X over A and beat Y over B. Each grid
has a building with households and a grid worker::

    118.50      118.5125     118.525     118.5375     118.55
      +-----------+-----------+-----------+-----------+ 24.95
      |  A1  [BA] |    A2     |  B1  [BB] |    B2     |
      |      grid A 甲 / beat X           grid B 乙 / beat Y
      +-----------+-----------+-----------+-----------+ 24.925
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import geopandas as gpd
import pandas as pd
from shapely import box

from gis.access import SYSTEM
from gis.places import import_buildings, import_households
from gis.repository import Database
from gis.staff import add_staff
from gis.units import import_units
from tests.fixtures_governance import load_governance

COMMUNITY = "350502001001"
GRID_A, GRID_B = "350502001001001", "350502001001002"
MICRO_A = ("350502001001001001", "350502001001001002")
MICRO_B = ("350502001001002001", "350502001001002002")
STATION, BEAT_X, BEAT_Y = "P01", "P01X", "P01Y"
WHEN = "2026-01-01"
NEW_EDGE = 118.5025  # where move_edge puts the A/B edge
Row = tuple[str, str, str | None, tuple[float, float, float, float]]


@dataclass(frozen=True)
class Secrets:
    """Everything of grid B that a grid worker of A must never see."""

    codes: tuple[str, ...]
    texts: tuple[str, ...]


B_SECRETS = Secrets(
    codes=(GRID_B, *MICRO_B, BEAT_Y),
    texts=(
        "乙网格",
        "乙微网格一",
        "乙微网格二",
        "乙责任区",
        "BB-1",
        "HB-1",
        "HB-2",
        "王乙",
        "13900000002",
    ),
)


def _units(rows: Sequence[Row]) -> gpd.GeoDataFrame:
    return gpd.GeoDataFrame(
        {
            "code": [r[0] for r in rows],
            "name": [r[1] for r in rows],
            "parent_code": [r[2] for r in rows],
            "kind": ["comprehensive"] * len(rows),
            "attributes": [{} for _ in rows],
        },
        geometry=[box(*r[3]) for r in rows],
        crs=4490,
    )


def load_two_grids(db: Database, folder: Path) -> None:
    """Load governance down to micro-grids of A and B, police beats, places and staff."""
    load_governance(db, WHEN)
    grids: list[Row] = [
        (GRID_A, "甲网格", COMMUNITY, (118.50, 24.925, 118.525, 24.95)),
        (GRID_B, "乙网格", COMMUNITY, (118.525, 24.925, 118.55, 24.95)),
    ]
    micro: list[Row] = [
        (MICRO_A[0], "甲微网格一", GRID_A, (118.50, 24.925, 118.5125, 24.95)),
        (MICRO_A[1], "甲微网格二", GRID_A, (118.5125, 24.925, 118.525, 24.95)),
        (MICRO_B[0], "乙微网格一", GRID_B, (118.525, 24.925, 118.5375, 24.95)),
        (MICRO_B[1], "乙微网格二", GRID_B, (118.5375, 24.925, 118.55, 24.95)),
    ]
    for level, rows in (("grid", grids), ("micro_grid", micro)):
        import_units(
            db,
            units=_units(rows),
            layer="governance",
            level=level,
            source="fixture",
            valid_from=WHEN,
        )
    stations: list[Row] = [(STATION, "城东派出所", None, (118.50, 24.90, 118.60, 24.95))]
    beats: list[Row] = [
        (BEAT_X, "甲责任区", STATION, (118.50, 24.90, 118.525, 24.95)),
        (BEAT_Y, "乙责任区", STATION, (118.525, 24.90, 118.60, 24.95)),
    ]
    for level, rows in (("station", stations), ("beat", beats)):
        import_units(
            db, units=_units(rows), layer="police", level=level, source="fixture", valid_from=WHEN
        )
    buildings = folder / "buildings.geojson"
    gpd.GeoDataFrame(
        {
            "key": ["BA-1", "BB-1"],
            "address": ["中山南路1号", "中山南路2号"],
            "floors": [6, 6],
        },
        geometry=[box(118.505, 24.935, 118.506, 24.936), box(118.530, 24.935, 118.531, 24.936)],
        crs=4490,
    ).to_file(buildings)
    import_buildings(db, path=buildings, actor=SYSTEM)
    households = folder / "households.csv"
    pd.DataFrame(
        [("HA-1", "BA-1", 3), ("HA-2", "BA-1", 2), ("HB-1", "BB-1", 4), ("HB-2", "BB-1", 1)],
        columns=["key", "building_key", "persons"],
    ).to_csv(households, index=False)
    import_households(db, path=households, actor=SYSTEM)
    add_staff(
        db,
        layer="governance",
        unit_code=GRID_A,
        role="grid_worker",
        name="李甲",
        phone="13900000001",
    )
    add_staff(
        db,
        layer="governance",
        unit_code=GRID_B,
        role="grid_worker",
        name="王乙",
        phone="13900000002",
    )


def move_edge(db: Database, when: Any) -> None:
    """Move the A/B grid edge west to ``NEW_EDGE`` from ``when`` (micro-grids follow).

    Building BA-1 (in A1) then lies in grid B.
    """
    grids = {
        GRID_A: (118.50, 24.925, NEW_EDGE, 24.95),
        GRID_B: (NEW_EDGE, 24.925, 118.55, 24.95),
    }
    micro = {
        MICRO_A[0]: (118.50, 24.925, 118.50125, 24.95),
        MICRO_A[1]: (118.50125, 24.925, NEW_EDGE, 24.95),
        MICRO_B[0]: (NEW_EDGE, 24.925, 118.5375, 24.95),
        MICRO_B[1]: (118.5375, 24.925, 118.55, 24.95),
    }

    def level(rows: dict[str, tuple[float, float, float, float]]) -> gpd.GeoDataFrame:
        codes = list(rows)
        return gpd.GeoDataFrame(
            {
                "code": codes,
                "name": [f"单元{c[-3:]}" for c in codes],
                "parent_code": [c[:-3] for c in codes],
                "kind": ["comprehensive"] * len(codes),
                "attributes": [{} for _ in codes],
            },
            geometry=[box(*b) for b in rows.values()],
            crs=4490,
        )

    # Grids and micro-grids change together, in one version.
    import_units(
        db,
        units=level(grids),
        layer="governance",
        level="grid",
        source="t",
        valid_from=when,
        levels_below={"micro_grid": level(micro)},
    )
