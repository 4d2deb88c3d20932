"""Streets: repository (both dialects), imports (GeoJSON, GPKG, OSM PBF), CLI, sample city."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import geopandas as gpd
import pandas as pd
import pytest
import shapely
from shapely import LineString, box
from typer.testing import CliRunner

from api.cli import app
from boundaries import SAMPLE_CITY, SAMPLE_STREETS
from gis.errors import InputError
from gis.repository import Database
from gis.settings import get_settings
from gis.streets import import_streets, read_streets, streets_frame
from tests.conftest import SHARED_DATA
from tests.fixtures_city import city_db, sample_city_file  # noqa: F401  (fixtures)

MONACO = SHARED_DATA / "monaco" / "monaco.osm.pbf"
runner = CliRunner()

#   A small street network near Quanzhou (EPSG:4490), drawn as:
#
#        S1 温陵路 (arterial) ---------------------------
#                     |                  |
#                   S2 井亭巷          S3 (no name)
#                     |                  |
LINES = {
    "S1": LineString([(118.580, 24.910), (118.590, 24.910)]),
    "S2": LineString([(118.583, 24.910), (118.583, 24.905)]),
    "S3": LineString([(118.587, 24.910), (118.587, 24.905)]),
}


def _network(path: Path, *, driver: str = "GeoJSON") -> Path:
    frame = gpd.GeoDataFrame(
        {
            "key": list(LINES),
            "name": ["温陵路", "井亭巷", None],
            "class": ["arterial", "lane", "lane"],
            "surface": ["asphalt", "stone", None],
        },
        geometry=list(LINES.values()),
        crs="EPSG:4490",
    )
    frame.to_file(path, driver=driver)
    return path


# -- repository, both dialects ----------------------------------------------------


def test_repository_round_trips_streets_and_filters_by_bbox(db: Database) -> None:
    frame = gpd.GeoDataFrame(
        {
            "key": list(LINES),
            "name": ["温陵路", "井亭巷", None],
            "class": ["arterial", "lane", "lane"],
            "attributes": [{"surface": "asphalt"}, {}, {}],
        },
        geometry=list(LINES.values()),
        crs="EPSG:4490",
    )
    with db.transaction() as repo:
        assert repo.streets.upsert(frame) == 3
    with db.reader() as repo:
        stored = repo.streets.frame()
        assert repo.streets.count() == 3
        west = repo.streets.frame(bbox=(118.5825, 24.904, 118.5835, 24.906))
    assert stored["key"].tolist() == ["S1", "S2", "S3"]
    assert stored["name"].tolist() == ["温陵路", "井亭巷", None]
    assert stored["class"].tolist() == ["arterial", "lane", "lane"]
    assert stored["attributes"].tolist()[0] == {"surface": "asphalt"}
    assert stored.crs.to_epsg() == 4490
    for key, geometry in zip(stored["key"], stored.geometry, strict=True):
        assert geometry.geom_type == "MultiLineString"
        assert shapely.equals(geometry, LINES[key])
    assert west["key"].tolist() == ["S2"]

    # Same key replaces; replace_all starts a new network.
    renamed = frame.iloc[[0]].assign(name="温陵北路")
    with db.transaction() as repo:
        repo.streets.upsert(renamed)
    with db.reader() as repo:
        assert repo.streets.count() == 3
        assert repo.streets.frame()["name"].tolist()[0] == "温陵北路"
    with db.transaction() as repo:
        repo.streets.upsert(frame.iloc[[1]], replace_all=True)
    with db.reader() as repo:
        assert repo.streets.frame()["key"].tolist() == ["S2"]


# -- imports ------------------------------------------------------------------------


@pytest.mark.parametrize(("suffix", "driver"), [(".geojson", "GeoJSON"), (".gpkg", "GPKG")])
def test_import_geojson_and_geopackage(
    db: Database, tmp_path: Path, suffix: str, driver: str
) -> None:
    path = _network(tmp_path / f"streets{suffix}", driver=driver)
    result = import_streets(db, path=path)
    assert result.count == 3 and result.classes == {"arterial": 1, "lane": 2}
    stored = streets_frame(db)
    assert stored["key"].tolist() == ["S1", "S2", "S3"]
    assert stored["name"].tolist() == ["温陵路", "井亭巷", None]
    assert stored["attributes"].tolist() == [{"surface": "asphalt"}, {"surface": "stone"}, {}]


def test_a_bad_row_refuses_the_whole_file_naming_it(db: Database, tmp_path: Path) -> None:
    _network(tmp_path / "good.geojson")
    import_streets(db, path=tmp_path / "good.geojson")
    bad = gpd.GeoDataFrame(
        {"key": ["S1", "S9"], "name": ["温陵路", "广场"]},
        geometry=[LINES["S1"], box(118.58, 24.90, 118.581, 24.901)],
        crs="EPSG:4490",
    )
    bad.to_file(tmp_path / "bad.geojson")
    with pytest.raises(InputError) as caught:
        import_streets(db, path=tmp_path / "bad.geojson", replace=True)
    assert "street 'S9': geometry is Polygon, expected a line" in caught.value.message
    assert caught.value.details["field"] == "geometry"
    assert len(streets_frame(db)) == 3  # nothing written, nothing deleted


@pytest.mark.filterwarnings("ignore:'crs' was not provided")
def test_duplicate_keys_and_missing_crs_are_refused(tmp_path: Path) -> None:
    twice = gpd.GeoDataFrame(
        {"key": ["A", "A"]}, geometry=[LINES["S1"], LINES["S2"]], crs="EPSG:4490"
    )
    twice.to_file(tmp_path / "twice.geojson")
    with pytest.raises(InputError, match="key 'A' appears more than once"):
        read_streets(tmp_path / "twice.geojson")
    bare = gpd.GeoDataFrame({"name": ["x"]}, geometry=[LINES["S1"]])
    bare.to_file(tmp_path / "bare.gpkg", driver="GPKG")
    with pytest.raises(InputError) as caught:
        read_streets(tmp_path / "bare.gpkg")
    assert caught.value.details["field"] == "crs"
    # Declared, it is read; no key column: keys are the row numbers.
    frame = read_streets(tmp_path / "bare.gpkg", crs="EPSG:4490")
    assert frame["key"].tolist() == ["S000001"] and frame["class"].tolist() == ["street"]


def test_osm_pbf_streets_of_monaco() -> None:
    frame = read_streets(MONACO)
    assert len(frame) > 500
    assert frame["key"].str.startswith("way/").all() and frame["key"].is_unique
    assert {"primary", "residential"} <= set(frame["class"])
    assert "Boulevard Albert 1er" in set(frame["name"])
    assert frame.crs.to_epsg() == 4490
    minx, miny, maxx, maxy = frame.total_bounds
    # Monaco and the ways the extract cuts at its edges (France, Italy).
    assert 7.3 < minx < maxx < 7.6 and 43.6 < miny < maxy < 43.9


# -- CLI ------------------------------------------------------------------------------


@pytest.fixture
def cli_db(db: Database, monkeypatch: pytest.MonkeyPatch) -> Iterator[Database]:
    monkeypatch.setenv("TONGGE_DATABASE_URL", db.url)
    monkeypatch.setenv("TONGGE_LOAD_SAMPLE_CITY", "false")
    get_settings.cache_clear()
    yield db
    get_settings.cache_clear()


def test_cli_import_then_export(cli_db: Database, tmp_path: Path) -> None:
    path = _network(tmp_path / "streets.gpkg", driver="GPKG")
    result = runner.invoke(app, ["streets", "import", str(path)])
    assert result.exit_code == 0, result.stderr
    assert "3 streets imported (arterial 1, lane 2)" in result.stderr

    result = runner.invoke(app, ["streets", "export"])
    assert result.exit_code == 0
    data = json.loads(result.stdout)
    assert data["crs"]["properties"]["name"] == "urn:ogc:def:crs:EPSG::4490"
    assert [f["properties"]["key"] for f in data["features"]] == ["S1", "S2", "S3"]

    target = tmp_path / "out" / "streets.gpkg"
    result = runner.invoke(app, ["streets", "export", "-o", str(target), "--format", "gpkg"])
    assert result.exit_code == 2 and "--output" in result.stderr  # no such folder: nothing made
    assert not target.parent.exists()
    target.parent.mkdir()
    result = runner.invoke(app, ["streets", "export", "-o", str(target), "--format", "gpkg"])
    assert result.exit_code == 0
    back = gpd.read_file(target)
    assert back["name"].tolist()[:2] == ["温陵路", "井亭巷"] and back.crs.to_epsg() == 4490

    result = runner.invoke(app, ["streets", "import", str(tmp_path / "missing.geojson")])
    assert result.exit_code == 2 and "missing.geojson" in result.stderr


# -- the sample city ------------------------------------------------------------------


def test_sample_streets_are_the_named_roads_of_the_addresses() -> None:
    streets = read_streets(SAMPLE_STREETS)
    assert len(streets) == 2204 and streets["key"].is_unique and streets["name"].is_unique
    assert dict(streets["class"].value_counts()) == {"lane": 2108, "arterial": 96}
    buildings = pd.read_parquet(SAMPLE_CITY / "places" / "buildings.parquet", columns=["road"])
    assert set(buildings["road"]) <= set(streets["name"])
    county = gpd.read_file(SAMPLE_CITY / "governance" / "county.geojson").geometry.iloc[0]
    # Inside the district (up to the 7-decimal rounding of its outline).
    assert shapely.union_all(streets.geometry.values).difference(county.buffer(1e-6)).is_empty


@pytest.mark.slow
def test_sample_city_database_holds_the_streets(city_db: Database) -> None:  # noqa: F811
    stored = streets_frame(city_db)
    assert len(stored) == 2204
    assert stored.iloc[0][["key", "name", "class"]].tolist() == ["S00001", "花园大道", "arterial"]
