"""Issue 9 item 4: a small file may not expand into rows, columns or bytes beyond the limits.

A 1,185-byte Parquet file once grew the server by a gigabyte. Every format
is now checked against ``TONGGE_MAX_FILE_ROWS``, ``…_COLUMNS`` and
``…_DECOMPRESSED_BYTES`` before it is read where the file declares its
size, and while it is read in bounded chunks; over a limit is a 413.
"""

from __future__ import annotations

import gzip
import io
import json
import os
import sqlite3
import zipfile
from collections.abc import Iterator
from pathlib import Path

import geopandas as gpd
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pyogrio
import pytest
from fastapi.testclient import TestClient
from httpx import Response
from shapely import Point, box
from typer.testing import CliRunner

from api.cli import app as cli_app
from gis.errors import InputError
from gis.files import ReadLimits
from gis.io import read_frame
from gis.repository import Database
from gis.settings import Settings, get_settings
from tests._client import signed_in
from tests.fixtures_governance import load_governance

MiB = 1024 * 1024
ROWS, COLUMNS, BYTES = 1000, 20, 8 * MiB
LIMITS = ReadLimits(max_rows=ROWS, max_columns=COLUMNS, max_bytes=BYTES)


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    db = Database(f"sqlite:///{tmp_path_factory.mktemp('db') / 'tongge.sqlite'}")
    db.migrate()
    load_governance(db)
    settings = Settings(
        database_url=db.url,
        load_sample_city=False,
        index_refresh_seconds=0,
        max_file_rows=ROWS,
        max_file_columns=COLUMNS,
        max_file_decompressed_bytes=BYTES,
    )
    with signed_in(db, settings=settings) as test_client:
        yield test_client
    db.dispose()


def upload(client: TestClient, name: str, content: bytes) -> Response:
    tabular = name.endswith((".csv", ".parquet"))
    return client.post(
        "/api/v1/geocode/batch",
        params={"x": "lon", "y": "lat"} if tabular else {},
        files={"file": (name, content)},
    )


def assert_too_large(response: Response, name: str, what: str) -> None:
    assert response.status_code == 413, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    detail = response.json()["detail"]
    assert detail.startswith(f"{name}: too large to read") and what in detail, detail


def parquet_bytes(table: pa.Table, **options: object) -> bytes:
    sink = io.BytesIO()
    pq.write_table(table, sink, compression="zstd", **options)
    return sink.getvalue()


def test_parquet_declaring_many_rows_is_refused_from_its_footer(client: TestClient) -> None:
    rows = 1_000_000  # 16 MB of coordinates in a file of a few kilobytes
    table = pa.table({"lon": np.full(rows, 118.5), "lat": np.full(rows, 24.9)})
    content = parquet_bytes(table)
    assert len(content) < 20_000
    assert_too_large(upload(client, "bomb.parquet", content), "bomb.parquet", "rows")


def test_parquet_repeating_one_huge_value_is_refused_before_it_expands(
    client: TestClient,
) -> None:
    # 100 rows sharing one 1 MiB dictionary value: ~1 kB on disk, 100 MiB as
    # plain strings. Stored without the Arrow schema, so readers expand it.
    value = pa.array(["x" * MiB])
    notes = pa.DictionaryArray.from_arrays(pa.array(np.zeros(100, dtype=np.int32)), value)
    table = pa.table({"lon": np.full(100, 118.5), "lat": np.full(100, 24.9), "note": notes})
    content = parquet_bytes(table, store_schema=False)
    assert len(content) < 20_000
    assert_too_large(upload(client, "notes.parquet", content), "notes.parquet", "bytes")


def test_parquet_declaring_many_bytes_is_refused(client: TestClient) -> None:
    noise = [os.urandom(50_000).hex() for _ in range(100)]  # 10 MB, incompressible
    table = pa.table({"lon": np.full(100, 118.5), "lat": np.full(100, 24.9), "noise": noise})
    assert_too_large(
        upload(client, "noise.parquet", parquet_bytes(table)), "noise.parquet", "bytes"
    )


def test_parquet_with_too_many_columns_is_refused(client: TestClient) -> None:
    table = pa.table({f"c{i}": [1.0] for i in range(25)} | {"lon": [118.5], "lat": [24.9]})
    assert_too_large(
        upload(client, "wide.parquet", parquet_bytes(table)), "wide.parquet", "columns"
    )


