"""Open the configured database: migrate it and, when empty, load the sample city."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from gis.places import import_buildings, import_households, import_pois
from gis.repository import Database
from gis.settings import Settings, get_settings
from gis.streets import import_streets
from gis.units import import_manifest

__all__ = ["open_database"]


def open_database(
    settings: Settings | None = None,
    *,
    step: Callable[[str], None] | None = None,
) -> Database:
    """Return a ready database: schema migrated, sample city loaded on first use.

    The sample city is loaded only into a database without any unit and
    only when ``TONGGE_LOAD_SAMPLE_CITY`` is true (the default, so that the
    embedded database works out of the box).
    """
    settings = settings or get_settings()
    db = Database(settings.database_url, spatialite_library=settings.spatialite_library)
    db.migrate()
    if settings.load_sample_city:
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
