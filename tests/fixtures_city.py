"""The bundled sample city in a SpatiaLite file, loaded once per run and copied per test.

A plugin of ``tests/conftest.py``: its fixtures are available to every test.

Loading the sample city (2,230 micro-grids, 25,900 buildings, their
households) takes about a minute; a test that changes it gets its own copy
of the file in a few milliseconds.
"""

from __future__ import annotations

import fcntl
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import geopandas as gpd
import pytest
import shapely
from sqlalchemy import text

from api.bootstrap import open_database
from gis.repository import Database
from gis.settings import Settings


@pytest.fixture(scope="session")
def sample_city_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Return a SQLite file holding the whole sample city (read-only: copy it to change it).

    Under pytest-xdist the first worker to ask builds it in the run's shared
    temporary folder while the others wait for it (a file lock), so the city
    is loaded once per run, not once per worker.
    """
    if not os.environ.get("PYTEST_XDIST_WORKER"):
        return _build(tmp_path_factory.mktemp("sample-city"))
    shared = tmp_path_factory.getbasetemp().parent / "sample-city"
    shared.mkdir(exist_ok=True)
    with (shared / "lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes
        path = shared / "city.sqlite"
        return path if path.exists() else _build(shared)


@pytest.fixture
def city_db(sample_city_file: Path, tmp_path: Path) -> Iterator[Database]:
    """Yield a private copy of the sample city."""
    target = tmp_path / "city.sqlite"
    shutil.copyfile(sample_city_file, target)
    db = Database(f"sqlite:///{target}")
    yield db
    db.dispose()


def move_strip(units: gpd.GeoDataFrame, giver: str, taker: str, metres: float) -> shapely.Geometry:
    """Move the part of ``giver`` within ``metres`` of ``taker`` into ``taker``; return it."""
    a = units.index[units["code"] == giver][0]
    b = units.index[units["code"] == taker][0]
    strip = units.geometry[a].intersection(units.geometry[b].buffer(metres / 111_320))
    units.loc[a, "geometry"] = units.geometry[a].difference(strip)
    units.loc[b, "geometry"] = units.geometry[b].union(strip)
    return strip


def _build(folder: Path) -> Path:
    # Built under another name and renamed when complete and closed, so a
    # file named city.sqlite is always the whole city in one file.
    building = folder / "building.sqlite"
    db = open_database(
        Settings(database_url=f"sqlite:///{building}", load_sample_city=True), create=True
    )
    with db.engine.connect() as connection:
        # One self-contained file: the write-ahead log folded in.
        connection.execute(text("PRAGMA wal_checkpoint(TRUNCATE)"))
    db.dispose()
    return building.replace(folder / "city.sqlite")
