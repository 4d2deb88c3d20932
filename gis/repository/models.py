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
    """An edit: who, when, why, what operation, the import that stored it, its status.

    ``status``: ``applied``, ``draft`` (nothing written to the units yet),
    ``reverted`` or ``discarded`` (a draft dropped); ``draft`` holds the ETags
    of the unit versions a draft was computed on.
    """

    __tablename__ = "changesets"
    __table_args__ = (
        Index("ix_changesets_layer", "layer", "id"),
        Index("ix_changesets_status", "layer", "status"),
    )

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
    status: Mapped[str] = mapped_column(String(16), default="applied", server_default="applied")
    draft: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)


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


_INCIDENT_ID = BigInteger().with_variant(Integer, "sqlite")


class IncidentRow(Base):
    """An incident (事件): what was reported, where, when, its status and the units it went to.

    On PostgreSQL the table is partitioned by month on ``received_at`` (its
    primary key is then ``(id, received_at)``); the mapping names ``id``
    alone, which is unique either way (one sequence).
    """

    __tablename__ = "incidents"
    __table_args__ = (
        Index("ix_incidents_status_deadline", "status", "deadline_at"),
        Index("ix_incidents_category_event", "category", "event_time"),
        Index("ix_incidents_public_id", "public_id"),
    )

    id: Mapped[int] = mapped_column(_INCIDENT_ID, primary_key=True)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime)
    public_id: Mapped[str] = mapped_column(String(32))
    channel: Mapped[str] = mapped_column(String(32))
    external_id: Mapped[str | None] = mapped_column(String(100), nullable=True)
    category: Mapped[str] = mapped_column(String(16))
    description: Mapped[str] = mapped_column(Text)
    lon: Mapped[float | None] = mapped_column(Float, nullable=True)
    lat: Mapped[float | None] = mapped_column(Float, nullable=True)
    raw_x: Mapped[float | None] = mapped_column(Float, nullable=True)
    raw_y: Mapped[float | None] = mapped_column(Float, nullable=True)
    datum: Mapped[str | None] = mapped_column(String(16), nullable=True)
    accuracy_m: Mapped[float | None] = mapped_column(Float, nullable=True)
    address: Mapped[str | None] = mapped_column(Text, nullable=True)
    event_time: Mapped[datetime] = mapped_column(UTCDateTime)
    status: Mapped[str] = mapped_column(String(16))
    deadline_at: Mapped[datetime] = mapped_column(UTCDateTime)
    units: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    responsible: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    revision: Mapped[int] = mapped_column(Integer, default=1)
    review_reason: Mapped[str | None] = mapped_column(String(64), nullable=True)
    merged_into: Mapped[int | None] = mapped_column(_INCIDENT_ID, nullable=True)
    escalated_to: Mapped[str | None] = mapped_column(String(64), nullable=True)
    feedback_score: Mapped[int | None] = mapped_column(Integer, nullable=True)
    feedback_text: Mapped[str | None] = mapped_column(Text, nullable=True)
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)
    reporter_contact: Mapped[str | None] = mapped_column(String(100), nullable=True)
    media: Mapped[list[str]] = mapped_column(JSON, default=list)
    submitted_by: Mapped[str | None] = mapped_column(String(200), nullable=True)


class IncidentUnitRow(Base):
    """One unit an incident is located in (every layer and level): the jurisdiction filter."""

    __tablename__ = "incident_units"
    __table_args__ = (Index("ix_incident_units_code", "layer", "code"),)

    incident_id: Mapped[int] = mapped_column(_INCIDENT_ID, primary_key=True)
    layer: Mapped[str] = mapped_column(String(64), primary_key=True)
    level: Mapped[str] = mapped_column(String(64), primary_key=True)
    code: Mapped[str] = mapped_column(String(64))


class IncidentTransitionRow(Base):
    """One audited change of an incident: who, when, from and to which status, why."""

    __tablename__ = "incident_transitions"
    __table_args__ = (Index("ix_incident_transitions_incident", "incident_id", "id"),)

    id: Mapped[int] = mapped_column(_INCIDENT_ID, primary_key=True)
    incident_id: Mapped[int] = mapped_column(_INCIDENT_ID)
    action: Mapped[str] = mapped_column(String(32))
    from_status: Mapped[str | None] = mapped_column(String(16), nullable=True)
    to_status: Mapped[str] = mapped_column(String(16))
    actor: Mapped[str] = mapped_column(String(200))
    at: Mapped[datetime] = mapped_column(UTCDateTime)
    note: Mapped[str | None] = mapped_column(Text, nullable=True)
    detail: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


class IncidentKeyRow(Base):
    """An ``Idempotency-Key`` taken, per client: the incident it made and a digest of its body.

    The unique index on ``(scope, key)`` is what makes a retry return the
    first incident (also when two retries race): a table of its own, because
    a unique index of the partitioned incidents would have to include the
    month.
    """

    __tablename__ = "incident_keys"
    __table_args__ = (UniqueConstraint("scope", "key", name="uq_incident_keys_scope_key"),)

    id: Mapped[int] = mapped_column(_INCIDENT_ID, primary_key=True)
    scope: Mapped[str] = mapped_column(String(200))
    key: Mapped[str] = mapped_column(String(200))
    body_hash: Mapped[str] = mapped_column(String(64))
    incident_id: Mapped[int] = mapped_column(_INCIDENT_ID)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


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
