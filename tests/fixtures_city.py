"""The bundled sample city in a SpatiaLite file, loaded once per session and copied per test.

Loading the sample city (2,225 micro-grids, 26,000 buildings, their
households) takes about a minute; a test that changes it gets its own copy
of the file in a few milliseconds.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import text

from api.bootstrap import open_database
from gis.repository import Database
from gis.settings import Settings


@pytest.fixture(scope="session")
def sample_city_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Return a SQLite file holding the whole sample city (read-only: copy it to change it)."""
    path = tmp_path_factory.mktemp("sample-city") / "city.sqlite"
    db = open_database(
        Settings(database_url=f"sqlite:///{path}", load_sample_city=True), create=True
    )
    with db.engine.connect() as connection:
        # One self-contained file: the write-ahead log folded in.
        connection.execute(text("PRAGMA wal_checkpoint(TRUNCATE)"))
    db.dispose()
    return path


@pytest.fixture
def city_db(sample_city_file: Path, tmp_path: Path) -> Iterator[Database]:
    """Yield a private copy of the sample city."""
    target = tmp_path / "city.sqlite"
    shutil.copyfile(sample_city_file, target)
    db = Database(f"sqlite:///{target}")
    yield db
    db.dispose()