def test_csv_rows_columns_and_header_are_limited(client: TestClient) -> None:
    rows = b"lon,lat\n" + b"118.5,24.9\n" * 1001
    assert_too_large(upload(client, "rows.csv", rows), "rows.csv", "rows")
    wide = ",".join(f"c{i}" for i in range(25)).encode() + b",lon,lat\n"
    assert_too_large(upload(client, "wide.csv", wide), "wide.csv", "columns")
    long_header = b"x" * (2 * MiB) + b"\n1\n"
    assert_too_large(upload(client, "long.csv", long_header), "long.csv", "header line")


def test_compressed_csv_is_not_accepted(client: TestClient) -> None:
    content = gzip.compress(b"lon,lat\n" + b"118.5,24.9\n" * 5000)
    response = upload(client, "events.csv", content)
    assert response.status_code == 400
    assert "gzip" in response.json()["detail"]
    response = upload(client, "events.csv.gz", content)
    assert response.status_code == 400


def geojson_points(count: int, properties: int = 1) -> bytes:
    features = [
        {
            "type": "Feature",
            "properties": {f"p{j}": j for j in range(properties)},
            "geometry": {"type": "Point", "coordinates": [118.5, 24.9]},
        }
        for _ in range(count)
    ]
    return json.dumps({"type": "FeatureCollection", "features": features}).encode()


def test_geojson_rows_and_columns_are_limited(client: TestClient) -> None:
    assert_too_large(upload(client, "many.geojson", geojson_points(1001)), "many.geojson", "rows")
    assert_too_large(
        upload(client, "wide.geojson", geojson_points(1, properties=25)), "wide.geojson", "columns"
    )
    assert upload(client, "fine.geojson", geojson_points(10)).status_code == 200


def test_every_vector_format_is_limited(tmp_path: Path) -> None:
    points = gpd.GeoDataFrame({"n": range(1001)}, geometry=[Point(118.5, 24.9)] * 1001, crs=4326)
    for driver, suffix in (("GPKG", "gpkg"), ("FlatGeobuf", "fgb"), ("KML", "kml")):
        path = tmp_path / f"many.{suffix}"
        pyogrio.write_dataframe(points, path, driver=driver)
        with pytest.raises(InputError, match="more than 1,000 rows") as caught:
            read_frame(path, limits=LIMITS)
        assert caught.value.details["status"] == 413
        assert len(read_frame(path, limits=ReadLimits(max_rows=2000))) == 1001


def test_a_geopackage_lying_about_its_count_is_still_limited(tmp_path: Path) -> None:
    path = tmp_path / "lying.gpkg"
    gpd.GeoDataFrame({"n": range(1500)}, geometry=[Point(0, 0)] * 1500, crs=4490).to_file(path)
    with sqlite3.connect(path) as db:
        db.execute("UPDATE gpkg_ogr_contents SET feature_count = 1")
    with pytest.raises(InputError, match="more than 1,000 rows"):
        read_frame(path, limits=LIMITS)


def zip_bomb(tmp_path: Path) -> Path:
    """Write a zipped Shapefile whose .dbf inflates to 24 MiB from a few kilobytes."""
    gpd.GeoDataFrame({"code": ["1"]}, geometry=[box(0, 0, 1, 1)], crs=4490).to_file(
        tmp_path / "grid.shp"
    )
    path = tmp_path / "grid.zip"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for suffix in (".shp", ".shx", ".prj"):
            archive.write(tmp_path / f"grid{suffix}", f"grid{suffix}")
        dbf = (tmp_path / "grid.dbf").read_bytes()
        archive.writestr("grid.dbf", dbf + bytes(24 * MiB))
    assert path.stat().st_size < 100_000
    return path


def test_zip_bomb_is_refused(tmp_path: Path) -> None:
    path = zip_bomb(tmp_path)
    with pytest.raises(InputError, match="bytes once decompressed") as caught:
        read_frame(path, limits=LIMITS)
    assert caught.value.details["status"] == 413
    assert len(read_frame(path, limits=ReadLimits(max_bytes=64 * MiB))) == 1


def test_cli_limits_come_from_the_settings(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, client: TestClient
) -> None:
    monkeypatch.setenv("TONGGE_MAX_FILE_DECOMPRESSED_BYTES", str(8 * MiB))
    get_settings.cache_clear()
    try:
        assert ReadLimits.from_settings().max_bytes == 8 * MiB
        result = CliRunner().invoke(cli_app, ["check", str(zip_bomb(tmp_path))])
    finally:
        get_settings.cache_clear()
    assert result.exit_code == 2
    assert "too large to read" in result.output and "Traceback" not in result.output
