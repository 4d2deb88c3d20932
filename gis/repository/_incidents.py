"""Incidents, the units they are located in, their transitions and idempotency keys.

PostgreSQL keeps ``incidents`` partitioned by month on ``received_at``:
:func:`ensure_partitions` makes the partitions of the months around a time
(rows that arrived in the default partition for such a month are moved into
it), run by the migration and, once per month and process, before intake.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Table, and_, delete, exists, func, insert, or_, select, text, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from gis.errors import ConflictError
from gis.repository._dialect import bulk_insert, is_unique_violation
from gis.repository.models import (
    IncidentKeyRow,
    IncidentRow,
    IncidentTransitionRow,
    IncidentUnitRow,
)

__all__ = ["INCIDENT_COLUMNS_DDL", "IncidentStore", "KeyTaken", "ensure_partitions"]

#: The columns of the partitioned PostgreSQL table (the SQLite one is made by Alembic).
INCIDENT_COLUMNS_DDL = """
    id BIGSERIAL NOT NULL,
    received_at TIMESTAMP WITHOUT TIME ZONE NOT NULL,
    public_id VARCHAR(32) NOT NULL,
    channel VARCHAR(32) NOT NULL,
    external_id VARCHAR(100),
    category VARCHAR(16) NOT NULL,
    description TEXT NOT NULL,
    lon DOUBLE PRECISION,
    lat DOUBLE PRECISION,
    raw_x DOUBLE PRECISION,
    raw_y DOUBLE PRECISION,
    datum VARCHAR(16),
    accuracy_m DOUBLE PRECISION,
    address TEXT,
    event_time TIMESTAMP WITHOUT TIME ZONE NOT NULL,
    status VARCHAR(16) NOT NULL,
    deadline_at TIMESTAMP WITHOUT TIME ZONE NOT NULL,
    units JSON NOT NULL,
    responsible JSON NOT NULL,
    revision INTEGER NOT NULL,
    review_reason VARCHAR(64),
    merged_into BIGINT,
    escalated_to VARCHAR(64),
    feedback_score INTEGER,
    feedback_text TEXT,
    closed_at TIMESTAMP WITHOUT TIME ZONE,
    updated_at TIMESTAMP WITHOUT TIME ZONE NOT NULL,
    reporter_contact VARCHAR(100),
    media JSON NOT NULL,
    submitted_by VARCHAR(200)
