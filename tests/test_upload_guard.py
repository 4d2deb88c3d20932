"""Issue 9 item 1: user files are opened only by their declared format's reader.

An OGR VRT document uploaded under any accepted name once made GDAL read
the service's own SQLite file, a CSV key file, ``/proc/self/environ`` or a
URL (SSRF) and return it row by row. Every such document, under every
suffix, through the HTTP batch endpoint, the CLI and the gis readers, must
now be refused with a 4xx that shows no secret and no server path.
"""

from __future__ import annotations

import http.server
import json
import os
import sqlite3
import tempfile
import threading
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import ClassVar

import geopandas as gpd
import pandas as pd
import pyogrio
import pytest
import shapely
from fastapi.testclient import TestClient
from httpx import Response
from shapely import box
from typer.testing import CliRunner

from api.cli import app as cli_app
from gis.errors import InputError
from gis.files import FORMATS, apply_driver_policy, gdal_drivers, write_xlsx
from gis.io import read_frame, read_units
from gis.locate import LocateService
from gis.locate.batch import BATCH_FORMATS, geocode_file
from gis.places import import_buildings, import_households
from gis.repository import Database
from gis.settings import Settings, get_settings
from tests._client import signed_in
from tests.fixtures_governance import load_governance

SECRET = "TONGGE-SECRET-7f3a9c51"
ALL_SUFFIXES = sorted({s for f in FORMATS for s in f.suffixes} | {".xlsx", ".vrt"})


class _Recorder(http.server.BaseHTTPRequestHandler):
    hits: ClassVar[list[str]] = []

    def do_GET(self) -> None:
        type(self).hits.append(self.path)
        body = f"field_1\n{SECRET}\n".encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_HEAD = do_GET  # noqa: N815

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def web() -> Iterator[tuple[str, list[str]]]:
    """Serve HTTP locally, recording every request (a GDAL fetch would show here)."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Recorder)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", _Recorder.hits
    server.shutdown()


@pytest.fixture(scope="module")
def secrets(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Make a folder with a service-like SQLite database, a key CSV and a ZIP of it."""
    folder = tmp_path_factory.mktemp("secrets")
    with sqlite3.connect(folder / "service.sqlite") as db:
        db.execute("CREATE TABLE users (username TEXT, password_hash TEXT)")
        db.execute("INSERT INTO users VALUES ('admin', ?)", (f"$argon2id${SECRET}",))
    (folder / "secret_key.csv").write_text(f"{SECRET}\n")
    with zipfile.ZipFile(folder / "keys.zip", "w") as archive:
        archive.write(folder / "secret_key.csv", "secret_key.csv")
    return folder


def _layer(source: str, table: str, options: str = "", relative: bool = False) -> str:
    # Points at 118.5, 24.9 next to every secret row, so the old reader
    # geocoded them and answered 200 with the secrets in the table.
    return (
        "<OGRVRTDataSource>\n"
        '  <OGRVRTLayer name="leak">\n'
        f'    <SrcDataSource relativeToVRT="{int(relative)}">{source}</SrcDataSource>\n'
        f"    {options}\n"
        '    <SrcSQL dialect="SQLITE">'
        f'SELECT *, 118.5 AS lon, 24.9 AS lat FROM "{table}"</SrcSQL>\n'
        "    <GeometryType>wkbPoint</GeometryType>\n"
        "    <LayerSRS>EPSG:4490</LayerSRS>\n"
        '    <GeometryField encoding="PointFromColumns" x="lon" y="lat"/>\n'
        "  </OGRVRTLayer>\n"
        "</OGRVRTDataSource>\n"
    )


def vrt_documents(secrets: Path, url: str, near: str | None = None) -> dict[str, str]:
    """Return the probe's VRT documents, by name (``near``: where relative paths start)."""
    no_header = '<OpenOptions><OOI key="HEADERS">NO</OOI></OpenOptions>'
    relative = os.path.relpath(secrets / "secret_key.csv", near or tempfile.gettempdir())
    return {
        "sqlite": _layer(str(secrets / "service.sqlite"), "users"),
        "csv_prefix": _layer(f"CSV:{secrets / 'secret_key.csv'}", "secret_key", no_header),
        "environ": _layer("CSV:/proc/self/environ", "environ", no_header),
        "relative": _layer(
            relative if near else f"../{relative}", "secret_key", no_header, relative=True
        ),
        "vsicurl": _layer(f"/vsicurl/{url}/leak.csv", "leak"),
        "vsizip": _layer(f"/vsizip/{secrets / 'keys.zip'}/secret_key.csv", "secret_key", no_header),
    }


