"""Everything that differs between PostGIS and SpatiaLite, in one place."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from geoalchemy2.admin.dialects.sqlite import load_spatialite_driver
from sqlalchemy import ColumnElement, Engine, create_engine, event, func, select, text
from sqlalchemy.engine import make_url

from gis.errors import InputError

__all__ = [
    "append_only_statements",
    "bbox_filter",
    "erase_append_only",
    "geometry_as_wkb",
    "make_engine",
]

_STORAGE_SRID = 4490


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
        if cursor.execute("SELECT CheckSpatialMetaData()").fetchone()[0] < 1:
            cursor.execute("SELECT InitSpatialMetaData(1, 'NONE')")
        if not cursor.execute(
            "SELECT 1 FROM spatial_ref_sys WHERE srid = ?", (_STORAGE_SRID,)
        ).fetchone():
            cursor.execute("SELECT InsertEpsgSrid(?)", (_STORAGE_SRID,))
        cursor.close()

    @event.listens_for(engine, "begin")
    def _begin(connection: Any) -> None:
        connection.exec_driver_sql("BEGIN")

    return engine


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
    connection.execute(text("DROP TRIGGER IF EXISTS audit_log_no_update"))
    connection.execute(text("DROP TRIGGER IF EXISTS audit_log_no_delete"))
    connection.execute(table.delete())
    for statement in append_only_statements(name):
        connection.execute(text(statement))
