"""Persistence of layers and dated unit versions (PostGIS or SpatiaLite).

The only package that imports SQLAlchemy. Services get a :class:`Repository`
from :meth:`Database.transaction` and see GeoDataFrames and dataclasses,
never sessions or rows.

Examples
--------
>>> import tempfile
>>> from gis.layers import GOVERNANCE
>>> db = Database(f"sqlite:///{tempfile.mkdtemp()}/example.sqlite")
>>> db.migrate()
>>> with db.transaction() as repo:
...     repo.ensure_layer(GOVERNANCE)
>>> with db.reader() as repo:
...     [level.name for level in repo.layer_spec(name="governance").levels][:3]
['county', 'street', 'community']
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from importlib import resources

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, inspect, text
from sqlalchemy.exc import DataError, IntegrityError, SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from gis.errors import ConflictError, InputError, UnavailableError
from gis.repository._dialect import (
    WRITE_OPTION,
    database_file,
    display_url,
    erase_append_only,
    is_unique_violation,
    make_engine,
)
from gis.repository._incidents import PARTITIONS, KeyTaken, ensure_partitions
from gis.repository._store import Repository
from gis.repository._types import ImportSummary, LayerSummary, LevelSummary
from gis.repository.models import Base

__all__ = [
    "Database",
    "ImportSummary",
    "KeyTaken",
    "LayerSummary",
    "LevelSummary",
    "Repository",
    "database_file",
    "display_url",
]


class Database:
    """A database holding the registry; cheap to create, connects lazily.

    Parameters
    ----------
    url : str
        ``sqlite:///PATH`` for SpatiaLite or ``postgresql+psycopg://...``.
    spatialite_library : str
        The SpatiaLite module SQLite loads.
    """

    def __init__(self, url: str, *, spatialite_library: str = "mod_spatialite") -> None:
        self.url = url
        self.engine: Engine = make_engine(url, spatialite_library=spatialite_library)
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)
        self._writers = sessionmaker(
            self.engine.execution_options(**{WRITE_OPTION: True}), expire_on_commit=False
        )

    @property
    def dialect(self) -> str:
        """``"postgresql"`` or ``"sqlite"``."""
        return self.engine.dialect.name

    def migrate(self) -> None:
        """Bring the schema to the newest migration (idempotent)."""
        config = Config()
        location = resources.files("gis.repository") / "migrations"
        config.set_main_option("script_location", str(location))
        with self.engine.begin() as connection:
            config.attributes["connection"] = connection
            command.upgrade(config, "head")
            ensure_partitions(connection)

    def prepare_incidents(self, at: datetime) -> None:
        """Make sure incidents received at ``at`` have their monthly partition (PostgreSQL).

        Asked once per month and process; a no-op on SQLite.
        """
        PARTITIONS.ensure(self.engine, at)

    def is_migrated(self) -> bool:
        """Whether the schema exists (UnavailableError when the server cannot be reached)."""
        try:
            return inspect(self.engine).has_table("units")
        except SQLAlchemyError as error:
            raise UnavailableError("the database cannot be reached", cause=_cause(error)) from None

    @contextmanager
    def transaction(self) -> Iterator[Repository]:
        """Yield a repository whose changes commit together, or not at all.

        The transaction holds the write lock from its start (SQLite: ``BEGIN
        IMMEDIATE``, waiting up to ``busy_timeout`` for another writer), so
        keep long computations (validation, assignment) outside it.
        """
        session: Session = self._writers()
        try:
            with session.begin():
                yield Repository(session)
        except DataError as error:
            raise _unstorable(error) from None
        except IntegrityError as error:
            if not is_unique_violation(error):
                raise
            raise ConflictError(
                "another change to the same data was saved at the same time: reload and try again"
            ) from None
        finally:
            session.close()

    @contextmanager
    def reader(self) -> Iterator[Repository]:
        """Yield a repository for reading; anything written is rolled back."""
        session: Session = self._sessions()
        try:
            session.begin()
            yield Repository(session)
        except DataError as error:
            raise _unstorable(error) from None
        finally:
            session.rollback()
            session.close()

    def check_writable(self) -> None:
        """Raise UnavailableError unless the database accepts a write (rolled back).

        Rewrites the one row of ``alembic_version`` in place and rolls back:
        a read-only SQLite file or folder, a read-only PostgreSQL session or
        standby, or a lost connection all refuse it. On SQLite a write lock
        held by someone else (an import) means writable, not broken: the probe
        waits 0.2 s for it, not the usual busy timeout.
        """
        sqlite = self.dialect == "sqlite"
        try:
            connection = self.engine.connect()
        except SQLAlchemyError as error:
            raise UnavailableError("the database cannot be reached", cause=_cause(error)) from None
        try:
            with connection, connection.begin() as transaction:
                usual = 0
                if sqlite:  # a connection setting, not part of the transaction
                    usual = int(connection.exec_driver_sql("PRAGMA busy_timeout").scalar() or 0)
                    connection.exec_driver_sql("PRAGMA busy_timeout = 200")
                try:
                    connection.execute(text("UPDATE alembic_version SET version_num = version_num"))
                finally:
                    if sqlite:
                        connection.exec_driver_sql(f"PRAGMA busy_timeout = {usual}")
                transaction.rollback()
        except SQLAlchemyError as error:
            if sqlite and "locked" in _cause(error):
                return
            raise UnavailableError("the database refuses writes", cause=_cause(error)) from None

    def truncate(self) -> None:
        """Delete every row of every table (test suites and demo resets only)."""
        with self.engine.begin() as connection:
            for table in reversed(Base.metadata.sorted_tables):
                if table.name == "revisions":
                    continue  # counters only grow: caches must never see an old value again
                if table.name == "audit_log":
                    erase_append_only(connection, table)
                else:
                    connection.execute(table.delete())

    def dispose(self) -> None:
        """Close every pooled connection."""
        self.engine.dispose()


def _cause(error: SQLAlchemyError) -> str:
    # The driver's first line (for the server log), never the statement.
    return str(getattr(error, "orig", None) or error).splitlines()[0]


def _unstorable(error: DataError) -> InputError:
    # A value the database refuses (NUL characters, out-of-range numbers):
    # the caller's input, not a server fault. The message names the cause
    # without echoing the statement or its parameters.
    cause = str(error.orig).splitlines()[0] if error.orig is not None else "invalid value"
    return InputError(f"a value cannot be stored or compared: {cause}")