def assert_nothing_leaked(text: str, hits: list[str]) -> None:
    assert SECRET not in text
    assert "PATH=" not in text and "HOME=" not in text  # /proc/self/environ
    assert hits == []


# --- HTTP ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def database(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Database]:
    db = Database(f"sqlite:///{tmp_path_factory.mktemp('db') / 'tongge.sqlite'}")
    db.migrate()
    load_governance(db)
    yield db
    db.dispose()


@pytest.fixture(scope="module")
def client(database: Database) -> Iterator[TestClient]:
    settings = Settings(database_url=database.url, load_sample_city=False, index_refresh_seconds=0)
    with signed_in(database, settings=settings) as test_client:
        yield test_client


def assert_clean_problem(response: Response, name: str) -> dict[str, object]:
    """Assert a 4xx problem+json naming the upload by its own name, no server path."""
    assert 400 <= response.status_code < 500, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body: dict[str, object] = response.json()
    detail = str(body["detail"])
    assert name in detail
    assert "tongge-batch" not in response.text
    assert tempfile.gettempdir() + "/" not in detail
    return body


@pytest.mark.parametrize("suffix", ALL_SUFFIXES)
def test_batch_refuses_vrt_under_every_name(
    client: TestClient, secrets: Path, web: tuple[str, list[str]], suffix: str
) -> None:
    url, hits = web
    for kind, document in vrt_documents(secrets, url).items():
        name = f"events-{kind}{suffix}"
        response = client.post(
            "/api/v1/geocode/batch",
            params={"x": "lon", "y": "lat"},
            files={"file": (name, document.encode())},
        )
        assert_nothing_leaked(response.text, hits)
        assert_clean_problem(response, name)
    assert client.get("/health").status_code == 200


def test_batch_names_the_problem_not_the_server(client: TestClient, secrets: Path) -> None:
    document = vrt_documents(secrets, "http://127.0.0.1:9")["sqlite"]
    response = client.post("/api/v1/geocode/batch", files={"file": ("x.geojson", document)})
    body = assert_clean_problem(response, "x.geojson")
    assert "VRT" in str(body["detail"]) and str(secrets) not in response.text
    xml = '<?xml version="1.0"?><gml:FeatureCollection xmlns:gml="http://www.opengis.net/gml"/>'
    response = client.post("/api/v1/geocode/batch", files={"file": ("y.geojson", xml)})
    body = assert_clean_problem(response, "y.geojson")
    assert "XML" in str(body["detail"])
    response = client.post("/api/v1/geocode/batch", files={"file": ("z.geojson", "{'link': 1")})
    assert "invalid JSON" in str(assert_clean_problem(response, "z.geojson")["detail"])


def test_batch_refuses_a_geojson_with_a_linked_crs(
    client: TestClient, web: tuple[str, list[str]]
) -> None:
    url, hits = web
    crs = {"type": "link", "properties": {"href": f"{url}/crs.wkt", "type": "ogcwkt"}}
    feature = {
        "type": "Feature",
        "properties": {"id": 1},
        "geometry": {"type": "Point", "coordinates": [118.5, 24.9], "CRS": crs},
    }
    for document in (
        {"type": "FeatureCollection", "crs": crs, "features": [feature]},
        {"type": "FeatureCollection", "features": [feature]},
    ):
        response = client.post(
            "/api/v1/geocode/batch", files={"file": ("linked.geojson", json.dumps(document))}
        )
        body = assert_clean_problem(response, "linked.geojson")
        assert "linked CRS" in str(body["detail"])
    escaped = json.dumps({"type": "FeatureCollection", "crs": crs, "features": []}).replace(
        '"link"', '"\\u006cink"'
    )
    response = client.post("/api/v1/geocode/batch", files={"file": ("esc.geojson", escaped)})
    assert_clean_problem(response, "esc.geojson")
    assert hits == []


