"""Data access for change sets: edits (applied, drafts...) and every unit before and after them."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import geopandas as gpd
import numpy as np
import shapely
from sqlalchemy import func, insert, select, update
from sqlalchemy.orm import Session

from gis.crs import STORAGE_CRS
from gis.errors import ConflictError
from gis.repository.models import ChangeSetRow, ChangeSetUnitRow

__all__ = ["CHANGESET_STATUSES", "CHANGESET_UNIT_COLUMNS", "ChangeSetStore"]

#: What a stored change set can be: written to the units, a draft not yet
#: applied, undone by a later change set, or a draft dropped.
CHANGESET_STATUSES = ("applied", "draft", "reverted", "discarded")

#: Columns of the units frame of a stored change set (besides the geometry).
CHANGESET_UNIT_COLUMNS = [
    "side",
    "level",
    "code",
    "name",
    "parent_code",
    "kind",
    "attributes",
    "version_from",
]


class ChangeSetStore:
    """Reads and writes change sets inside the repository's session."""

    def __init__(self, session: Session) -> None:
        self._session = session

    def add(
        self,
        *,
        layer: str,
        level: str,
        op: str,
        params: dict[str, Any],
        author: str,
        reason: str | None,
        created_at: datetime,
        valid_from: datetime,
        import_id: int | None,
        reverts: int | None,
        summary: dict[str, Any],
        units: gpd.GeoDataFrame,
        status: str = "applied",
        draft: dict[str, Any] | None = None,
        from_draft: int | None = None,
    ) -> int:
        """Store a change set and its units (:data:`CHANGESET_UNIT_COLUMNS`); return its id.

        ``status`` is ``applied`` or ``draft`` (then ``draft`` holds what it was
        computed on). ``from_draft`` names a stored draft this change set applies:
        that row becomes the applied change set (same id, same units) instead of
        a new one. A change set that ``reverts`` another marks it ``reverted``.
        """
        if reverts is not None:
            self._session.execute(
                update(ChangeSetRow).where(ChangeSetRow.id == reverts).values(status="reverted")
            )
        if from_draft is not None:
            return self._apply_draft(
                from_draft,
                author=author,
                applied_at=created_at,
                valid_from=valid_from,
                import_id=import_id,
                summary=summary,
            )
        row = ChangeSetRow(
            layer=layer,
            level=level,
            op=op,
            params=params,
            author=author,
            reason=reason,
            created_at=created_at,
            valid_from=valid_from,
            import_id=import_id,
            reverts=reverts,
            summary=summary,
            status=status,
            draft=draft,
        )
        self._session.add(row)
        self._session.flush()
        records = [
            {
                "changeset_id": row.id,
                **{c: record.get(c) for c in CHANGESET_UNIT_COLUMNS},
                "attributes": record.get("attributes") or {},
                "kind": record.get("kind") or "comprehensive",
                # WKB keeps every double exactly: a revert restores the very vertices.
                "wkb": shapely.to_wkb(geometry),
            }
            for record, geometry in zip(
                units.drop(columns=units.geometry.name).to_dict("records"),
                units.geometry.values,
                strict=True,
            )
        ]
        if records:
            self._session.execute(insert(ChangeSetUnitRow), records)
        return int(row.id)

    def _apply_draft(
        self,
        changeset_id: int,
        *,
        author: str,
        applied_at: datetime,
        valid_from: datetime,
        import_id: int | None,
        summary: dict[str, Any],
    ) -> int:
        # Inside the write transaction that writes the units: a draft applied
        # (or discarded) meanwhile by someone else is not applied twice.
        row = self._session.get(ChangeSetRow, changeset_id, with_for_update=True)
        if row is None or row.status != "draft":
            status = "gone" if row is None else row.status
            raise ConflictError(f"change set {changeset_id} is no longer a draft ({status})")
        info = _plain(row.draft)
        row.status = "applied"
        row.valid_from = valid_from
        row.import_id = import_id
        row.summary = summary
        row.draft = {**info, "applied_by": author, "applied_at": applied_at.isoformat()}
        self._session.execute(
            update(ChangeSetUnitRow)
            .where(ChangeSetUnitRow.changeset_id == changeset_id, ChangeSetUnitRow.side == "after")
            .values(version_from=valid_from)
        )
        self._session.flush()
        return int(row.id)

    def set_status(self, *, changeset_id: int, status: str, expected: str) -> None:
        """Change a change set's status from ``expected`` (else :class:`ConflictError`)."""
        row = self._session.get(ChangeSetRow, changeset_id, with_for_update=True)
        if row is None or row.status != expected:
            status_now = "gone" if row is None else row.status
            raise ConflictError(f"change set {changeset_id} is {status_now}, not {expected}")
        row.status = status
        self._session.flush()

    def draft_info(self, *, changeset_id: int) -> dict[str, Any]:
        """Return what a draft was computed on (``{}`` for a change set that never was one)."""
        row = self._session.get(ChangeSetRow, changeset_id)
        return {} if row is None else _plain(row.draft)

    def history(
        self,
        *,
        layer: str,
        unit: str | None = None,
        codes: Sequence[str] | None = None,
        status: str | None = None,
        limit: int = 100,
        offset: int = 0,
    ) -> tuple[list[dict[str, Any]], int]:
        """Return a layer's change sets, newest first (touching ``unit`` if given), and the total.

        ``codes``, when given, limits the answer to change sets touching one of them
        (a caller's jurisdiction); ``status`` to change sets in that status.
        """
        query = select(ChangeSetRow).where(ChangeSetRow.layer == layer)
        if status is not None:
            query = query.where(ChangeSetRow.status == status)
        wanted = [unit] if unit is not None else None
        if codes is not None:
            wanted = [c for c in (wanted or list(codes)) if c in set(codes)]
        if wanted is not None:
            touching = select(ChangeSetUnitRow.changeset_id).where(
                ChangeSetUnitRow.code.in_(wanted)
            )
            query = query.where(ChangeSetRow.id.in_(touching))
        total = self._session.scalar(select(func.count()).select_from(query.subquery())) or 0
        rows = self._session.scalars(
            query.order_by(ChangeSetRow.id.desc()).limit(limit).offset(offset)
        ).all()
        return [_record(r) for r in rows], int(total)

    def get(self, *, changeset_id: int) -> dict[str, Any] | None:
        """Return one change set with its ``units`` (GeoDataFrame, EPSG:4490), or ``None``."""
        row = self._session.get(ChangeSetRow, changeset_id)
        if row is None:
            return None
        units = self._session.scalars(
            select(ChangeSetUnitRow)
            .where(ChangeSetUnitRow.changeset_id == changeset_id)
            .order_by(ChangeSetUnitRow.id)
        ).all()
        data: dict[str, list[Any]] = {
            c: [getattr(u, c) for u in units] for c in CHANGESET_UNIT_COLUMNS
        }
        data["attributes"] = [
            json.loads(a) if isinstance(a, str) else (a or {}) for a in data["attributes"]
        ]
        geometry = (
            shapely.from_wkb(np.array([bytes(u.wkb) for u in units], dtype=object)) if units else []
        )
        return {**_record(row), "units": gpd.GeoDataFrame(data, geometry=geometry, crs=STORAGE_CRS)}

    def reverted_by(self, *, changeset_id: int) -> int | None:
        """Return the id of the change set that reverted ``changeset_id``, if any."""
        found = self._session.scalar(
            select(ChangeSetRow.id).where(ChangeSetRow.reverts == changeset_id)
        )
        return None if found is None else int(found)


def _plain(value: Any) -> Any:
    return json.loads(value) if isinstance(value, str) else (value or {})


def _record(row: ChangeSetRow) -> dict[str, Any]:
    plain = _plain
    return {
        "id": row.id,
        "layer": row.layer,
        "level": row.level,
        "op": row.op,
        "params": plain(row.params),
        "author": row.author,
        "reason": row.reason,
        "created_at": row.created_at,
        "valid_from": row.valid_from,
        "import_id": row.import_id,
        "reverts": row.reverts,
        "summary": plain(row.summary),
        "status": row.status or "applied",
    }
