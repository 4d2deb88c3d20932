"""Issue 9 item 10: CSV exports cannot carry spreadsheet formulas.

A unit named ``=HYPERLINK("http://x","y")`` or a household room ``@SUM(A1)``
used to reach grid workers' spreadsheets verbatim and run there. Every
CSV writer now quotes such text cells (OWASP), and leaves numbers alone.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from pathlib import Path

import geopandas as gpd
import numpy as np
import openpyxl
import pandas as pd
import pytest
from fastapi.testclient import TestClient
from shapely import box
from typer.testing import CliRunner

from api.cli import app as cli_app
from gis.access import SYSTEM
from gis.files import safe_cell, spreadsheet_safe, write_csv
from gis.places import import_buildings, import_households
from gis.repository import Database
from gis.settings import Settings, get_settings
from gis.units import import_units
from tests._client import signed_in
from tests.fixtures_governance import load_governance

EVIL = '=HYPERLINK("http://x","y")'
DDE = "+cmd|' /C calc'!A0"
GRID = "350502001001001"


def rows(text: str) -> list[dict[str, str]]:
    # Every CSV tongge writes starts with a UTF-8 byte-order mark (for Excel).
    assert text.startswith("\ufeff")
    return list(csv.DictReader(io.StringIO(text.removeprefix("\ufeff"))))


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (EVIL, "'" + EVIL),
        (DDE, "'" + DDE),
        ("-2+3+cmd|' /C calc'!A0", "'-2+3+cmd|' /C calc'!A0"),
        ("@SUM(A1)", "'@SUM(A1)"),
        ("\t=1", "'\t=1"),
        ("\r=1", "'\r=1"),
        ("＝1+1", "'＝1+1"),
        ("-3.5", "-3.5"),
        ("+86", "+86"),
        ("1e-3", "1e-3"),
        ("临江街道", "临江街道"),
        ("a=b", "a=b"),
        ("", ""),
        (-3.5, -3.5),
        (None, None),
    ],
)
def test_safe_cell(value: object, expected: object) -> None:
    assert safe_cell(value) == expected


def test_spreadsheet_safe_keeps_numbers_numbers() -> None:
    frame = pd.DataFrame(
        {
            "name": [EVIL, "ok", None],
            "depth": [-3.5, 2.0, np.nan],
            "count": pd.array([-1, 2, None], dtype="Int64"),
            "kind": pd.Categorical(["@x", "y", "y"]),
            "=cmd": ["a", "b", "c"],
        }
    )
    safe = spreadsheet_safe(frame)
    assert list(safe["name"])[:2] == ["'" + EVIL, "ok"] and pd.isna(safe["name"][2])
    assert safe["depth"].dtype == float and list(safe["depth"])[:2] == [-3.5, 2.0]
    assert safe["count"].dtype == "Int64"
    assert list(safe["kind"]) == ["'@x", "y", "y"]
    assert list(safe.columns) == ["name", "depth", "count", "kind", "'=cmd"]
    assert frame["name"][0] == EVIL  # the input is not changed
    text = write_csv(frame)
    assert text is not None
    assert rows(text)[0] == {
        "name": "'" + EVIL,
        "depth": "-3.5",
        "count": "-1",
        "kind": "'@x",
        "'=cmd": "a",
    }


@pytest.fixture(scope="module")
def database(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Database]:
    """Make a grid named like a formula, with a building and formula-like households."""
    folder = tmp_path_factory.mktemp("formulas")
    db = Database(f"sqlite:///{folder / 'tongge.sqlite'}")
    db.migrate()
    load_governance(db)
    grid = gpd.GeoDataFrame(
        {
            "code": [GRID],
            "name": [EVIL],
            "parent_code": ["350502001001"],
            "kind": ["comprehensive"],
            "attributes": [{"depth": -3.5, "note": DDE}],
        },
        geometry=[box(118.50, 24.925, 118.55, 24.95)],
        crs=4490,
    )
    import_units(
        db, units=grid, layer="governance", level="grid", source="test", valid_from="2026-01-01"
    )
    buildings = folder / "buildings.geojson"
    gpd.GeoDataFrame(
        {"key": ["-B1"], "address": ["=1+1"]},
        geometry=[box(118.505, 24.935, 118.506, 24.936)],
        crs=4490,
    ).to_file(buildings)
    import_buildings(db, path=buildings, actor=SYSTEM)
    households = folder / "households.csv"
    pd.DataFrame(
        {
            "key": ["H1"],
            "building_key": ["-B1"],
            "room": ["@SUM(A1)"],
            "floor": [-1],
            "persons": [3],
        }
    ).to_csv(households, index=False)
    import_households(db, path=households, actor=SYSTEM)
    yield db
    db.dispose()


@pytest.fixture(scope="module")
def client(database: Database) -> Iterator[TestClient]:
    settings = Settings(database_url=database.url, load_sample_city=False, index_refresh_seconds=0)
    with signed_in(database, settings=settings) as test_client:
        yield test_client


def assert_grid_row(row: dict[str, str]) -> None:
    assert row["name"] == "'" + EVIL
    assert row["note"] == "'" + DDE
    assert row["depth"] == "-3.5"


def test_cli_unit_export(
    database: Database, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TONGGE_DATABASE_URL", database.url)
    monkeypatch.setenv("TONGGE_LOAD_SAMPLE_CITY", "false")
    get_settings.cache_clear()
    target = tmp_path / "grids.csv"
    try:
        result = CliRunner().invoke(
            cli_app,
            [
                "export",
                "--layer",
                "governance",
                "--level",
                "grid",
                "--format",
                "csv",
                "-o",
                str(target),
            ],
        )
        assert result.exit_code == 0, result.output
        assert_grid_row(rows(target.read_text())[0])
        result = CliRunner().invoke(
            cli_app, ["assign", "--level", "grid", "-o", str(tmp_path / "assigned.csv")]
        )
        assert result.exit_code == 0, result.output
        assert rows((tmp_path / "assigned.csv").read_text())[0]["key"] == "'-B1"
        # In Excel files text cells are typed as text: never a formula, no quote needed.
        result = CliRunner().invoke(
            cli_app, ["assign", "--level", "grid", "-o", str(tmp_path / "assigned.xlsx")]
        )
        assert result.exit_code == 0, result.output
        sheet = openpyxl.load_workbook(tmp_path / "assigned.xlsx").worksheets[0]
        header = [c.value for c in sheet[1]]
        key = sheet[2][header.index("key")]
        assert (key.value, key.data_type) == ("-B1", "s")
    finally:
        get_settings.cache_clear()


def test_api_unit_export(client: TestClient) -> None:
    response = client.get(
        "/api/v1/layers/governance/export", params={"format": "csv", "level": "grid"}
    )
    assert response.status_code == 200, response.text
    assert_grid_row(rows(response.text)[0])


def test_api_households_export(client: TestClient) -> None:
    response = client.get(f"/api/v1/units/{GRID}/households/export", params={"format": "csv"})
    assert response.status_code == 200, response.text
    row = rows(response.text)[0]
    assert row["room"] == "'@SUM(A1)" and row["building_key"] == "'-B1"
    assert row["floor"] in ("-1", "-1.0")


def test_batch_geocode_csv(client: TestClient) -> None:
    upload = pd.DataFrame(
        {"lon": [118.51], "lat": [24.94], "note": [EVIL], "depth": [-3.5], "who": ["-张三"]}
    ).to_csv(index=False)
    response = client.post(
        "/api/v1/geocode/batch",
        params={"x": "lon", "y": "lat"},
        files={"file": ("events.csv", upload)},
    )
    assert response.status_code == 200, response.text
    row = rows(response.text)[0]
    assert row["note"] == "'" + EVIL and row["who"] == "'-张三"
    assert row["depth"] == "-3.5" and row["lon"] == "118.51"
    assert row["governance_grid"] == GRID