def test_batch_still_reads_every_batch_format(client: TestClient, tmp_path: Path) -> None:
    points = gpd.GeoDataFrame(
        {"id": [1, 2]}, geometry=[shapely.Point(118.5, 24.9), shapely.Point(118.6, 24.95)], crs=4490
    )
    drivers = {"geojson": "GeoJSON", "gpkg": "GPKG", "fgb": "FlatGeobuf", "kml": "KML"}
    for fmt in BATCH_FORMATS:
        path = tmp_path / f"events.{fmt}"
        params = {}
        if fmt == "csv":
            pd.DataFrame({"lon": [118.5], "lat": [24.9]}).to_csv(path, index=False)
            params = {"x": "lon", "y": "lat"}
        elif fmt == "parquet":
            pd.DataFrame({"lon": [118.5], "lat": [24.9]}).to_parquet(path)
            params = {"x": "lon", "y": "lat"}
        elif fmt == "xlsx":
            write_xlsx(pd.DataFrame({"lon": [118.5], "lat": [24.9]}), path)
        else:
            frame = points.to_crs(4326) if fmt == "kml" else points
            pyogrio.write_dataframe(frame, path, driver=drivers[fmt])
        response = client.post(
            "/api/v1/geocode/batch", params=params, files={"file": (path.name, path.read_bytes())}
        )
        assert response.status_code == 200, (fmt, response.text)


# --- gis readers and CLI ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def disguised(
    secrets: Path, web: tuple[str, list[str]], tmp_path_factory: pytest.TempPathFactory
) -> list[Path]:
    """Every VRT document under every suffix, as files."""
    folder = tmp_path_factory.mktemp("disguised")
    paths = []
    documents = vrt_documents(secrets, web[0], near=str(folder))
    for kind, document in documents.items():
        for suffix in ALL_SUFFIXES:
            path = folder / f"{kind}{suffix}"
            path.write_text(document)
            paths.append(path)
    return paths


def test_gis_readers_refuse_every_disguised_vrt(
    disguised: list[Path], web: tuple[str, list[str]], database: Database, tmp_path: Path
) -> None:
    locator = LocateService(database, refresh_seconds=0)
    for path in disguised:
        for read in (
            read_frame,
            read_units,
            lambda p: import_buildings(database, path=p),
            lambda p: import_households(database, path=p),
            lambda p, path=path: geocode_file(locator, p, tmp_path / f"out{path.suffix}"),
        ):
            with pytest.raises(InputError) as caught:
                read(path)
            assert_nothing_leaked(caught.value.message, web[1])
            assert str(path.name) in caught.value.message