"""

_T: Table = IncidentRow.__table__  # type: ignore[assignment]
_U: Table = IncidentUnitRow.__table__  # type: ignore[assignment]
_TR: Table = IncidentTransitionRow.__table__  # type: ignore[assignment]
_K: Table = IncidentKeyRow.__table__  # type: ignore[assignment]
_FIELDS = tuple(column.name for column in _T.columns)
#: Every column but the id, in table order (what an intake's ``values`` hold).
_VALUE_FIELDS = tuple(name for name in _FIELDS if name != "id")
_UNIT_FIELDS = ("incident_id", "layer", "level", "code")
_STEP_FIELDS = (
    "incident_id",
    "action",
    "from_status",
    "to_status",
    "actor",
    "at",
    "note",
    "detail",
)
_KEY_FIELDS = ("scope", "key", "body_hash", "incident_id", "created_at")


class KeyTaken(ConflictError):  # noqa: N818 (a signal between the store and the service)
    """The idempotency key of an intake was taken by an earlier request (rolled back)."""


def _month_start(when: datetime, offset: int = 0) -> datetime:
    index = when.year * 12 + (when.month - 1) + offset
    return datetime(index // 12, index % 12 + 1, 1)


def ensure_partitions(
    connection: Any, *, around: datetime | None = None, back: int = 1, ahead: int = 12
) -> list[str]:
    """Create the monthly partitions of ``incidents`` around a time (PostgreSQL only).

    Months are UTC calendar months. A month whose rows already went to the
    default partition gets them moved into its new partition, in the same
    transaction. Returns the partitions created.
    """
    if connection.dialect.name != "postgresql":
        return []
    when = (around or datetime.now(UTC)).astimezone(UTC).replace(tzinfo=None)
    connection.execute(text("SELECT pg_advisory_xact_lock(hashtext('tongge_incident_partitions'))"))
    made = []
    for offset in range(-back, ahead + 1):
        start, end = _month_start(when, offset), _month_start(when, offset + 1)
        name = f"incidents_p{start:%Y%m}"
        if connection.execute(text("SELECT to_regclass(:name)"), {"name": name}).scalar():
            continue
        window = {"start": start, "end": end}
        connection.execute(text("CREATE TEMP TABLE incidents_moving (LIKE incidents)"))
        connection.execute(
            text(
                "WITH moved AS (DELETE FROM incidents_default WHERE received_at >= :start "
                "AND received_at < :end RETURNING *) INSERT INTO incidents_moving "
                "SELECT * FROM moved"
            ),
            window,
        )
        connection.execute(
            text(
                f"CREATE TABLE {name} PARTITION OF incidents "
                f"FOR VALUES FROM ('{start.isoformat()}') TO ('{end.isoformat()}')"
            )
        )
        connection.execute(text("INSERT INTO incidents SELECT * FROM incidents_moving"))
        connection.execute(text("DROP TABLE incidents_moving"))
        made.append(name)
    return made


class PartitionKeeper:
    """Remembers, per process, which months have partitions (asked once a month)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._done: set[tuple[str, datetime]] = set()

    def ensure(self, engine: Any, when: datetime) -> None:
        """Make sure the month of ``when`` (and the next ones) have partitions."""
        if engine.dialect.name != "postgresql":
            return
        month = _month_start(when.astimezone(UTC).replace(tzinfo=None))
        key = (str(engine.url), month)
        if key in self._done:
            return
        with self._lock:
            if key in self._done:
                return
            with engine.begin() as connection:
                ensure_partitions(connection, around=when, back=0, ahead=3)
            self._done.add(key)


PARTITIONS = PartitionKeeper()


