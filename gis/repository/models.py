"""Tables: layers, their ordered levels, dated unit versions, and import batches."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from geoalchemy2 import Geometry
from sqlalchemy import (
    JSON,
    BigInteger,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeDecorator

STORAGE_SRID = 4490


class UTCDateTime(TypeDecorator[datetime]):
    """Naive UTC in the database, aware UTC in Python.

    The columns stay ``TIMESTAMP WITHOUT TIME ZONE`` (both dialects, no
    migration); a naive value handed in is a bug upstream (its zone is
    unknown), so it is refused rather than guessed.
    """

    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        """Store aware values as naive UTC."""
        if value is None:
            return None
        if value.tzinfo is None:
            raise TypeError(f"naive datetime {value!r} given to the database: make it aware")
        return value.astimezone(UTC).replace(tzinfo=None)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        """Read stored naive UTC as aware UTC."""
        return None if value is None else value.replace(tzinfo=UTC)


class Base(DeclarativeBase):
    """Declarative base of every table."""


class LayerRow(Base):
    """A hierarchy of units over the ground (governance, police, urban, user-defined)."""

    __tablename__ = "layers"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    title: Mapped[str] = mapped_column(String(200), default="")
    digits_only: Mapped[int] = mapped_column(Integer, default=0)
    child_code_extends_parent: Mapped[int] = mapped_column(Integer, default=1)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class LevelRow(Base):
    """One level of a layer; ``rank`` 0 is the top."""

    __tablename__ = "levels"
    __table_args__ = (UniqueConstraint("layer_id", "name"), UniqueConstraint("layer_id", "rank"))

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    layer_id: Mapped[int] = mapped_column(ForeignKey("layers.id"))
    name: Mapped[str] = mapped_column(String(64))
    title: Mapped[str] = mapped_column(String(200), default="")
    rank: Mapped[int] = mapped_column(Integer)
    code_lengths: Mapped[list[int] | None] = mapped_column(JSON, nullable=True)


class ImportRow(Base):
    """One accepted import: where the units of a version came from."""

    __tablename__ = "imports"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    layer_id: Mapped[int] = mapped_column(ForeignKey("layers.id"))
    level_id: Mapped[int] = mapped_column(ForeignKey("levels.id"))
    source: Mapped[str] = mapped_column(Text)
    unit_count: Mapped[int] = mapped_column(Integer)
    valid_from: Mapped[datetime] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    summary: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


class UnitRow(Base):
    """One dated version of a unit's boundary; ``valid_to`` NULL means current.

    Times are stored as naive UTC and read as aware UTC. ``parent_code``
    names the parent by code (not by row) because parent and child versions
    change independently.
    """

    __tablename__ = "units"
    __table_args__ = (
        UniqueConstraint("layer_id", "code", "valid_from"),
        Index("ix_units_layer_level_valid", "layer_id", "level_id", "valid_to"),
        Index("ix_units_code", "code"),
        Index("ix_units_parent", "layer_id", "parent_code"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    layer_id: Mapped[int] = mapped_column(ForeignKey("layers.id"))
    level_id: Mapped[int] = mapped_column(ForeignKey("levels.id"))
    import_id: Mapped[int | None] = mapped_column(ForeignKey("imports.id"), nullable=True)
    code: Mapped[str] = mapped_column(String(64))
    name: Mapped[str | None] = mapped_column(String(200), nullable=True)
    kind: Mapped[str] = mapped_column(String(16), default="comprehensive")
    parent_code: Mapped[str | None] = mapped_column(String(64), nullable=True)
    attributes: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    valid_from: Mapped[datetime] = mapped_column(UTCDateTime)
    valid_to: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    geom: Mapped[Any] = mapped_column(
        Geometry("MULTIPOLYGON", srid=STORAGE_SRID, spatial_index=True)
    )


class StaffRow(Base):
    """A person responsible for a unit (网格员, 社区民警...): minimal contact data only."""

    __tablename__ = "staff"
    __table_args__ = (Index("ix_staff_unit", "layer_id", "unit_code"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    layer_id: Mapped[int] = mapped_column(ForeignKey("layers.id"))
    unit_code: Mapped[str] = mapped_column(String(64))
    role: Mapped[str] = mapped_column(String(32))
    name: Mapped[str] = mapped_column(String(100))
    phone: Mapped[str | None] = mapped_column(String(32), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


class BuildingRow(Base):
    """A building: footprint, standard address, floors; households hang on it."""

    __tablename__ = "buildings"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    key: Mapped[str] = mapped_column(String(64), unique=True)
    address: Mapped[str | None] = mapped_column(Text, nullable=True)
    floors: Mapped[int | None] = mapped_column(Integer, nullable=True)
    use: Mapped[str | None] = mapped_column(String(32), nullable=True)
    entrance_lon: Mapped[float | None] = mapped_column(Float, nullable=True)
    entrance_lat: Mapped[float | None] = mapped_column(Float, nullable=True)
    attributes: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    geom: Mapped[Any] = mapped_column(
        Geometry("MULTIPOLYGON", srid=STORAGE_SRID, spatial_index=True)
    )


class HouseholdRow(Base):
    """A household (实有人口 count only): a key, its building, where in it, how many people.

    No names and no ID numbers are stored: dispatch and workload need counts.
    """

    __tablename__ = "households"
    __table_args__ = (Index("ix_households_building", "building_key"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    key: Mapped[str] = mapped_column(String(64), unique=True)
    building_key: Mapped[str] = mapped_column(String(64))
    unit_no: Mapped[str | None] = mapped_column(String(16), nullable=True)
    floor: Mapped[int | None] = mapped_column(Integer, nullable=True)
    room: Mapped[str | None] = mapped_column(String(16), nullable=True)
    persons: Mapped[int] = mapped_column(Integer)


class PoiRow(Base):
    """A point of interest or institution (school, hospital, enterprise, alarm post...)."""

    __tablename__ = "places"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    key: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    category: Mapped[str] = mapped_column(String(32))
    address: Mapped[str | None] = mapped_column(Text, nullable=True)
    building_key: Mapped[str | None] = mapped_column(String(64), nullable=True)
    lon: Mapped[float] = mapped_column(Float)
    lat: Mapped[float] = mapped_column(Float)
    attributes: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


class UserRow(Base):
    """A person who signs in; ``units`` ("layer:code") bound their jurisdiction."""

    __tablename__ = "users"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    display_name: Mapped[str | None] = mapped_column(String(100), nullable=True)
    role: Mapped[str] = mapped_column(String(32))
    units: Mapped[list[str]] = mapped_column(JSON, default=list)
    password_hash: Mapped[str] = mapped_column(String(256))
    active: Mapped[int] = mapped_column(Integer, default=1)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    password_changed_at: Mapped[datetime] = mapped_column(UTCDateTime)


class ApiKeyRow(Base):
    """A key for a system (e.g. the 12345 hotline); only a hash of the secret is kept."""

    __tablename__ = "api_keys"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    key_id: Mapped[str] = mapped_column(String(32), unique=True)
    name: Mapped[str] = mapped_column(String(100))
    secret_hash: Mapped[str] = mapped_column(String(64))
    role: Mapped[str] = mapped_column(String(32))
    units: Mapped[list[str]] = mapped_column(JSON, default=list)
    rate_per_minute: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    created_by: Mapped[str] = mapped_column(String(100))
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


class AuditRow(Base):
    """One audit entry: who did what to which target, when; never updated or deleted."""

    __tablename__ = "audit_log"
    __table_args__ = (Index("ix_audit_at", "at"), Index("ix_audit_actor", "actor"))

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime)
    actor: Mapped[str] = mapped_column(String(100))
    actor_kind: Mapped[str] = mapped_column(String(16))
    role: Mapped[str | None] = mapped_column(String(32), nullable=True)
    action: Mapped[str] = mapped_column(String(64))
    target: Mapped[str] = mapped_column(String(300))
    detail: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    client: Mapped[str | None] = mapped_column(String(64), nullable=True)


class RevisionRow(Base):
    """A commit-ordered change counter (``boundaries``, ``places``, ``staff``, ``access``).

    Bumped by triggers in every transaction that writes the tables it counts
    (see ``gis.repository._dialect.REVISION_COUNTERS``); caches compare it.
    """

    __tablename__ = "revisions"

    name: Mapped[str] = mapped_column(String(32), primary_key=True)
    value: Mapped[int] = mapped_column(BigInteger, default=0)


class MoveRow(Base):
    """A building that changed unit with an import (the re-assignment diff, kept)."""

    __tablename__ = "moves"
    __table_args__ = (Index("ix_moves_import", "import_id"), Index("ix_moves_building", "key"))

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    import_id: Mapped[int] = mapped_column(ForeignKey("imports.id"))
    layer: Mapped[str] = mapped_column(String(64))
    key: Mapped[str] = mapped_column(String(64))
    level: Mapped[str] = mapped_column(String(64))
    from_unit: Mapped[str | None] = mapped_column(String(64), nullable=True)
    to_unit: Mapped[str | None] = mapped_column(String(64), nullable=True)
    changed_level: Mapped[str] = mapped_column(String(64))
    from_code: Mapped[str | None] = mapped_column(String(64), nullable=True)
    to_code: Mapped[str | None] = mapped_column(String(64), nullable=True)
    households: Mapped[int] = mapped_column(Integer, default=0)
    persons: Mapped[int] = mapped_column(Integer, default=0)


class StreetRow(Base):
    """A street centre line (街路巷): name, class (arterial, lane, OSM highway...), geometry."""

    __tablename__ = "streets"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    key: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str | None] = mapped_column(String(200), nullable=True)
    road_class: Mapped[str] = mapped_column("class", String(32))
    attributes: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    geom: Mapped[Any] = mapped_column(
        Geometry("MULTILINESTRING", srid=STORAGE_SRID, spatial_index=True)
    )


class ChangeSetRow(Base):
    """An applied edit: who, when, why, what operation, and the import that stored it."""

    __tablename__ = "changesets"
    __table_args__ = (Index("ix_changesets_layer", "layer", "id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    layer: Mapped[str] = mapped_column(String(64))
    level: Mapped[str] = mapped_column(String(64))
    op: Mapped[str] = mapped_column(String(32))
    params: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    author: Mapped[str] = mapped_column(String(200))
    reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    valid_from: Mapped[datetime] = mapped_column(UTCDateTime)
    import_id: Mapped[int | None] = mapped_column(ForeignKey("imports.id"), nullable=True)
    reverts: Mapped[int | None] = mapped_column(ForeignKey("changesets.id"), nullable=True)
    summary: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


class ChangeSetUnitRow(Base):
    """One unit before or after a change set (geometry as exact WKB, for an exact revert)."""

    __tablename__ = "changeset_units"
    __table_args__ = (
        Index("ix_changeset_units_changeset", "changeset_id"),
        Index("ix_changeset_units_code", "code"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    changeset_id: Mapped[int] = mapped_column(ForeignKey("changesets.id"))
    side: Mapped[str] = mapped_column(String(8))
    level: Mapped[str] = mapped_column(String(64))
    code: Mapped[str] = mapped_column(String(64))
    name: Mapped[str | None] = mapped_column(String(200), nullable=True)
    parent_code: Mapped[str | None] = mapped_column(String(64), nullable=True)
    kind: Mapped[str] = mapped_column(String(16), default="comprehensive")
    attributes: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    version_from: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    wkb: Mapped[bytes] = mapped_column(LargeBinary)


class PatrolRouteRow(Base):
    """A planned patrol route of a unit (one part of a plan), for a member of staff and a shift."""

    __tablename__ = "patrol_routes"
    __table_args__ = (
        Index("ix_patrol_routes_unit", "layer", "unit_code"),
        Index("ix_patrol_routes_box", "min_lon", "max_lon"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    layer: Mapped[str] = mapped_column(String(64))
    level: Mapped[str] = mapped_column(String(64))
    unit_code: Mapped[str] = mapped_column(String(64))
    unit_version: Mapped[datetime] = mapped_column(UTCDateTime)
    revision: Mapped[int] = mapped_column(Integer)
    part: Mapped[int] = mapped_column(Integer)
    staff_id: Mapped[int | None] = mapped_column(ForeignKey("staff.id"), nullable=True)
    shift: Mapped[str | None] = mapped_column(String(64), nullable=True)
    name: Mapped[str | None] = mapped_column(String(200), nullable=True)
    params: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    figures: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    steps: Mapped[list[Any]] = mapped_column(JSON, default=list)
    checkpoints: Mapped[list[Any]] = mapped_column(JSON, default=list)
    wkb: Mapped[bytes] = mapped_column(LargeBinary)
    min_lon: Mapped[float] = mapped_column(Float)
    min_lat: Mapped[float] = mapped_column(Float)
    max_lon: Mapped[float] = mapped_column(Float)
    max_lat: Mapped[float] = mapped_column(Float)
    stale: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    stale_reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_by: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
