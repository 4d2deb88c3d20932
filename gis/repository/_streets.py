"""Data access for streets: centre lines with a name and a class."""

from __future__ import annotations

import json
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
from gis.repository.models import STORAGE_SRID, StreetRow
from gis.types import Progress

_CHUNK = 2000
_COLUMNS = ["key", "name", "class", "attributes"]


class StreetStore:
    """Reads and writes streets inside the repository's session."""

    def __init__(self, session: Session) -> None:
        self._session = session

    def upsert(
        self,
        frame: gpd.GeoDataFrame,
        *,
        replace_all: bool = False,
        on_progress: Progress | None = None,
    ) -> int:
        """Store street lines (``key``, ``name``, ``class``, ``attributes``; EPSG:4490).

        Rows with a stored key replace it; ``replace_all`` first deletes every
        stored street (a whole new network). Returns how many were written.
        """
        if replace_all:
            self._session.execute(delete(StreetRow))
        else:
            keys = [str(k) for k in frame["key"]]
            for start in range(0, len(keys), 5000):
                chunk = keys[start : start + 5000]
                self._session.execute(delete(StreetRow).where(StreetRow.key.in_(chunk)))
        rows = [
            {
                "key": str(record["key"]),
                "name": _text(record.get("name")),
                "road_class": record["class"],
                "attributes": record.get("attributes") or {},
                "geom": from_shape(_multi(geometry), srid=STORAGE_SRID),
            }
            for record, geometry in zip(
                frame.drop(columns=frame.geometry.name).to_dict("records"),
                frame.geometry.values,
                strict=True,
            )
        ]
        total = len(rows)
        for start in range(0, total, _CHUNK):
            self._session.execute(insert(StreetRow), rows[start : start + _CHUNK])
            if on_progress is not None:
                on_progress(min(start + _CHUNK, total), total)
        return total

    def frame(self, *, bbox: tuple[float, float, float, float] | None = None) -> gpd.GeoDataFrame:
        """Return streets (``key``, ``name``, ``class``, ``attributes``) in EPSG:4490, by key.

        ``bbox`` (lon/lat min/max) keeps the lines that meet it (spatial index).
        """
        query = select(
            StreetRow.key,
            StreetRow.name,
            StreetRow.road_class,
            StreetRow.attributes,
            geometry_as_wkb(StreetRow.geom).label("wkb"),
        ).order_by(StreetRow.key)
        if bbox is not None:
            dialect = self._session.get_bind().dialect.name
            query = query.where(bbox_filter(dialect, StreetRow.geom, "streets", bbox))
        rows = self._session.execute(query).all()
        geometry = (
            shapely.from_wkb(np.array([bytes(r.wkb) for r in rows], dtype=object)) if rows else []
        )
        return gpd.GeoDataFrame(
            {
                "key": [r.key for r in rows],
                # object dtype: a missing name stays None (not NaN)
                "name": pd.Series([r.name for r in rows], dtype=object),
                "class": [r.road_class for r in rows],
                "attributes": [_json(r.attributes) for r in rows],
            },
            geometry=geometry,
            crs=STORAGE_CRS,
        )

    def count(self) -> int:
        """Return how many streets are stored."""
        return int(self._session.scalar(select(func.count()).select_from(StreetRow)) or 0)


def _text(value: Any) -> str | None:
    # A missing value is NULL on both dialects (pandas hands NaN for None;
    # PostgreSQL would store it as the text 'NaN').
    if value is None or value is pd.NA or (isinstance(value, float) and np.isnan(value)):
        return None
    return str(value)


def _json(value: Any) -> dict[str, Any]:
    return json.loads(value) if isinstance(value, str) else dict(value or {})


def _multi(geometry: shapely.Geometry) -> shapely.MultiLineString:
    if geometry.geom_type == "MultiLineString":
        return geometry
    return shapely.MultiLineString([geometry])
