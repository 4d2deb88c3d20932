"""Open the configured database: migrate it and, when new and empty, load the sample city.

Only ``tongge init`` and the server's start (``tongge serve``) create the
database; every other command opens the one that exists, so that a command
run from another folder never makes a second, empty database.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

from gis.errors import NotInitializedError
from gis.places import import_buildings, import_households, import_pois
from gis.repository import Database, database_file, display_url
from gis.settings import Settings, get_settings
from gis.streets import import_streets
from gis.units import import_manifest

__all__ = ["open_database"]


def open_database(
    settings: Settings | None = None,
    *,
    create: bool = False,
    step: Callable[[str], None] | None = None,
) -> Database:
    """Return the configured database with its schema migrated.

    Parameters
    ----------
    settings : Settings, optional
        Where the database is (default: the environment's settings).
    create : bool
        Create it when it does not exist (a SQLite file readable by its
        owner only, in a folder of the owner only) and load the sample
        city into it when empty and ``TONGGE_LOAD_SAMPLE_CITY`` is true.
        Without it a database that does not exist is refused.

    Raises
    ------
    NotInitializedError
        When ``create`` is false and the file (or the PostGIS schema) does
        not exist: ``tongge init`` makes it.
    """
    settings = settings or get_settings()
    url = settings.database_url
    path = database_file(url)
    if path is not None:
        if not create and not path.exists():
            raise _not_initialized(url)
        if create:
            _private_file(path)
    db = Database(url, spatialite_library=settings.spatialite_library)
    if not create and path is None and not db.is_migrated():
        db.dispose()
        raise _not_initialized(url)
    db.migrate()
    if create and settings.load_sample_city:
        with db.reader() as repo:
            empty = repo.is_empty()
        if empty:
            from boundaries import SAMPLE_CITY  # data package, needed on first use only

            import_manifest(db, manifest=SAMPLE_CITY / "manifest.json", step=step)
            _load_sample_places(db, SAMPLE_CITY / "places", step=step)
            _load_sample_streets(db, SAMPLE_CITY / "streets.geojson", step=step)
    return db


def _load_sample_streets(db: Database, path: Path, *, step: Callable[[str], None] | None) -> None:
    # The sample city's synthetic street network, when bundled.
    if not path.exists():
        return
    if step is not None:
        step("streets")
    import_streets(db, path=path)


def _not_initialized(url: str) -> NotInitializedError:
    return NotInitializedError(
        f"database {display_url(url)} does not exist: run `tongge init` first "
        "(or set TONGGE_DATA_DIR / TONGGE_DATABASE_URL to the one `tongge serve` uses)",
        field="database_url",
    )


def _private_file(path: Path) -> None:
    # Households and password hashes: the owner only, from the first byte on.
    if not path.parent.exists():
        path.parent.mkdir(mode=0o700, parents=True)
        path.parent.chmod(0o700)  # mkdir's mode is filtered by the umask
    if not path.exists():
        os.close(os.open(path, os.O_CREAT | os.O_WRONLY, 0o600))
    path.chmod(0o600)
    for suffix in ("-wal", "-shm"):  # SQLite's companions, made by SQLite itself
        companion = path.with_name(path.name + suffix)
        if companion.exists():
            companion.chmod(0o600)


def _load_sample_places(db: Database, folder: Path, *, step: Callable[[str], None] | None) -> None:
    # The sample city's synthetic buildings, households and places, when bundled.
    files = {
        "buildings": folder / "buildings.parquet",
        "households": folder / "households.parquet",
        "pois": folder / "pois.geojson",
    }
    if not all(path.exists() for path in files.values()):
        return
    if step is not None:
        step("places")
    import_buildings(db, path=files["buildings"])
    import_households(db, path=files["households"])
    import_pois(db, path=files["pois"])
    shops = folder / "shops.parquet"  # ground-floor shops, lon/lat columns
    if shops.exists():
        import_pois(db, path=shops)