class IncidentStore:
    """Data access for incidents inside the repository's session; rows are plain dicts."""

    def __init__(self, session: Session) -> None:
        self._session = session

    # -- intake ---------------------------------------------------------------

    def create_many(self, items: Sequence[dict[str, Any]]) -> list[int]:
        """Insert incidents with their units, transitions and keys in a few statements.

        Each item has ``values`` (every column but the id), ``units``
        (``(layer, level, code)``), ``transitions`` (their columns but the
        ids) and optionally ``scope``, ``key`` and ``body_hash`` (the
        idempotency key taken in the same transaction). Returns the
        new ids in the order of ``items``. A key taken meanwhile (by another
        process: the caller looked the keys up in this transaction) raises
        :class:`KeyTaken`; the caller rolls back and tries again.
        """
        if not items:
            return []
        # Ids are taken first, so that every table is one plain multi-row
        # insert (RETURNING the ids in row order makes SQLAlchemy insert
        # SQLite rows one at a time); the rows go to the driver as tuples.
        ids = self._new_ids(len(items))
        pairs = list(zip(ids, items, strict=True))
        connection = self._session.connection()
        bulk_insert(
            connection,
            _T,
            ("id", *_VALUE_FIELDS),
            [(new_id, *[item["values"][name] for name in _VALUE_FIELDS]) for new_id, item in pairs],
        )
        bulk_insert(
            connection,
            _U,
            _UNIT_FIELDS,
            [(new_id, *unit) for new_id, item in pairs for unit in item["units"]],
        )
        bulk_insert(
            connection,
            _TR,
            _STEP_FIELDS,
            [
                (new_id, *[step[name] for name in _STEP_FIELDS[1:]])
                for new_id, item in pairs
                for step in item["transitions"]
            ],
        )
        keys = [
            (item["scope"], item["key"], item["body_hash"], new_id, item["values"]["received_at"])
            for new_id, item in pairs
            if item.get("key") is not None
        ]
        try:
            bulk_insert(connection, _K, _KEY_FIELDS, keys)
        except IntegrityError as error:
            if is_unique_violation(error):
                raise KeyTaken("an idempotency key is taken") from None
            raise
        return ids

    def _new_ids(self, count: int) -> list[int]:
        if self._session.get_bind().dialect.name == "postgresql":
            rows = self._session.execute(
                text(
                    "SELECT nextval(pg_get_serial_sequence('incidents', 'id')) "
                    "FROM generate_series(1, :count)"
                ),
                {"count": count},
            ).all()
            return sorted(int(row[0]) for row in rows)
        # SQLite: what it would choose itself (the table has no AUTOINCREMENT),
        # safe as the write transaction holds the database's write lock.
        last = int(self._session.scalar(select(func.max(_T.c.id))) or 0)
        return list(range(last + 1, last + 1 + count))

    def keys_taken(self, pairs: Iterable[tuple[str, str]]) -> dict[tuple[str, str], dict[str, Any]]:
        """Return the stored pairs among ``pairs``: their ``incident_id`` and ``body_hash``."""
        by_scope: dict[str, list[str]] = {}
        for scope, key in set(pairs):
            by_scope.setdefault(scope, []).append(key)
        found: dict[tuple[str, str], dict[str, Any]] = {}
        for scope, keys in by_scope.items():
            keys.sort()
            # The scope is named so that the unique index on (scope, key)
            # answers: ``key IN (...)`` alone scans the whole table, which
            # only grows (every intake with a key adds a row).
            for start in range(0, len(keys), 500):  # bound the parameters of one statement
                rows = self._session.execute(
                    select(_K.c.key, _K.c.incident_id, _K.c.body_hash).where(
                        _K.c.scope == scope, _K.c.key.in_(keys[start : start + 500])
                    )
                ).all()
                for key, incident_id, body_hash in rows:
                    found[(scope, key)] = {"incident_id": incident_id, "body_hash": body_hash}
        return found

    def get_many(self, ids: Iterable[int]) -> dict[int, dict[str, Any]]:
        """Return the incidents of ``ids`` by id (missing ones left out)."""
        wanted = sorted(set(ids))
        found: dict[int, dict[str, Any]] = {}
        for start in range(0, len(wanted), 500):
            rows = self._session.execute(
                select(_T).where(_T.c.id.in_(wanted[start : start + 500]))
            ).mappings()
            found.update({int(row["id"]): dict(row) for row in rows})
        return found

    def by_key(self, *, scope: str, key: str) -> dict[str, Any] | None:
        """Return the stored ``(scope, key)``: ``incident_id`` and ``body_hash``, or None."""
        row = self._session.execute(
            select(_K.c.incident_id, _K.c.body_hash).where(_K.c.scope == scope, _K.c.key == key)
        ).first()
        return None if row is None else {"incident_id": row[0], "body_hash": row[1]}

    # -- reads ----------------------------------------------------------------

    def get(self, *, incident_id: int, lock: bool = False) -> dict[str, Any] | None:
        """Return one incident (locked for update when ``lock``), or None."""
        query = select(_T).where(_T.c.id == incident_id)
        if lock and self._session.get_bind().dialect.name == "postgresql":
            query = query.with_for_update()
        row = self._session.execute(query).mappings().first()
        return None if row is None else dict(row)

    def get_public(self, *, public_id: str) -> dict[str, Any] | None:
        """Return one incident by its public id, or None."""
        row = (
            self._session.execute(select(_T).where(_T.c.public_id == public_id)).mappings().first()
        )
        return None if row is None else dict(row)

    def search(
        self,
        *,
        roots: Sequence[tuple[str, str]] | None,
        with_unlocated: bool = True,
        status: Sequence[str] | None = None,
        category: str | None = None,
        unit: tuple[str | None, str] | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        deadline_before: datetime | None = None,
        ids: Sequence[int] | None = None,
        located_only: bool = False,
        limit: int | None = 100,
        offset: int = 0,
    ) -> list[dict[str, Any]]:
        """Return incidents, newest first.

        ``roots`` (``(layer, code)`` pairs, None: everything) keeps those
        located in one of the units; with ``with_unlocated`` incidents
        located in no unit (the review queue) are kept too, for the caller
        to filter by their point. ``unit`` is ``(layer or None, code)``;
        times filter ``received_at``.
        """
        conditions: list[Any] = []
        if roots is not None:
            pairs = [and_(_U.c.layer == layer, _U.c.code == code) for layer, code in roots]
            within = exists().where(_U.c.incident_id == _T.c.id, or_(*pairs)) if pairs else None
            unlocated = ~exists().where(_U.c.incident_id == _T.c.id)
            if within is None:
                conditions.append(unlocated if with_unlocated else text("1 = 0"))
            else:
                conditions.append(or_(within, unlocated) if with_unlocated else within)
        if status:
            conditions.append(_T.c.status.in_(list(status)))
        if category is not None:
            conditions.append(_T.c.category == category)
        if unit is not None:
            layer, code = unit
            match = _U.c.code == code
            if layer is not None:
                match = and_(match, _U.c.layer == layer)
            conditions.append(exists().where(_U.c.incident_id == _T.c.id, match))
        if since is not None:
            conditions.append(_T.c.received_at >= since)
        if until is not None:
            conditions.append(_T.c.received_at < until)
        if deadline_before is not None:
            conditions.append(_T.c.deadline_at < deadline_before)
        if ids is not None:
            conditions.append(_T.c.id.in_(list(ids)))
        if located_only:
            conditions.append(_T.c.lon.is_not(None))
        query = select(_T).where(*conditions).order_by(_T.c.id.desc()).offset(offset)
        if limit is not None:
            query = query.limit(limit)
        return [dict(row) for row in self._session.execute(query).mappings().all()]

    def nearby(
        self,
        *,
        category: str,
        box: tuple[float, float, float, float],
        since: datetime,
        until: datetime,
        statuses: Iterable[str],
        exclude: int | None = None,
        limit: int = 20,
    ) -> list[dict[str, Any]]:
        """Return incidents of a category whose point lies in a lon/lat box, in an event window."""
        minx, miny, maxx, maxy = box
        query = (
            select(_T)
            .where(
                _T.c.category == category,
                _T.c.event_time >= since,
                _T.c.event_time <= until,
                _T.c.lon.between(minx, maxx),
                _T.c.lat.between(miny, maxy),
                _T.c.status.in_(list(statuses)),
            )
            .order_by(_T.c.id)
            .limit(limit)
        )
        if exclude is not None:
            query = query.where(_T.c.id != exclude)
        return [dict(row) for row in self._session.execute(query).mappings().all()]

    # -- changes --------------------------------------------------------------

    def update(self, *, incident_id: int, revision: int, values: dict[str, Any]) -> bool:
        """Change columns if the stored revision is ``revision`` (bumped); return whether done."""
        result = self._session.execute(
            update(_T)
            .where(_T.c.id == incident_id, _T.c.revision == revision)
            .values(**values, revision=revision + 1)
        )
        return bool(result.rowcount)  # type: ignore[attr-defined]

    def set_units(self, *, incident_id: int, units: Sequence[tuple[str, str, str]]) -> None:
        """Replace the units an incident is located in."""
        self._session.execute(delete(_U).where(_U.c.incident_id == incident_id))
        if units:
            self._session.execute(
                insert(_U),
                [
                    {"incident_id": incident_id, "layer": layer, "level": level, "code": code}
                    for layer, level, code in units
                ],
            )

    def add_transition(self, **values: Any) -> None:
        """Append one transition."""
        self._session.execute(insert(_TR).values(**values))

    def transitions(self, *, incident_id: int) -> list[dict[str, Any]]:
        """Return an incident's transitions, oldest first."""
        rows = self._session.execute(
            select(_TR).where(_TR.c.incident_id == incident_id).order_by(_TR.c.id)
        ).mappings()
        return [dict(row) for row in rows]

    def count(self) -> int:
        """Return how many incidents are stored."""
        return int(self._session.scalar(select(func.count()).select_from(_T)) or 0)
