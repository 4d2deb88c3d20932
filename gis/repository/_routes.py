"""Data access for stored patrol routes: add, list, get, delete, flag stale."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import shapely
from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from gis.repository.models import PatrolRouteRow

__all__ = ["RouteStore"]

_FIELDS = (
    "id",
    "layer",
    "level",
    "unit_code",
    "unit_version",
    "revision",
    "part",
    "staff_id",
    "shift",
    "name",
    "params",
    "figures",
    "steps",
    "checkpoints",
    "stale",
    "stale_reason",
    "created_by",
    "created_at",
)


class RouteStore:
    """Reads and writes patrol routes inside the repository's session."""

    def __init__(self, session: Session) -> None:
        self._session = session

    def add(self, *, line: shapely.Geometry, created_at: datetime, **fields: Any) -> int:
        """Store one route (its line in EPSG:4490) and return its id."""
        x0, y0, x1, y1 = line.bounds
        row = PatrolRouteRow(
            wkb=shapely.to_wkb(line),
            min_lon=x0,
            min_lat=y0,
            max_lon=x1,
            max_lat=y1,
            stale=0,
            created_at=created_at,
            **fields,
        )
        self._session.add(row)
        self._session.flush()
        return int(row.id)

    def get(self, route_id: int) -> dict[str, Any] | None:
        """Return a route with its ``line`` (EPSG:4490), or None."""
        row = self._session.get(PatrolRouteRow, route_id)
        return None if row is None else _record(row)

    def list(
        self,
        *,
        layer: str | None = None,
        units: Sequence[str] | None = None,
        stale: bool | None = None,
        bbox: tuple[float, float, float, float] | None = None,
        staff_id: int | None = None,
    ) -> list[dict[str, Any]]:
        """Return routes (newest first) of ``units``, stale or not, meeting ``bbox``."""
        query = select(PatrolRouteRow).order_by(PatrolRouteRow.id.desc())
        if layer is not None:
            query = query.where(PatrolRouteRow.layer == layer)
        if units is not None:
            query = query.where(PatrolRouteRow.unit_code.in_(list(units)))
        if stale is not None:
            query = query.where(PatrolRouteRow.stale == int(stale))
        if staff_id is not None:
            query = query.where(PatrolRouteRow.staff_id == staff_id)
        if bbox is not None:
            x0, y0, x1, y1 = bbox
            query = query.where(
                PatrolRouteRow.min_lon <= x1,
                PatrolRouteRow.max_lon >= x0,
                PatrolRouteRow.min_lat <= y1,
                PatrolRouteRow.max_lat >= y0,
            )
        return [_record(row) for row in self._session.scalars(query).all()]

    def delete(self, route_id: int) -> bool:
        """Delete a route; return whether it existed."""
        result = self._session.execute(delete(PatrolRouteRow).where(PatrolRouteRow.id == route_id))
        return bool(getattr(result, "rowcount", 0))

    def mark_stale(self, *, layer: str, codes: Sequence[str], reason: str) -> int:
        """Flag the routes of ``codes`` as needing re-planning; return how many."""
        if not codes:
            return 0
        result = self._session.execute(
            update(PatrolRouteRow)
            .where(
                PatrolRouteRow.layer == layer,
                PatrolRouteRow.unit_code.in_(list(codes)),
                PatrolRouteRow.stale == 0,
            )
            .values(stale=1, stale_reason=reason)
        )
        return int(getattr(result, "rowcount", 0) or 0)


def _record(row: PatrolRouteRow) -> dict[str, Any]:
    out = {name: getattr(row, name) for name in _FIELDS}
    for name in ("params", "figures", "steps", "checkpoints"):
        if isinstance(out[name], str):
            out[name] = json.loads(out[name])
    out["stale"] = bool(out["stale"])
    out["line"] = shapely.from_wkb(bytes(row.wkb))
    return out
