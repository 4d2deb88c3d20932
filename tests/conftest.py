"""Shared fixtures: a fresh database per test on every dialect, real data paths.

Repository tests run on SpatiaLite *and* PostGIS (GeoAlchemy2 style). The
PostGIS database comes from ``TONGGE_TEST_POSTGRES_URL``; when it is
unreachable the test fails under CI (``CI`` set) and is skipped elsewhere,
and any skipped test fails a CI run (see ``pytest_terminal_summary``).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from gis.repository import Database

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
CHICAGO = SHARED_DATA / "chicago"
POSTGRES_URL = os.environ.get(
    "TONGGE_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/tongge_test"
)
DIALECTS = ["sqlite", "postgresql"]

os.environ.setdefault("SPATIALITE_LIBRARY_PATH", "mod_spatialite")
os.environ["TONGGE_LOAD_SAMPLE_CITY"] = "false"
os.environ.setdefault("TONGGE_SECRET_KEY", "tongge-test-signing-key-" + "k" * 32)


def _unavailable(reason: str) -> None:
    if os.environ.get("CI"):
        pytest.fail(f"PostGIS is required in CI: {reason}")
    pytest.skip(f"PostGIS unavailable: {reason}")


@pytest.fixture(scope="session")
def postgres_database() -> Iterator[Database]:
    """One migrated PostGIS database for the session (tables emptied per test)."""
    db = Database(POSTGRES_URL)
    try:
        db.migrate()
    except Exception as error:
        _unavailable(f"{POSTGRES_URL}: {error}".splitlines()[0])
    yield db
    db.dispose()


@pytest.fixture(params=DIALECTS)
def db(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Database]:
    """Yield a migrated, empty database: a new SpatiaLite file, or the emptied PostGIS one."""
    if request.param == "sqlite":
        database = Database(f"sqlite:///{tmp_path / 'tongge.sqlite'}")
        database.migrate()
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


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """Under CI a skipped test is a failure: nothing may silently not run."""
    skipped = terminalreporter.stats.get("skipped", [])
    if os.environ.get("CI") and skipped:
        terminalreporter.write_line(
            f"CI: {len(skipped)} test(s) skipped — failing the run", red=True
        )
        session = getattr(terminalreporter, "_session", None)
        if session is not None:
            session.exitstatus = pytest.ExitCode.TESTS_FAILED
