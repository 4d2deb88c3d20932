"""Data access for places: buildings, households (counts only) and points of interest."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from geoalchemy2.shape import from_shape
from sqlalchemy import delete, func, insert, select
from sqlalchemy.orm import Session

from gis.crs import STORAGE_CRS
from gis.repository._dialect import bbox_filter, geometry_as_wkb
from gis.repository.models import STORAGE_SRID, BuildingRow, HouseholdRow, MoveRow, PoiRow
from gis.types import Progress

_CHUNK = 2000


class PlaceStore:
    """Reads and writes places inside the repository's session."""

    def __init__(self, session: Session) -> None:
        self._session = session

    def upsert_buildings(
        self, frame: gpd.GeoDataFrame, *, on_progress: Progress | None = None
    ) -> int:
        """Insert buildings, replacing those with the same key; ``frame`` in EPSG:4490."""
        rows = [
            {
                "key": record["key"],
                "address": record.get("address"),
                "floors": record.get("floors"),
                "use": record.get("use"),
                "entrance_lon": record.get("entrance_lon"),
                "entrance_lat": record.get("entrance_lat"),
                "attributes": record.get("attributes") or {},
                "geom": from_shape(_multi(geometry), srid=STORAGE_SRID),
            }
            for record, geometry in zip(
                frame.drop(columns=frame.geometry.name).to_dict("records"),
                frame.geometry.values,
                strict=True,
            )
        ]
        self._replace(BuildingRow, rows, on_progress)
        return len(rows)

    def upsert_households(self, table: pd.DataFrame, *, on_progress: Progress | None = None) -> int:
        """Insert households, replacing those with the same key."""
        rows = table[["key", "building_key", "unit_no", "floor", "room", "persons"]].to_dict(
            "records"
        )
        self._replace(HouseholdRow, rows, on_progress)
        return len(rows)

    def upsert_pois(self, table: pd.DataFrame, *, on_progress: Progress | None = None) -> int:
        """Insert points of interest, replacing those with the same key."""
        columns = ["key", "name", "category", "address", "building_key", "lon", "lat", "attributes"]
        rows = table[columns].to_dict("records")
        self._replace(PoiRow, rows, on_progress)
        return len(rows)

    def store_moves(self, *, import_id: int | None, layer: str, moves: pd.DataFrame) -> int:
        """Keep the buildings an import moved (its re-assignment diff); return how many."""
        columns = [
            "key",
            "level",
            "from_unit",
            "to_unit",
            "changed_level",
            "from_code",
            "to_code",
            "households",
            "persons",
        ]
        rows = [
            {"import_id": import_id, "layer": layer, **{c: _stored(r[c]) for c in columns}}
            for r in moves[columns].to_dict("records")
        ]
        for start in range(0, len(rows), _CHUNK):
            self._session.execute(insert(MoveRow), rows[start : start + _CHUNK])
        return len(rows)

    def moves(self, *, import_id: int) -> pd.DataFrame:
        """Return the buildings an import moved."""
        query = (
            select(
                MoveRow.key,
                MoveRow.level,
                MoveRow.from_unit,
                MoveRow.to_unit,
                MoveRow.changed_level,
                MoveRow.from_code,
                MoveRow.to_code,
                MoveRow.households,
                MoveRow.persons,
            )
            .where(MoveRow.import_id == import_id)
            .order_by(MoveRow.id)
        )
        rows = self._session.execute(query).all()
        return pd.DataFrame(
            [tuple(r) for r in rows],
            columns=[
                "key",
                "level",
                "from_unit",
                "to_unit",
                "changed_level",
                "from_code",
                "to_code",
                "households",
                "persons",
            ],
        )

    def building_keys(self, keys: Sequence[str]) -> set[str]:
        """Return which of ``keys`` are stored buildings."""
        found: set[str] = set()
        unique = list(dict.fromkeys(keys))
        for start in range(0, len(unique), 5000):
            chunk = unique[start : start + 5000]
            found.update(
                self._session.scalars(select(BuildingRow.key).where(BuildingRow.key.in_(chunk)))
            )
        return found

    def buildings_frame(
        self, *, bbox: tuple[float, float, float, float] | None = None
    ) -> gpd.GeoDataFrame:
        """Return buildings (with household and person counts) as a GeoDataFrame in EPSG:4490."""
        counts = (
            select(
                HouseholdRow.building_key,
                func.count().label("households"),
                func.coalesce(func.sum(HouseholdRow.persons), 0).label("persons"),
            )
            .group_by(HouseholdRow.building_key)
            .subquery()
        )
        query = (
            select(
                BuildingRow.key,
                BuildingRow.address,
                BuildingRow.floors,
                BuildingRow.use,
                BuildingRow.entrance_lon,
                BuildingRow.entrance_lat,
                BuildingRow.attributes,
                func.coalesce(counts.c.households, 0).label("households"),
                func.coalesce(counts.c.persons, 0).label("persons"),
                geometry_as_wkb(BuildingRow.geom).label("wkb"),
            )
            .outerjoin(counts, counts.c.building_key == BuildingRow.key)
            .order_by(BuildingRow.key)
        )
        if bbox is not None:
            dialect = self._session.get_bind().dialect.name
            query = query.where(bbox_filter(dialect, BuildingRow.geom, "buildings", bbox))
        rows = self._session.execute(query).all()
        columns = [
            "key",
            "address",
            "floors",
            "use",
            "entrance_lon",
            "entrance_lat",
            "attributes",
            "households",
            "persons",
        ]
        data = {c: [getattr(r, c) for r in rows] for c in columns}
        data["attributes"] = [
            json.loads(a) if isinstance(a, str) else a for a in data["attributes"]
        ]
        geometry = (
            shapely.from_wkb(np.array([bytes(r.wkb) for r in rows], dtype=object)) if rows else []
        )
        return gpd.GeoDataFrame(data, geometry=geometry, crs=STORAGE_CRS)

    def households_table(self, *, building_keys: Sequence[str] | None = None) -> pd.DataFrame:
        """Return households (key, building, unit, floor, room, persons)."""
        query = select(
            HouseholdRow.key,
            HouseholdRow.building_key,
            HouseholdRow.unit_no,
            HouseholdRow.floor,
            HouseholdRow.room,
            HouseholdRow.persons,
        ).order_by(HouseholdRow.key)
        if building_keys is not None:
            query = query.where(HouseholdRow.building_key.in_(list(building_keys)))
        rows = self._session.execute(query).all()
        columns = ["key", "building_key", "unit_no", "floor", "room", "persons"]
        return pd.DataFrame([tuple(r) for r in rows], columns=columns)

    def pois_table(self) -> pd.DataFrame:
        """Return points of interest."""
        query = select(
            PoiRow.key,
            PoiRow.name,
            PoiRow.category,
            PoiRow.address,
            PoiRow.building_key,
            PoiRow.lon,
            PoiRow.lat,
        ).order_by(PoiRow.key)
        columns = ["key", "name", "category", "address", "building_key", "lon", "lat"]
        return pd.DataFrame([tuple(r) for r in self._session.execute(query).all()], columns=columns)

    def addresses(self) -> pd.DataFrame:
        """Return building keys, addresses and a point for each (entrance or inside)."""
        query = select(
            BuildingRow.key,
            BuildingRow.address,
            BuildingRow.entrance_lon,
            BuildingRow.entrance_lat,
            geometry_as_wkb(func.ST_PointOnSurface(BuildingRow.geom)),
        ).where(BuildingRow.address.is_not(None))
        rows = self._session.execute(query).all()
        points = (
            shapely.from_wkb(np.array([bytes(r[4]) for r in rows], dtype=object)) if rows else []
        )
        return pd.DataFrame(
            {
                "key": [r[0] for r in rows],
                "address": [r[1] for r in rows],
                "lon": [
                    r[2] if r[2] is not None else p.x for r, p in zip(rows, points, strict=True)
                ],
                "lat": [
                    r[3] if r[3] is not None else p.y for r, p in zip(rows, points, strict=True)
                ],
            }
        )

    def counts(self) -> dict[str, int]:
        """Return how many buildings, households, persons and places are stored."""
        return {
            "buildings": int(
                self._session.scalar(select(func.count()).select_from(BuildingRow)) or 0
            ),
            "households": int(
                self._session.scalar(select(func.count()).select_from(HouseholdRow)) or 0
            ),
            "persons": int(
                self._session.scalar(select(func.coalesce(func.sum(HouseholdRow.persons), 0))) or 0
            ),
            "places": int(self._session.scalar(select(func.count()).select_from(PoiRow)) or 0),
        }

    def _replace(
        self, table: Any, rows: list[dict[str, Any]], on_progress: Progress | None
    ) -> None:
        # Delete-then-insert by key: one portable upsert for both dialects,
        # inside the caller's transaction (all or nothing).
        rows = [{name: _stored(value) for name, value in row.items()} for row in rows]
        keys = [row["key"] for row in rows]
        for start in range(0, len(keys), 5000):
            self._session.execute(delete(table).where(table.key.in_(keys[start : start + 5000])))
        total = len(rows)
        for start in range(0, total, _CHUNK):
            self._session.execute(insert(table), rows[start : start + _CHUNK])
            if on_progress is not None:
                on_progress(min(start + _CHUNK, total), total)


def _stored(value: Any) -> Any:
    # A missing value is NULL on both dialects: SQLite turns a float NaN into
    # NULL by itself, PostgreSQL would keep it as the number NaN.
    if value is None or value is pd.NA or value is pd.NaT:
        return None
    if isinstance(value, float | np.floating) and np.isnan(value):
        return None
    if isinstance(value, np.generic):
        return value.item()
    return value


def _multi(geometry: shapely.Geometry) -> shapely.MultiPolygon:
    return geometry if geometry.geom_type == "MultiPolygon" else shapely.MultiPolygon([geometry])