@pytest.fixture
def cli_env(database: Database, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("TONGGE_DATABASE_URL", database.url)
    monkeypatch.setenv("TONGGE_LOAD_SAMPLE_CITY", "false")
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


def test_cli_commands_refuse_disguised_vrt(
    cli_env: None, disguised: list[Path], web: tuple[str, list[str]], tmp_path: Path
) -> None:
    runner = CliRunner()
    chosen = [p for p in disguised if p.suffix in (".geojson", ".gpkg", ".csv", ".kml")]
    for path in chosen:
        for args in (
            ["check", str(path)],
            ["import", str(path), "--layer", "governance", "--level", "grid"],
            ["places", "import", "buildings", str(path)],
            ["geocode", str(path), "-o", str(tmp_path / f"out{path.suffix}")],
        ):
            result = runner.invoke(cli_app, args)
            assert result.exit_code == 2, (args, result.output)
            assert_nothing_leaked(result.output, web[1])
            assert "Traceback" not in result.output


@pytest.mark.parametrize(
    "given",
    [
        "CSV:{secrets}/secret_key.csv",
        "/vsicurl/{url}/x.geojson",
        "/vsizip/{secrets}/keys.zip/secret_key.csv",
        "GPKG:{secrets}/service.sqlite:users",
        "/proc/self/environ",
        "{secrets}",
    ],
)
def test_cli_refuses_gdal_paths_and_non_files(
    given: str, secrets: Path, web: tuple[str, list[str]]
) -> None:
    path = given.format(secrets=secrets, url=web[0])
    with pytest.raises(InputError) as caught:
        read_frame(path)
    assert_nothing_leaked(caught.value.message, web[1])


def _gpkg(path: Path, *statements: str) -> Path:
    gpd.GeoDataFrame({"code": ["1"]}, geometry=[box(0, 0, 1, 1)], crs=4490).to_file(
        path, layer="units", driver="GPKG"
    )
    with sqlite3.connect(path) as db:
        for statement in statements:
            db.execute(statement)
    return path


def test_geopackage_sql_that_runs_on_read_is_refused(tmp_path: Path) -> None:
    register = [
        "INSERT INTO gpkg_contents(table_name, data_type, identifier, srs_id) "
        "VALUES ('v', 'features', 'v', 4490)",
        "INSERT INTO gpkg_geometry_columns VALUES ('v', 'geom', 'POLYGON', 4490, 0, 0)",
    ]
    view = _gpkg(
        tmp_path / "view.gpkg",
        "CREATE VIEW v AS SELECT fid, geom, printf('%.*c', 50000000, 'x') AS big FROM units",
        *register,
    )
    generated = _gpkg(
        tmp_path / "generated.gpkg",
        "CREATE TABLE v (fid INTEGER PRIMARY KEY, geom BLOB, "
        "big TEXT AS (printf('%.*c', 50000000, 'x')))",
        "INSERT INTO v (fid, geom) SELECT fid, geom FROM units",
        *register,
    )
    virtual = _gpkg(
        tmp_path / "virtual.gpkg",
        "PRAGMA writable_schema = ON",
        "INSERT INTO sqlite_master (type, name, tbl_name, rootpage, sql) VALUES ('table', 'v', "
        "'v', 0, 'CREATE VIRTUAL TABLE v USING VirtualOGR(''/proc/self/environ'')')",
    )
    for path, what in ((view, "view"), (generated, "generated column"), (virtual, "VirtualOGR")):
        with pytest.raises(InputError, match=what):
            read_frame(path)
    plain = tmp_path / "plain.sqlite.gpkg"
    with sqlite3.connect(plain) as db:
        db.execute("CREATE TABLE users (password_hash TEXT)")
    with pytest.raises(InputError, match="not a GeoPackage"):
        read_frame(plain)


def test_kml_with_declarations_is_refused(tmp_path: Path, web: tuple[str, list[str]]) -> None:
    path = tmp_path / "entities.kml"
    path.write_text(
        '<?xml version="1.0"?>\n'
        f'<!DOCTYPE kml [<!ENTITY s SYSTEM "file:///proc/self/environ">'
        f'<!ENTITY w SYSTEM "{web[0]}/xxe">]>\n'
        '<kml xmlns="http://www.opengis.net/kml/2.2"><Placemark><name>&s;&w;</name>'
        "<Point><coordinates>1,2</coordinates></Point></Placemark></kml>"
    )
    with pytest.raises(InputError, match="DOCTYPE") as caught:
        read_frame(path)
    assert_nothing_leaked(caught.value.message, web[1])


def test_only_the_formats_gdal_drivers_stay_loaded() -> None:
    apply_driver_policy()
    loaded = set(pyogrio.list_drivers())
    for dangerous in (
        "OGR_VRT",
        "GDALG",
        "HTTP",
        "WFS",
        "OAPIF",
        "GML",
        "GPSBabel",
        "SQLite",
        "CSV",
    ):
        assert dangerous not in loaded
    assert loaded - gdal_drivers() <= {"MapInfo File"}


def test_every_format_still_reads(tmp_path: Path) -> None:
    units = gpd.GeoDataFrame(
        {"code": ["350502001"], "name": ["临江街道"]},
        geometry=[box(118.5, 24.9, 118.51, 24.91)],
        crs=4490,
    )
    for fmt in FORMATS:
        if fmt.reader == "gdal" and not fmt.archive:
            path = tmp_path / f"units{fmt.suffixes[0]}"
            frame = units.to_crs(4326) if fmt.name == "kml" else units
            pyogrio.write_dataframe(frame, path, driver=fmt.driver)
    units.to_parquet(tmp_path / "units.parquet")
    pd.DataFrame({"code": ["350502001"], "wkt": [units.geometry[0].wkt]}).to_csv(
        tmp_path / "units.csv", index=False
    )
    write_xlsx(
        pd.DataFrame({"code": ["350502001"], "wkt": [units.geometry[0].wkt]}),
        tmp_path / "units.xlsx",
    )
    with zipfile.ZipFile(tmp_path / "units.zip", "w", zipfile.ZIP_DEFLATED) as archive:
        for part in tmp_path.glob("units.*"):
            if part.suffix in (".shp", ".shx", ".dbf", ".prj", ".cpg"):
                archive.write(part, f"folder/{part.name}")
        archive.writestr("__MACOSX/folder/._units.shp", b"\x00\x05\x16\x07")
    for fmt in FORMATS:
        path = tmp_path / f"units{fmt.suffixes[0] if fmt.name != 'zip' else '.zip'}"
        got = read_units(path, crs="EPSG:4490" if fmt.name in ("csv", "xlsx") else None)
        assert list(got["code"]) == ["350502001"], fmt.name
