"""Exports: every format over HTTP as on the command line, named files, times with their offset."""

from __future__ import annotations

import io
import re
import zipfile
from collections.abc import Iterator
from pathlib import Path

import geopandas as gpd
import pandas as pd
import pytest
from fastapi.testclient import TestClient
from shapely import box
from typer.testing import CliRunner

from api.cli import app
from gis.io import EXPORT_FORMATS
from gis.places import import_buildings
from gis.repository import Database
from gis.settings import get_settings
from gis.units import import_file
from tests._client import signed_in

#: The first version starts at 00:00 China time on 1 January 2026 (16:00 UTC the day before).
FIRST = "2026-01-01T00:00:00+08:00"
#: File name suffixes that differ from the format's name.
SUFFIX = {"shp": "zip"}
TABLES = ("csv", "xlsx")  # no geometry column, a `wkt` text column


@pytest.fixture
def city(db: Database, tmp_path: Path) -> Database:
    """Return the database with a county, its two streets (from 2026-01-01) and a building."""
    county = tmp_path / "county.geojson"
    gpd.GeoDataFrame(
        {"code": ["350502"], "name": ["鲤城区"]},
        geometry=[box(118.55, 24.88, 118.62, 24.93)],
        crs=4490,
    ).to_file(county)
    streets = tmp_path / "streets.geojson"
    gpd.GeoDataFrame(
        {
            "code": ["350502001", "350502002"],
            "name": ["海滨街道", "临江街道"],
            "parent_code": ["350502", "350502"],
        },
        geometry=[box(118.55, 24.88, 118.585, 24.93), box(118.585, 24.88, 118.62, 24.93)],
        crs=4490,
    ).to_file(streets)
    import_file(db, path=county, layer="governance", level="county", valid_from="2026-01-01")
    import_file(db, path=streets, layer="governance", level="street", valid_from="2026-01-01")
    buildings = tmp_path / "buildings.geojson"
    gpd.GeoDataFrame(
        {"key": ["b1"], "address": ["福建省泉州市鲤城区海滨街道中山路1号"], "floors": [3]},
        geometry=[box(118.560, 24.900, 118.5602, 24.9002)],
        crs=4490,
    ).to_file(buildings)
    import_buildings(db, path=buildings)
    return db


@pytest.fixture
def client(city: Database) -> Iterator[TestClient]:
    with signed_in(city) as signed:
        yield signed


def read_back(path: Path, fmt: str) -> pd.DataFrame:
    """Read an exported file with the standard tools (pandas, geopandas/pyogrio)."""
    if fmt == "csv":
        return pd.read_csv(path, dtype=str)
    if fmt == "xlsx":
        return pd.read_excel(path, dtype=str)
    if fmt == "parquet":
        return gpd.read_parquet(path)
    return gpd.read_file(path)


def check_file(path: Path, fmt: str) -> None:
    frame = read_back(path, fmt)
    assert sorted(frame["code"].astype(str)) == ["350502001", "350502002"]
    names = frame["Name" if fmt == "kml" else "name"]  # KML's own <name>
    assert set(names) == {"海滨街道", "临江街道"}
    # GDAL reads the text back as an aware time: with its offset either way.
    times = {v.isoformat() if hasattr(v, "isoformat") else v for v in frame["valid_from"]}
    assert times == {FIRST}
    if fmt in ("geojson", "kml", "csv"):
        assert FIRST in path.read_text(encoding="utf-8")
    if fmt not in TABLES:
        assert isinstance(frame, gpd.GeoDataFrame) and frame.crs is not None
        assert frame.geometry.notna().all()
    if fmt == "shp":
        with zipfile.ZipFile(path) as archive:
            names = archive.namelist()
        assert sorted(Path(n).suffix for n in names) == [".cpg", ".dbf", ".prj", ".shp", ".shx"]
        assert all(Path(n).stem == path.stem for n in names)


@pytest.mark.parametrize("fmt", EXPORT_FORMATS)
def test_http_export_offers_every_cli_format(
    client: TestClient, tmp_path: Path, fmt: str
) -> None:
    response = client.get(
        "/api/v1/layers/governance/export",
        params={"format": fmt, "level": "street", "at": "2026-12-06"},
    )
    assert response.status_code == 200, response.text
    disposition = response.headers["content-disposition"]
    name = f"governance_street_2026-12-06.{SUFFIX.get(fmt, fmt)}"
    assert re.search(rf'filename="?{re.escape(name)}"?', disposition), disposition
    path = tmp_path / name
    path.write_bytes(response.content)
    check_file(path, fmt)


def test_http_export_name_without_level_or_time(client: TestClient) -> None:
    response = client.get("/api/v1/layers/governance/export", params={"format": "shp"})
    assert response.status_code == 200, response.text
    disposition = response.headers["content-disposition"]
    assert re.search(r"governance_all_\d{4}-\d{2}-\d{2}\.zip", disposition), disposition
    with zipfile.ZipFile(io.BytesIO(response.content)) as archive:
        assert len(archive.namelist()) == 5
    bad = client.get("/api/v1/layers/governance/export", params={"format": "xlsx2"})
    assert bad.status_code == 422


@pytest.mark.parametrize("fmt", EXPORT_FORMATS)
def test_cli_export_writes_times_with_their_offset(
    city: Database, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fmt: str
) -> None:
    monkeypatch.setenv("TONGGE_DATABASE_URL", city.url)
    get_settings.cache_clear()
    try:
        target = tmp_path / f"streets.{SUFFIX.get(fmt, fmt)}"
        args = ["export", "--layer", "governance", "--level", "street", "--format", fmt]
        result = CliRunner().invoke(app, [*args, "-o", str(target)])
        assert result.exit_code == 0, result.output
    finally:
        get_settings.cache_clear()
    check_file(target, fmt)
