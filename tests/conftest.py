"""Shared fixtures: a fresh database per test on every dialect, real data paths.

Repository tests run on SpatiaLite *and* PostGIS (GeoAlchemy2 style):

- SpatiaLite: one migrated template file per session (per xdist worker),
  copied per test — a file copy instead of an Alembic run.
- PostGIS: one migrated database per session, emptied per test. It comes from
  ``TONGGE_TEST_POSTGRES_URL``; each pytest-xdist worker uses its own
  database next to it (``<db>_gw0``, ``<db>_gw1`` …), created with PostGIS on
  first use. When PostGIS is unreachable the test fails under CI (``CI``
  set) and is skipped elsewhere, and any skipped test fails a CI run (the
  hook in ``tests/ci_gate.py``; ``.ci/run`` sets ``CI=1``).

Helpers shared by several test files live in fixture modules
(``tests/fixtures_*.py``), never in a test file.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, make_url, text
from sqlalchemy.exc import ProgrammingError

from gis.repository import Database
from tests.ci_gate import pytest_terminal_summary  # noqa: F401  (hook: a skip fails CI)

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
CHICAGO = SHARED_DATA / "chicago"
POSTGRES_URL = os.environ.get(
    "TONGGE_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/tongge_test"
)
DIALECTS = ["sqlite", "postgresql"]

# Fixture modules every test may use (imported once, not per test file).
pytest_plugins = ["tests.fixtures_city"]

os.environ.setdefault("SPATIALITE_LIBRARY_PATH", "mod_spatialite")
os.environ["TONGGE_LOAD_SAMPLE_CITY"] = "false"
os.environ.setdefault("TONGGE_SECRET_KEY", "tongge-test-signing-key-" + "k" * 32)


def worker_postgres_url(url: str, worker: str | None) -> str:
    """Return the PostGIS URL of one xdist worker (``gw0`` → ``<db>_gw0``); ``url`` when serial.

    Examples
    --------
    >>> worker_postgres_url("postgresql+psycopg://u@h:5432/tongge_test", "gw1")
    'postgresql+psycopg://u@h:5432/tongge_test_gw1'
    >>> worker_postgres_url("postgresql+psycopg://u@h:5432/tongge_test", None)
    'postgresql+psycopg://u@h:5432/tongge_test'
    """
    if not worker:
        return url
    parsed = make_url(url)
    return parsed.set(database=f"{parsed.database}_{worker}").render_as_string(
        hide_password=False
    )


def copy_database(template: Path, target: Path) -> Database:
    """Copy a closed SpatiaLite file (see :func:`sqlite_template`) and open the copy."""
    shutil.copyfile(template, target)
    return Database(f"sqlite:///{target}")


def _unavailable(reason: str) -> None:
    if os.environ.get("CI"):
        pytest.fail(f"PostGIS is required in CI: {reason}")
    pytest.skip(f"PostGIS unavailable: {reason}")


def _create_postgis_database(url: str) -> None:
    # The worker's database is made from the server's maintenance database;
    # the name comes from our own configuration, quoted as an identifier.
    target = make_url(url)
    name = target.database or ""
    admin = create_engine(target.set(database="postgres"), isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as connection:
            query = text("SELECT 1 FROM pg_database WHERE datname = :name")
            if connection.execute(query, {"name": name}).first() is None:
                try:
                    connection.execute(text(f'CREATE DATABASE "{name}"'))
                except ProgrammingError as error:  # created meanwhile by another run
                    if "already exists" not in str(error):
                        raise
    finally:
        admin.dispose()
    engine = create_engine(target, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as connection:
            # A test database starts from nothing: tables (and the migration
            # stamp) left by another branch's run would be trusted otherwise.
            connection.execute(text("DROP SCHEMA IF EXISTS public CASCADE"))
            connection.execute(text("CREATE SCHEMA public"))
            connection.execute(text("CREATE EXTENSION IF NOT EXISTS postgis"))
    finally:
        engine.dispose()


@pytest.fixture(scope="session", autouse=True)
def _default_database(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Point the configured database at a file of this session (of this xdist worker).

    A command a test runs without setting ``TONGGE_DATABASE_URL`` must never
    touch the developer's own database (``var/`` or the shell's setting),
    nor share one file between workers.
    """
    saved = os.environ.get("TONGGE_DATABASE_URL")
    path = tmp_path_factory.mktemp("default") / "tongge.sqlite"
    os.environ["TONGGE_DATABASE_URL"] = f"sqlite:///{path}"
    yield
    if saved is None:
        os.environ.pop("TONGGE_DATABASE_URL", None)
    else:
        os.environ["TONGGE_DATABASE_URL"] = saved


@pytest.fixture(scope="session")
def postgres_database() -> Iterator[Database]:
    """One migrated PostGIS database for the session (tables emptied per test)."""
    url = worker_postgres_url(POSTGRES_URL, os.environ.get("PYTEST_XDIST_WORKER"))
    try:
        _create_postgis_database(url)
        db = Database(url)
        db.migrate()
    except Exception as error:
        _unavailable(f"{make_url(url)!r}: {error}".splitlines()[0])
    yield db
    db.dispose()


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Return a migrated, empty SpatiaLite file to copy (never open it: copy it).

    The write-ahead log is checkpointed into the file and every connection
    closed before anyone copies it (SQLite then removes the log), so the copy
    is the whole database on its own.
    """
    path = tmp_path_factory.mktemp("template") / "tongge.sqlite"
    db = Database(f"sqlite:///{path}")
    db.migrate()
    with db.engine.connect() as connection:
        busy = connection.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)").scalar()
    db.dispose()
    leftovers = [p.name for p in path.parent.iterdir() if p != path]
    if busy or leftovers:
        raise RuntimeError(f"template {path} not self-contained: {busy=}, {leftovers=}")
    return path


@pytest.fixture(params=DIALECTS)
def db(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Database]:
    """Yield a migrated, empty database: a copy of the SpatiaLite template, or emptied PostGIS."""
    if request.param == "sqlite":
        template = request.getfixturevalue("sqlite_template")
        database = copy_database(template, tmp_path / "tongge.sqlite")
        yield database
        database.dispose()
    else:
        database = request.getfixturevalue("postgres_database")
        database.truncate()
        yield database
        database.truncate()


@pytest.fixture
def chicago() -> Path:
    """Return the real Chicago police data folder."""
    if not CHICAGO.exists():
        pytest.skip(f"real data folder {CHICAGO} is absent")
    return CHICAGO
