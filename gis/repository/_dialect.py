"""Everything that differs between PostGIS and SpatiaLite, in one place."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

from geoalchemy2.admin.dialects.sqlite import load_spatialite_driver
from sqlalchemy import (
    ColumnElement,
    Connection,
    Dialect,
    Engine,
    Table,
    create_engine,
    event,
    func,
    select,
    text,
)
from sqlalchemy.engine import make_url

from gis.errors import InputError

__all__ = [
    "REVISION_COUNTERS",
    "append_only_statements",
    "bbox_filter",
    "bulk_insert",
    "database_file",
    "display_url",
    "erase_append_only",
    "geometry_as_wkb",
    "is_unique_violation",
    "make_engine",
    "no_replace_statements",
    "revision_trigger_statements",
]

_STORAGE_SRID = 4490

#: Execution option marking a connection whose transactions write.
WRITE_OPTION = "tongge_write"


def database_file(url: str) -> Path | None:
    """Return the file of a ``sqlite:///PATH`` URL (None: a server, or in memory).

    Examples
    --------
    >>> database_file("sqlite:////srv/tongge/tongge.sqlite")
    PosixPath('/srv/tongge/tongge.sqlite')
    >>> database_file("postgresql+psycopg://u:secret@db/tongge") is None
    True
    """
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite" or parsed.database in (None, "", ":memory:"):
        return None
    return Path(parsed.database)


def display_url(url: str) -> str:
    """Return ``url`` to show people: never its password.

    Examples
    --------
    >>> display_url("postgresql+psycopg://u:secret@db/tongge")
    'postgresql+psycopg://u:***@db/tongge'
    """
    return make_url(url).render_as_string(hide_password=True)


def make_engine(url: str, *, spatialite_library: str = "mod_spatialite") -> Engine:
    """Create an engine for a ``sqlite:///`` (SpatiaLite) or ``postgresql`` URL.

    SQLite connections load SpatiaLite through ``pysqlite3`` (the standard
    library's ``sqlite3`` may not load extensions), enforce foreign keys and
    use explicit ``BEGIN`` so that a failed import rolls back completely.
    """
    parsed = make_url(url)
    backend = parsed.get_backend_name()
    if backend == "sqlite":
        return _spatialite_engine(url, parsed.database, spatialite_library)
    if backend == "postgresql":
        if parsed.drivername == "postgresql":
            url = parsed.set(drivername="postgresql+psycopg").render_as_string(hide_password=False)
        return create_engine(url, pool_pre_ping=True)
    raise InputError(
        f"unsupported database URL {parsed.render_as_string()!r}: use sqlite:///PATH or "
        "postgresql+psycopg://USER@HOST/DB",
        field="database_url",
    )


def _spatialite_engine(url: str, database: str | None, library: str) -> Engine:
    try:
        import pysqlite3.dbapi2 as dbapi
    except ImportError:  # pragma: no cover - platforms without the wheel
        import sqlite3 as dbapi
    os.environ.setdefault("SPATIALITE_LIBRARY_PATH", library)
    if database and database != ":memory:":
        Path(database).parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(url, module=dbapi, connect_args={"check_same_thread": False})

    @event.listens_for(engine, "connect")
    def _connect(dbapi_connection: Any, _record: Any) -> None:
        # pysqlite's own transaction handling defers BEGIN and breaks
        # SAVEPOINTs; take control and emit BEGIN ourselves (SQLAlchemy recipe).
        dbapi_connection.isolation_level = None
        load_spatialite_driver(dbapi_connection)
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA foreign_keys = ON")
        cursor.execute("PRAGMA busy_timeout = 10000")
        # Readers never wait for the writer and the writer never waits for
        # readers (WAL); ``INSERT OR REPLACE`` fires DELETE triggers too, so
        # the append-only audit log cannot be rewritten that way.
        if database and database != ":memory:":
            cursor.execute("PRAGMA journal_mode = WAL")
            cursor.execute("PRAGMA synchronous = NORMAL")
        cursor.execute("PRAGMA recursive_triggers = ON")
        if cursor.execute("SELECT CheckSpatialMetaData()").fetchone()[0] < 1:
            cursor.execute("SELECT InitSpatialMetaData(1, 'NONE')")
        if not cursor.execute(
            "SELECT 1 FROM spatial_ref_sys WHERE srid = ?", (_STORAGE_SRID,)
        ).fetchone():
            cursor.execute("SELECT InsertEpsgSrid(?)", (_STORAGE_SRID,))
        cursor.close()

    @event.listens_for(engine, "begin")
    def _begin(connection: Any) -> None:
        # A write transaction takes the write lock when it starts: SQLite
        # refuses to upgrade a deferred reader to a writer once another
        # connection holds the lock, at once and whatever busy_timeout says,
        # whereas BEGIN IMMEDIATE waits for the lock (busy_timeout).
        write = connection.get_execution_options().get(WRITE_OPTION, False)
        connection.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")

    return engine


def is_unique_violation(error: Exception) -> bool:
    """Whether a database error is a unique-constraint violation (either dialect)."""
    original = getattr(error, "orig", None)
    if getattr(original, "sqlstate", None) == "23505":  # psycopg 3
        return True
    return "UNIQUE constraint failed" in str(original)


#: (dialect, table, columns) -> the driver's INSERT statement and each column's bind processor.
_BULK_INSERTS: dict[
    tuple[str, str, tuple[str, ...]], tuple[str, list[tuple[int, Callable[[Any], Any]]]]
] = {}


def _bulk_statement(
    dialect: Dialect, table: Table, columns: tuple[str, ...]
) -> tuple[str, list[tuple[int, Callable[[Any], Any]]]]:
    key = (dialect.name, table.name, columns)
    found = _BULK_INSERTS.get(key)
    if found is None:
        quote = dialect.identifier_preparer.quote
        # SQLite's driver takes ``?``; psycopg takes ``%s`` for positional values.
        mark = "?" if dialect.paramstyle == "qmark" else "%s"
        sql = (
            f"INSERT INTO {quote(table.name)} ({', '.join(quote(name) for name in columns)}) "
            f"VALUES ({', '.join([mark] * len(columns))})"
        )
        processors: list[tuple[int, Callable[[Any], Any]]] = []
        for index, name in enumerate(columns):
            # The column type's own conversion (aware times to naive UTC and,
            # on SQLite, to its text form; JSON to text or psycopg's Json):
            # stored exactly as through SQLAlchemy's statements.
            process = table.c[name].type.dialect_impl(dialect).bind_processor(dialect)
            if process is not None:
                processors.append((index, process))
        found = _BULK_INSERTS[key] = (sql, processors)
    return found


def bulk_insert(
    connection: Connection,
    table: Table,
    columns: Sequence[str],
    rows: Iterable[Sequence[Any]],
) -> None:
    """Insert ``rows`` (plain tuples, values in the order of ``columns``) in one ``executemany``.

    For batches on a hot path (the intake writer): SQLAlchemy's per-row
    parameter handling of an ``insert()`` (a dict built and compiled per row)
    costs more than the database's work. The statement goes to the driver
    as it is, inside the connection's transaction; psycopg pipelines an
    ``executemany``, SQLite runs one prepared statement. Errors are
    SQLAlchemy's as with any statement (``IntegrityError``...).
    """
    dialect = connection.dialect
    sql, processors = _bulk_statement(dialect, table, tuple(columns))
    if processors:
        params = []
        for row in rows:
            values = list(row)
            for index, process in processors:
                values[index] = process(values[index])
            params.append(tuple(values))
    else:
        params = [tuple(row) for row in rows]
    if params:
        connection.exec_driver_sql(sql, params)


def bbox_filter(
    dialect: str, column: Any, table: str, bbox: tuple[float, float, float, float]
) -> ColumnElement[bool]:
    """Return a WHERE clause selecting rows whose geometry meets ``bbox`` (EPSG:4490).

    PostGIS uses its GiST index through ``&&``; SpatiaLite needs its
    R*Tree virtual table queried explicitly.
    """
    minx, miny, maxx, maxy = bbox
    if dialect == "postgresql":
        envelope = func.ST_MakeEnvelope(minx, miny, maxx, maxy, _STORAGE_SRID)
        return func.ST_Intersects(column, envelope)
    frame = func.BuildMbr(minx, miny, maxx, maxy, _STORAGE_SRID)
    candidates = (
        select(text("rowid"))
        .select_from(text("SpatialIndex"))
        .where(
            text("f_table_name = :spatial_table AND f_geometry_column = 'geom'").bindparams(
                spatial_table=table
            ),
            text("search_frame = BuildMbr(:minx, :miny, :maxx, :maxy, 4490)").bindparams(
                minx=minx, miny=miny, maxx=maxx, maxy=maxy
            ),
        )
    )
    return column.table.c.id.in_(candidates) & (func.ST_Intersects(column, frame) == 1)


def geometry_as_wkb(column: Any) -> Any:
    """Select a geometry as plain ISO WKB in either dialect."""
    return func.ST_AsBinary(column, type_=None)


# INSERT OR REPLACE deletes the old row without firing DELETE triggers
# (unless recursive_triggers is on): refuse any insert of a taken id.
_SQLITE_NO_REPLACE = [
    "CREATE TRIGGER audit_log_no_replace BEFORE INSERT ON audit_log "
    "WHEN EXISTS (SELECT 1 FROM audit_log WHERE id = NEW.id) "
    "BEGIN SELECT RAISE(ABORT, 'audit_log is append-only: REPLACE refused'); END",
]

_APPEND_ONLY = {
    "postgresql": [
        """
        CREATE OR REPLACE FUNCTION tongge_append_only() RETURNS trigger
        LANGUAGE plpgsql AS $$
        BEGIN
            RAISE EXCEPTION '% is append-only: % refused', TG_TABLE_NAME, TG_OP
                USING ERRCODE = 'insufficient_privilege';
        END $$
        """,
        "CREATE TRIGGER audit_log_append_only BEFORE UPDATE OR DELETE ON audit_log "
        "FOR EACH ROW EXECUTE FUNCTION tongge_append_only()",
        "CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON audit_log "
        "FOR EACH STATEMENT EXECUTE FUNCTION tongge_append_only()",
    ],
    "sqlite": [
        "CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log "
        "BEGIN SELECT RAISE(ABORT, 'audit_log is append-only: UPDATE refused'); END",
        "CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log "
        "BEGIN SELECT RAISE(ABORT, 'audit_log is append-only: DELETE refused'); END",
    ],
}


def append_only_statements(dialect: str) -> list[str]:
    """Return the DDL that makes ``audit_log`` refuse UPDATE and DELETE."""
    return _APPEND_ONLY[dialect]


def no_replace_statements(dialect: str) -> list[str]:
    """Return the DDL refusing an insert over an existing audit row (SQLite only).

    PostgreSQL has no ``INSERT OR REPLACE``; ``ON CONFLICT DO UPDATE`` fires
    the UPDATE trigger.
    """
    return list(_SQLITE_NO_REPLACE) if dialect == "sqlite" else []


def erase_append_only(connection: Any, table: Any) -> None:
    """Empty an append-only table (test suites and demo resets, never the application).

    PostgreSQL lets the table's owner switch its triggers off inside the
    transaction; SQLite triggers cannot be switched off, so they are dropped
    and created again.
    """
    name = connection.dialect.name
    if name == "postgresql":
        connection.execute(text(f"ALTER TABLE {table.name} DISABLE TRIGGER USER"))
        connection.execute(table.delete())
        connection.execute(text(f"ALTER TABLE {table.name} ENABLE TRIGGER USER"))
        return
    for trigger in ("audit_log_no_update", "audit_log_no_delete", "audit_log_no_replace"):
        connection.execute(text(f"DROP TRIGGER IF EXISTS {trigger}"))
    connection.execute(table.delete())
    for statement in [*append_only_statements(name), *no_replace_statements(name)]:
        connection.execute(text(statement))


#: Counter name -> the tables whose changes bump it (as migration 0005 made
#: them; migration 0009 adds ``streets`` to ``places``: map tiles draw them).
REVISION_COUNTERS: dict[str, tuple[str, ...]] = {
    "boundaries": ("units", "imports", "layers", "levels"),
    "places": ("buildings", "households", "places"),
    "staff": ("staff",),
    "access": ("users", "api_keys"),
}


def revision_trigger_statements(dialect: str) -> list[str]:
    """Return the DDL of triggers bumping ``revisions`` in every writing transaction.

    A counter row updated inside the writing transaction is commit-ordered:
    the row lock makes a second writer wait until the first commits, and a
    reader sees the new value exactly when it sees the change (an id taken
    from a sequence at insert time is neither). PostgreSQL bumps once per
    statement; SQLite has only row triggers (one cheap in-page update each).
    """
    statements: list[str] = []
    if dialect == "postgresql":
        statements.append(
            """
            CREATE OR REPLACE FUNCTION tongge_bump_revision() RETURNS trigger
            LANGUAGE plpgsql AS $$
            BEGIN
                UPDATE revisions SET value = value + 1 WHERE name = TG_ARGV[0];
                RETURN NULL;
            END $$
            """
        )
        for counter, tables in REVISION_COUNTERS.items():
            for table in tables:
                statements.append(
                    f"CREATE TRIGGER {table}_bump_revision AFTER INSERT OR UPDATE OR DELETE "
                    f"ON {table} FOR EACH STATEMENT "
                    f"EXECUTE FUNCTION tongge_bump_revision('{counter}')"
                )
        return statements
    for counter, tables in REVISION_COUNTERS.items():
        for table in tables:
            for operation in ("INSERT", "UPDATE", "DELETE"):
                statements.append(
                    f"CREATE TRIGGER {table}_bump_{operation.lower()} AFTER {operation} "
                    f"ON {table} BEGIN UPDATE revisions SET value = value + 1 "
                    f"WHERE name = '{counter}'; END"
                )
    return statements
