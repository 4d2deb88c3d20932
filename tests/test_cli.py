"""The ``tongge`` command line: check contract and exit codes, import/export round trips."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import geopandas as gpd
import numpy as np
import pytest
import shapely
from shapely import box
from typer.testing import CliRunner

from api.cli import app
from gis.io import EXPORT_FORMATS, read_frame
from gis.repository import Database
from gis.settings import get_settings
from gis.units import units_page
from gis.validate import RULES

runner = CliRunner()


@pytest.fixture
def cli_db(db: Database, monkeypatch: pytest.MonkeyPatch) -> Iterator[Database]:
    """Point the CLI at the test database."""
    monkeypatch.setenv("TONGGE_DATABASE_URL", db.url)
    monkeypatch.setenv("TONGGE_LOAD_SAMPLE_CITY", "false")
    get_settings.cache_clear()
    yield db
    get_settings.cache_clear()


def tongge(*args: str | Path) -> tuple[int, str, str]:
    result = runner.invoke(app, [str(a) for a in args])
    if result.exception and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result.exit_code, result.stdout, result.stderr


def districts_from_beats(chicago: Path, tmp_path: Path) -> Path:
    beats = gpd.read_file(chicago / "police_beats.geojson")
    districts = beats.dissolve(by="DISTRICT", as_index=False)[["DISTRICT", "geometry"]]
    path = tmp_path / "districts.geojson"
    districts.rename(columns={"DISTRICT": "code"}).to_file(path)
    return path


def test_check_clean_real_beats_json_contract(chicago: Path) -> None:
    code, out, _ = tongge(
        "check", chicago / "police_beats.geojson", "--code-field", "BEAT_NUM", "--format", "json"
    )
    assert code == 0
    report = json.loads(out)
    assert report["ok"] is True and report["problems"] == []
    assert set(report) >= {"ok", "problems", "warnings"}


def test_check_reports_problems_with_exit_1(tmp_path: Path) -> None:
    path = tmp_path / "grids.geojson"
    gpd.GeoDataFrame(
        {"code": ["a", "b"]},
        geometry=[box(118.50, 24.90, 118.52, 24.92), box(118.51, 24.90, 118.53, 24.92)],
        crs=4490,
    ).to_file(path)
    code, out, _ = tongge("check", path, "--format", "json")
    assert code == 1
    problem = json.loads(out)["problems"][0]
    assert set(problem) == {"rule", "codes", "lon", "lat", "area_m2", "message"}
    assert problem["rule"] == "overlap" and problem["codes"] == ["a", "b"]
    assert 118.51 <= problem["lon"] <= 118.52 and 24.90 <= problem["lat"] <= 24.92
    assert problem["area_m2"] == pytest.approx(1010.0 * 2222.0, rel=0.01)
    assert problem["rule"] in RULES


def test_check_text_output(tmp_path: Path, chicago: Path) -> None:
    code, out, _ = tongge(
        "check",
        chicago / "police_beats.geojson",
        "--code-field",
        "BEAT_NUM",
        "--parent-field",
        "DISTRICT",
        "--parent",
        districts_from_beats(chicago, tmp_path),
        "--level",
        "beat",
    )
    assert code == 0, out
    assert "no problems" in out


@pytest.mark.parametrize(
    ("setup", "message"),
    [
        ("missing", "no such file"),
        ("garbage", "cannot read"),
        ("points", "no polygons at all"),
        ("nocrs", "no CRS"),
        ("badfield", "no field 'NOPE'"),
        ("nocode", "no code field found"),
    ],
)
def test_check_unusable_input_exits_2_without_traceback(
    tmp_path: Path, setup: str, message: str
) -> None:
    path = tmp_path / "input.geojson"
    args: list[str | Path] = ["check", path]
    square = box(118.5, 24.9, 118.51, 24.91)
    if setup == "garbage":
        path.write_text("this is not geojson {")
    elif setup == "points":
        gpd.GeoDataFrame({"code": ["1"]}, geometry=[shapely.Point(118.5, 24.9)], crs=4490).to_file(
            path
        )
    elif setup == "nocrs":
        path = tmp_path / "input.csv"
        path.write_text(f'code,wkt\n1,"{square.wkt}"\n')
        args = ["check", path]
    elif setup == "badfield":
        gpd.GeoDataFrame({"code": ["1"]}, geometry=[square], crs=4490).to_file(path)
        args += ["--code-field", "NOPE"]
    elif setup == "nocode":
        gpd.GeoDataFrame({"label": ["1"]}, geometry=[square], crs=4490).to_file(path)
    code, _, err = tongge(*args)
    assert code == 2
    assert message in err
    assert "Traceback" not in err


def test_check_no_crs_json_names_the_rule(tmp_path: Path) -> None:
    path = tmp_path / "input.csv"
    path.write_text(f'code,wkt\n1,"{box(0, 0, 1, 1).wkt}"\n')
    code, out, _ = tongge("check", path, "--format", "json")
    assert code == 2
    problems = json.loads(out)["problems"]
    assert [p["rule"] for p in problems] == ["crs_missing"]
    assert (problems[0]["lon"], problems[0]["lat"]) == (0.5, 0.5)  # raw degrees, centre
    code, _, _ = tongge("check", path, "--crs", "EPSG:4490")
    assert code == 0


def test_check_reports_non_polygons_among_polygons(tmp_path: Path) -> None:
    path = tmp_path / "mixed.geojson"
    gpd.GeoDataFrame(
        {"code": ["1", "2"]},
        geometry=[box(118.5, 24.9, 118.51, 24.91), shapely.Point(118.6, 24.9)],
        crs=4490,
    ).to_file(path)
    code, out, _ = tongge("check", path, "--format", "json")
    assert code == 1
    assert [p["rule"] for p in json.loads(out)["problems"]] == ["wrong_geometry_type"]


def test_console_script_runs_as_a_process(tmp_path: Path) -> None:
    """The installed entry point exits 2 with one line, no traceback, on a missing file."""
    result = subprocess.run(
        [
            sys.executable,
            "-c",
            "from api.cli import main; main()",
            "check",
            str(tmp_path / "x.shp"),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 2
    assert "no such file" in result.stderr and "Traceback" not in result.stderr


def test_import_then_export_round_trip_every_format(
    cli_db: Database, chicago: Path, tmp_path: Path
) -> None:
    districts = districts_from_beats(chicago, tmp_path)
    assert (
        tongge(
            "import",
            districts,
            "--layer",
            "police",
            "--level",
            "station",
            "--valid-from",
            "2026-01-01",
        )[0]
        == 0
    )
    code, out, err = tongge(
        "import",
        chicago / "police_beats.geojson",
        "--layer",
        "police",
        "--level",
        "beat",
        "--code-field",
        "BEAT_NUM",
        "--parent-field",
        "DISTRICT",
        "--valid-from",
        "2026-01-01",
    )
    assert code == 0, out + err
    stored, total = units_page(cli_db, layer="police", level="beat", limit=1000)
    assert total == 275  # 277 features; beat 3100 has three parts
    original = stored.set_index("code").geometry
    for fmt in EXPORT_FORMATS:
        out_path = tmp_path / f"beats.{fmt}"
        code, _, err = tongge(
            "export", "--layer", "police", "--level", "beat", "--format", fmt, "-o", out_path
        )
        assert code == 0, err
        back = read_frame(out_path)
        if back.crs is None:  # CSV carries WKT only; it is written in EPSG:4490
            back = back.set_crs(4490)
        back = back.to_crs(4490)
        code_column = "code" if "code" in back else "Name"
        back = back.set_index(back[code_column].astype(str)).geometry
        assert sorted(back.index) == sorted(original.index), fmt
        for beat in original.index:
            a = shapely.get_coordinates(original[beat])
            b = shapely.get_coordinates(back[beat])
            assert a.shape == b.shape, (fmt, beat)
            assert np.abs(a - b).max() < 1e-7, (fmt, beat)


def test_failed_import_changes_nothing(cli_db: Database, tmp_path: Path) -> None:
    path = tmp_path / "overlapping.geojson"
    gpd.GeoDataFrame(
        {"code": ["a", "b"]},
        geometry=[box(118.50, 24.90, 118.52, 24.92), box(118.51, 24.90, 118.53, 24.92)],
        crs=4490,
    ).to_file(path)
    code, out, err = tongge("import", path, "--layer", "police", "--level", "station")
    assert code == 1
    assert "overlap" in out and "nothing was imported" in err
    with cli_db.reader() as repo:
        assert repo.is_empty()


def test_export_unknown_layer_exits_2(cli_db: Database, tmp_path: Path) -> None:
    code, _, err = tongge("export", "--layer", "nope", "--format", "geojson", "-o", tmp_path / "x")
    assert code == 2 and "no layer 'nope'" in err


def test_import_declared_gcj02_is_converted(cli_db: Database, tmp_path: Path) -> None:
    from gis.datum import wgs84_to_gcj02

    square = box(118.58, 24.90, 118.59, 24.91)
    shifted = shapely.transform(
        square, lambda xy: np.column_stack(wgs84_to_gcj02(xy[:, 0], xy[:, 1]))
    )
    path = tmp_path / "gcj.geojson"
    gpd.GeoDataFrame({"code": ["S1"]}, geometry=[shifted], crs=4326).to_file(path)
    assert (
        tongge("import", path, "--layer", "police", "--level", "station", "--crs", "gcj02")[0] == 0
    )
    stored, _ = units_page(cli_db, layer="police")
    assert (
        np.abs(
            shapely.get_coordinates(stored.geometry.iloc[0])
            - shapely.get_coordinates(shapely.MultiPolygon([square]))
        ).max()
        < 1e-8
    )
