"""The repository: reads and writes layers and unit versions inside one session."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import geopandas as gpd
import numpy as np
import shapely
from geoalchemy2.shape import from_shape, to_shape
from sqlalchemy import and_, func, insert, or_, select, update
from sqlalchemy.orm import Session

from gis.crs import STORAGE_CRS
from gis.errors import ConflictError, NotFoundError
from gis.layers import LayerSpec, LevelSpec
from gis.repository._access import AccessStore
from gis.repository._changesets import ChangeSetStore
from gis.repository._dialect import bbox_filter, geometry_as_wkb
from gis.repository._incidents import IncidentStore
from gis.repository._places import PlaceStore
from gis.repository._routes import RouteStore
from gis.repository._streets import StreetStore
from gis.repository._types import ImportSummary, LayerSummary, LevelSummary
from gis.repository.models import (
    STORAGE_SRID,
    ImportRow,
    LayerRow,
    LevelRow,
    RevisionRow,
    StaffRow,
    UnitRow,
)
from gis.times import isoformat_local, utc_now
from gis.types import Progress

_UNIT_COLUMNS = (
    "code",
    "name",
    "layer",
    "level",
    "parent_code",
    "kind",
    "attributes",
    "valid_from",
    "valid_to",
)
_CHUNK = 500


def _now() -> datetime:
    return utc_now()


class Repository:
    """Data access for one transaction; every method takes keyword arguments."""

    def __init__(self, session: Session) -> None:
        self._session = session

    @property
    def access(self) -> AccessStore:
        """Users, API keys and the audit log."""
        return AccessStore(self._session)

    @property
    def changesets(self) -> ChangeSetStore:
        """Applied edits (change sets) and their units before and after."""
        return ChangeSetStore(self._session)

    @property
    def incidents(self) -> IncidentStore:
        """Incidents, their units, transitions and idempotency keys."""
        return IncidentStore(self._session)

    @property
    def places(self) -> PlaceStore:
        """Buildings, households and points of interest."""
        return PlaceStore(self._session)

    @property
    def routes(self) -> RouteStore:
        """Stored patrol routes."""
        return RouteStore(self._session)

    @property
    def streets(self) -> StreetStore:
        """Street centre lines (name, class)."""
        return StreetStore(self._session)

    @property
    def dialect(self) -> str:
        """``"postgresql"`` or ``"sqlite"``."""
        return self._session.get_bind().dialect.name

    # -- layers -------------------------------------------------------------

    def ensure_layer(self, spec: LayerSpec) -> None:
        """Create the layer with its levels, or check the stored one matches."""
        row = self._session.scalar(select(LayerRow).where(LayerRow.name == spec.name))
        if row is None:
            row = LayerRow(
                name=spec.name,
                title=spec.title,
                digits_only=int(spec.digits_only),
                child_code_extends_parent=int(spec.child_code_extends_parent),
                created_at=_now(),
            )
            self._session.add(row)
            self._session.flush()
            for rank, level in enumerate(spec.levels):
                self._session.add(
                    LevelRow(
                        layer_id=row.id,
                        name=level.name,
                        title=level.title,
                        rank=rank,
                        code_lengths=list(level.code_lengths) if level.code_lengths else None,
                    )
                )
            self._session.flush()
            return
        stored = [level.name for level in self.layer_spec(name=spec.name).levels]
        wanted = [level.name for level in spec.levels]
        if stored != wanted:
            raise ConflictError(
                f"layer {spec.name!r} exists with levels {', '.join(stored)}; "
                f"cannot redefine it as {', '.join(wanted)}"
            )

    def lock_layer(self, *, layer: str) -> None:
        """Make other writers of ``layer`` wait until this transaction ends.

        PostgreSQL: a row lock on the layer; SQLite write transactions are
        serial already (``BEGIN IMMEDIATE``).
        """
        found = self._session.scalar(
            select(LayerRow.id).where(LayerRow.name == layer).with_for_update()
        )
        if found is None:
            raise NotFoundError(f"no layer {layer!r}", field="layer")

    def layer_spec(self, *, name: str) -> LayerSpec:
        """Return a stored layer's definition (NotFoundError if there is none)."""
        row = self._session.scalar(select(LayerRow).where(LayerRow.name == name))
        if row is None:
            raise NotFoundError(f"no layer {name!r}", field="layer")
        levels = self._session.scalars(
            select(LevelRow).where(LevelRow.layer_id == row.id).order_by(LevelRow.rank)
        ).all()
        return LayerSpec(
            name=row.name,
            title=row.title,
            levels=tuple(
                LevelSpec(
                    level.name,
                    level.title,
                    tuple(level.code_lengths) if level.code_lengths else None,
                )
                for level in levels
            ),
            digits_only=bool(row.digits_only),
            child_code_extends_parent=bool(row.child_code_extends_parent),
        )

    def list_layers(self, *, at: datetime | None = None) -> list[LayerSummary]:
        """Return every layer with its levels and the number of units valid at ``at``."""
        when = at or _now()
        counts = dict(
            self._session.execute(
                select(UnitRow.level_id, func.count())
                .where(_valid_at(when))
                .group_by(UnitRow.level_id)
            ).all()
        )
        provenance = self._provenance(when)
        result = []
        for layer in self._session.scalars(select(LayerRow).order_by(LayerRow.id)).all():
            levels = self._session.scalars(
                select(LevelRow).where(LevelRow.layer_id == layer.id).order_by(LevelRow.rank)
            ).all()
            source = provenance.get(layer.id)
            result.append(
                LayerSummary(
                    name=layer.name,
                    title=layer.title,
                    synthetic=source is not None,
                    source=source or None,
                    levels=tuple(
                        LevelSummary(
                            name=level.name,
                            title=level.title,
                            rank=level.rank,
                            code_lengths=tuple(level.code_lengths) if level.code_lengths else None,
                            unit_count=int(counts.get(level.id, 0)),
                        )
                        for level in levels
                    ),
                )
            )
        return result

    def _provenance(self, when: datetime) -> dict[int, str]:
        # Layers with units valid at ``when`` from an import marked synthetic,
        # with that import's source note ("" when it has none).
        used = (
            select(UnitRow.import_id)
            .where(_valid_at(when), UnitRow.import_id.is_not(None))
            .distinct()
        )
        found: dict[int, str] = {}
        rows = self._session.execute(
            select(ImportRow.layer_id, ImportRow.summary)
            .where(ImportRow.id.in_(used))
            .order_by(ImportRow.id)
        ).all()
        for layer_id, summary in rows:
            mark = (summary or {}).get("provenance") or {}
            if mark.get("synthetic") is True:
                found.setdefault(int(layer_id), str(mark.get("source") or ""))
        return found

    def mark_provenance(self, *, import_id: int, synthetic: bool, source: str | None) -> None:
        """Record where an import's data come from (kept in its summary).

        ``synthetic`` data (the bundled sample city) make the layer's summary
        say so while any unit of the import is valid.
        """
        row = self._session.get(ImportRow, import_id)
        if row is None:
            raise NotFoundError(f"no import {import_id}")
        mark = {"synthetic": bool(synthetic), "source": source}
        row.summary = {**(row.summary or {}), "provenance": mark}
        self._session.flush()

    def is_empty(self) -> bool:
        """Whether no unit is stored at all."""
        return self._session.scalar(select(func.count()).select_from(UnitRow)) == 0

    def revision(self) -> int:
        """Return the boundaries counter: it grows with every committed boundary change."""
        return self.revisions()["boundaries"]

    def revisions(self) -> dict[str, int]:
        """Return every change counter (``boundaries``, ``places``, ``staff``, ``access``).

        Each grows in the transaction that changes what it counts, so it
        is seen exactly when the change is (commit-ordered on both dialects).
        """
        rows = self._session.execute(select(RevisionRow.name, RevisionRow.value)).all()
        return {name: int(value) for name, value in rows}

    def unit_tree(self, *, layer: str, at: datetime | None) -> list[tuple[str, str | None]]:
        """Return ``(code, parent_code)`` of a layer's units valid at ``at`` (no geometry).

        ``at=None``: every distinct pair over the layer's whole history.
        """
        query = (
            select(UnitRow.code, UnitRow.parent_code)
            .join(LayerRow, LayerRow.id == UnitRow.layer_id)
            .where(LayerRow.name == layer)
        )
        query = query.distinct() if at is None else query.where(_valid_at(at))
        return [(code, parent) for code, parent in self._session.execute(query).all()]

    def version_window(self, *, at: datetime) -> tuple[datetime | None, datetime | None]:
        """Return the interval around ``at`` in which no unit version starts or ends.

        Any ``at`` inside it sees exactly the same unit versions, so a spatial
        index built for one such time serves the whole interval.
        """
        start = self._session.scalar(
            select(func.max(UnitRow.valid_from)).where(UnitRow.valid_from <= at)
        )
        ended = self._session.scalar(
            select(func.max(UnitRow.valid_to)).where(UnitRow.valid_to <= at)
        )
        if ended is not None and (start is None or ended > start):
            start = ended
        next_start = self._session.scalar(
            select(func.min(UnitRow.valid_from)).where(UnitRow.valid_from > at)
        )
        next_end = self._session.scalar(
            select(func.min(UnitRow.valid_to)).where(UnitRow.valid_to > at)
        )
        ends = [t for t in (next_start, next_end) if t is not None]
        return start, (min(ends) if ends else None)

    # -- units --------------------------------------------------------------

    def units_frame(
        self,
        *,
        layer: str | None = None,
        level: str | None = None,
        at: datetime | None = None,
        parent: str | None = None,
        codes: Sequence[str] | None = None,
        bbox: tuple[float, float, float, float] | None = None,
        limit: int | None = None,
        offset: int = 0,
        all_versions: bool = False,
        search: str | None = None,
    ) -> gpd.GeoDataFrame:
        """Return units as a GeoDataFrame in EPSG:4490, ordered by level and code.

        Only versions valid at ``at`` (default: now) unless ``all_versions``;
        with ``search`` only units whose code starts with it or whose name
        contains it (case-insensitive; ``%`` and ``_`` are plain characters).
        """
        query = (
            select(
                UnitRow.code,
                UnitRow.name,
                LayerRow.name.label("layer"),
                LevelRow.name.label("level"),
                UnitRow.parent_code,
                UnitRow.kind,
                UnitRow.attributes,
                UnitRow.valid_from,
                UnitRow.valid_to,
                geometry_as_wkb(UnitRow.geom).label("wkb"),
            )
            .join(LayerRow, LayerRow.id == UnitRow.layer_id)
            .join(LevelRow, LevelRow.id == UnitRow.level_id)
        )
        query = self._filter(
            query,
            layer=layer,
            level=level,
            at=at,
            parent=parent,
            codes=codes,
            bbox=bbox,
            all_versions=all_versions,
            search=search,
        )
        query = query.order_by(LayerRow.id, LevelRow.rank, UnitRow.code, UnitRow.valid_from)
        if limit is not None:
            query = query.limit(limit)
        if offset:
            query = query.offset(offset)
        rows = self._session.execute(query).all()
        data: dict[str, list[Any]] = {column: [] for column in _UNIT_COLUMNS}
        wkb: list[bytes] = []
        for row in rows:
            for column in _UNIT_COLUMNS:
                value = getattr(row, column)
                if column == "attributes" and isinstance(value, str):
                    value = json.loads(value)
                data[column].append(value)
            wkb.append(bytes(row.wkb))
        geometry = shapely.from_wkb(np.array(wkb, dtype=object)) if wkb else []
        return gpd.GeoDataFrame(data, geometry=geometry, crs=STORAGE_CRS)

    def count_units(
        self,
        *,
        layer: str | None = None,
        level: str | None = None,
        at: datetime | None = None,
        parent: str | None = None,
        codes: Sequence[str] | None = None,
        bbox: tuple[float, float, float, float] | None = None,
        search: str | None = None,
    ) -> int:
        """Count the units :meth:`units_frame` would return without paging."""
        query = (
            select(func.count())
            .select_from(UnitRow)
            .join(LayerRow, LayerRow.id == UnitRow.layer_id)
            .join(LevelRow, LevelRow.id == UnitRow.level_id)
        )
        query = self._filter(
            query,
            layer=layer,
            level=level,
            at=at,
            parent=parent,
            codes=codes,
            bbox=bbox,
            all_versions=False,
            search=search,
        )
        return int(self._session.scalar(query) or 0)

    def replace_units(
        self,
        *,
        layer: str,
        level: str,
        units: gpd.GeoDataFrame,
        valid_from: datetime,
        source: str,
        scope_parents: Sequence[str] | None,
        on_progress: Progress | None = None,
        part_of: int | None = None,
        scope_codes: Sequence[str] | None = None,
    ) -> ImportSummary:
        """Make ``units`` the state of a level from ``valid_from`` on.

        Units with the same code and content stay as they are; changed ones
        get a new version (the old one ends at ``valid_from``); stored units
        in scope that the data does not have are retired. The scope is the
        whole level (``scope_parents=None``), the units under the given
        parents, or (``scope_codes``) exactly the units with these codes: only
        their rows are read and written (an edit touching a few units of a
        large level). ``units`` must be in EPSG:4490 with the unit-frame columns.
        """
        # Writers of one layer take turns (PostgreSQL row lock; SQLite's write
        # transactions are serial anyway), so the versions read below are
        # still current when the new ones are written.
        layer_row, level_row = self._layer_level(layer, level, lock=True)
        summary = ImportSummary(layer=layer, level=level, valid_from=valid_from)
        current: dict[str, UnitRow] = {}
        listed = None if scope_codes is None else sorted(set(scope_codes))
        for start in range(0, 1 if listed is None else len(listed), _CHUNK):
            query = select(UnitRow).where(
                UnitRow.layer_id == layer_row.id,
                UnitRow.level_id == level_row.id,
                _valid_at(valid_from),
            )
            if listed is not None:
                query = query.where(UnitRow.code.in_(listed[start : start + _CHUNK]))
            current.update((row.code, row) for row in self._session.scalars(query).all())
        later = self._session.scalar(
            select(func.max(UnitRow.valid_from)).where(
                UnitRow.layer_id == layer_row.id, UnitRow.level_id == level_row.id
            )
        )
        if later is not None and later > valid_from:
            raise ConflictError(
                f"level {layer}:{level} already has a version from {isoformat_local(later)}; "
                "an import must be valid from that time or later, not "
                f"{isoformat_local(valid_from)}"
            )
        import_row = ImportRow(
            layer_id=layer_row.id,
            level_id=level_row.id,
            source=source,
            unit_count=len(units),
            valid_from=valid_from,
            created_at=_now(),
            summary={},
        )
        self._session.add(import_row)
        self._session.flush()
        summary.import_id = import_row.id
        new_rows: list[dict[str, Any]] = []
        seen: set[str] = set()
        for record, geometry in zip(
            units.drop(columns=units.geometry.name).to_dict("records"),
            units.geometry.values,
            strict=True,
        ):
            code = str(record["code"])
            seen.add(code)
            multi = _as_multipolygon(geometry)
            old = current.get(code)
            if old is not None and _same(old, record, multi):
                summary.unchanged.append(code)
                continue
            if old is not None:
                if old.valid_from >= valid_from:
                    raise ConflictError(
                        f"unit {code!r} already has a version from "
                        f"{isoformat_local(old.valid_from)}"
                    )
                old.valid_to = valid_from
                summary.updated.append(code)
            else:
                summary.created.append(code)
            new_rows.append(
                {
                    "layer_id": layer_row.id,
                    "level_id": level_row.id,
                    "import_id": import_row.id,
                    "code": code,
                    "name": record.get("name"),
                    "kind": record.get("kind") or "comprehensive",
                    "parent_code": record.get("parent_code"),
                    "attributes": record.get("attributes") or {},
                    "valid_from": valid_from,
                    "valid_to": None,
                    "geom": from_shape(multi, srid=STORAGE_SRID),
                }
            )
        scope = set(scope_parents) if scope_parents is not None else None
        for code, row in current.items():
            if code not in seen and (scope is None or row.parent_code in scope):
                row.valid_to = valid_from
                summary.retired.append(code)
        self._session.flush()
        total = len(new_rows)
        for start in range(0, total, _CHUNK):
            self._session.execute(insert(UnitRow), new_rows[start : start + _CHUNK])
            if on_progress is not None:
                on_progress(min(start + _CHUNK, total), total)
        import_row.summary = {**summary.counts(), **({"part_of": part_of} if part_of else {})}
        self._session.flush()
        return summary

    def imports(self, *, layer: str, limit: int = 100, offset: int = 0) -> list[dict[str, Any]]:
        """Return a layer's imports, newest first, with the codes each one wrote."""
        query = (
            select(ImportRow, LevelRow.name)
            .join(LayerRow, LayerRow.id == ImportRow.layer_id)
            .join(LevelRow, LevelRow.id == ImportRow.level_id)
            .where(LayerRow.name == layer)
            .order_by(ImportRow.id.desc())
            .limit(limit)
            .offset(offset)
        )
        rows = self._session.execute(query).all()
        written: dict[int, list[str]] = {}
        if rows:
            versions = self._session.execute(
                select(UnitRow.import_id, UnitRow.code).where(
                    UnitRow.import_id.in_([row.id for row, _ in rows])
                )
            ).all()
            for import_id, code in versions:
                if import_id is not None:
                    written.setdefault(int(import_id), []).append(str(code))
        return [
            {
                "id": row.id,
                "level": level,
                "source": row.source,
                "valid_from": row.valid_from,
                "created_at": row.created_at,
                "summary": dict(row.summary or {}),
                "codes": sorted(written.get(row.id, [])),
            }
            for row, level in rows
        ]

    def retire_units(self, *, layer: str, codes: Sequence[str], at: datetime) -> int:
        """End the current versions of ``codes`` at ``at``; return how many ended."""
        layer_row = self._session.scalar(
            select(LayerRow).where(LayerRow.name == layer).with_for_update()
        )
        if layer_row is None:
            raise NotFoundError(f"no layer {layer!r}", field="layer")
        result = self._session.execute(
            update(UnitRow)
            .where(UnitRow.layer_id == layer_row.id, UnitRow.code.in_(list(codes)), _valid_at(at))
            .values(valid_to=at)
        )
        return int(result.rowcount or 0)  # type: ignore[attr-defined]

    # -- staff --------------------------------------------------------------

    def add_staff(
        self, *, layer: str, unit_code: str, role: str, name: str, phone: str | None, at: datetime
    ) -> dict[str, Any]:
        """Store a staff assignment; return it as a dict."""
        layer_row = self._session.scalar(select(LayerRow).where(LayerRow.name == layer))
        if layer_row is None:
            raise NotFoundError(f"no layer {layer!r}", field="layer")
        row = StaffRow(
            layer_id=layer_row.id,
            unit_code=unit_code,
            role=role,
            name=name,
            phone=phone,
            created_at=at,
        )
        self._session.add(row)
        self._session.flush()
        return {
            "id": row.id,
            "layer": layer,
            "unit_code": unit_code,
            "role": role,
            "name": name,
            "phone": phone,
        }

    def end_staff(self, *, staff_id: int, at: datetime) -> bool:
        """End an active assignment; return whether one was ended."""
        row = self._session.get(StaffRow, staff_id)
        if row is None or row.ended_at is not None:
            return False
        row.ended_at = at
        return True

    def staff(
        self, *, layer: str | None = None, unit_codes: Sequence[str] | None = None
    ) -> list[dict[str, Any]]:
        """Return active staff assignments (ordered by id)."""
        query = (
            select(StaffRow, LayerRow.name)
            .join(LayerRow, LayerRow.id == StaffRow.layer_id)
            .where(StaffRow.ended_at.is_(None))
            .order_by(StaffRow.id)
        )
        if layer is not None:
            query = query.where(LayerRow.name == layer)
        if unit_codes is not None:
            query = query.where(StaffRow.unit_code.in_(list(unit_codes)))
        return [
            {
                "id": row.id,
                "layer": layer_name,
                "unit_code": row.unit_code,
                "role": row.role,
                "name": row.name,
                "phone": row.phone,
            }
            for row, layer_name in self._session.execute(query).all()
        ]

    # -- helpers ------------------------------------------------------------

    def _layer_level(
        self, layer: str, level: str, *, lock: bool = False
    ) -> tuple[LayerRow, LevelRow]:
        query = select(LayerRow).where(LayerRow.name == layer)
        layer_row = self._session.scalar(query.with_for_update() if lock else query)
        if layer_row is None:
            raise NotFoundError(f"no layer {layer!r}", field="layer")
        level_row = self._session.scalar(
            select(LevelRow).where(LevelRow.layer_id == layer_row.id, LevelRow.name == level)
        )
        if level_row is None:
            names = self._session.scalars(
                select(LevelRow.name)
                .where(LevelRow.layer_id == layer_row.id)
                .order_by(LevelRow.rank)
            ).all()
            raise NotFoundError(
                f"layer {layer!r} has no level {level!r}; its levels are {', '.join(names)}",
                field="level",
            )
        return layer_row, level_row

    def _filter(
        self,
        query: Any,
        *,
        layer: str | None,
        level: str | None,
        at: datetime | None,
        parent: str | None,
        codes: Sequence[str] | None,
        bbox: tuple[float, float, float, float] | None,
        all_versions: bool,
        search: str | None = None,
    ) -> Any:
        if layer is not None:
            query = query.where(LayerRow.name == layer)
        if level is not None:
            query = query.where(LevelRow.name == level)
        if not all_versions:
            query = query.where(_valid_at(at or _now()))
        if parent is not None:
            query = query.where(UnitRow.parent_code == parent)
        if codes is not None:
            query = query.where(UnitRow.code.in_(list(codes)))
        if bbox is not None:
            query = query.where(bbox_filter(self.dialect, UnitRow.geom, "units", bbox))
        if search:
            # autoescape: a user's % or _ matches itself, not "anything".
            query = query.where(
                or_(
                    UnitRow.code.startswith(search, autoescape=True),
                    UnitRow.name.icontains(search, autoescape=True),
                )
            )
        return query


def _valid_at(when: datetime) -> Any:
    return and_(
        UnitRow.valid_from <= when, or_(UnitRow.valid_to.is_(None), UnitRow.valid_to > when)
    )


def _as_multipolygon(geometry: shapely.Geometry) -> shapely.MultiPolygon:
    if geometry.geom_type == "MultiPolygon":
        return geometry
    return shapely.MultiPolygon([geometry])


def _same(row: UnitRow, record: dict[str, Any], geometry: shapely.MultiPolygon) -> bool:
    if (row.name, row.kind, row.parent_code) != (
        record.get("name"),
        record.get("kind") or "comprehensive",
        record.get("parent_code"),
    ):
        return False
    if (row.attributes or {}) != (record.get("attributes") or {}):
        return False
    stored = to_shape(row.geom)
    return bool(shapely.equals_exact(stored, geometry, tolerance=0.0))
