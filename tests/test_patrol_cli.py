"""``tongge patrol``: the plan contract (issue 16 item 8), export, check, score, errors."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import geopandas as gpd
import gpxpy
import numpy as np
import pytest
import shapely
from typer.testing import CliRunner

from api.cli import app
from gis.crs import local_projected_crs
from gis.patrol import read_route
from gis.repository import Database
from gis.settings import get_settings
from gis.units import units_page
from tests.fixtures_patrol import MONACO_PBF

runner = CliRunner()


def tongge(*args: str | Path) -> tuple[int, str, str]:
    result = runner.invoke(app, ["patrol", *[str(a) for a in args]])
    if result.exception and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result.exit_code, result.stdout, result.stderr


@pytest.fixture
def city(city_db: Database, monkeypatch: pytest.MonkeyPatch) -> Iterator[Database]:
    monkeypatch.setenv("TONGGE_DATABASE_URL", city_db.url)
    monkeypatch.setenv("TONGGE_LOAD_SAMPLE_CITY", "false")
    get_settings.cache_clear()
    yield city_db
    get_settings.cache_clear()


def street_grid(unit: shapely.Geometry, path: Path, *, spacing: float = 150.0) -> Path:
    """Write a street grid (GeoJSON, WGS84) over the unit's bounding box plus 300 m."""
    centre = unit.centroid
    crs = local_projected_crs(centre.x, centre.y)
    box = gpd.GeoSeries([unit], crs="EPSG:4490").to_crs(crs).buffer(300).total_bounds
    xs = np.arange(box[0], box[2], spacing)
    ys = np.arange(box[1], box[3], spacing)
    lines = [shapely.LineString([(x, ys[0]), (x, ys[-1])]) for x in xs]
    lines += [shapely.LineString([(xs[0], y), (xs[-1], y)]) for y in ys]
    gpd.GeoDataFrame(
        {"name": [f"路{i}" for i in range(len(lines))]}, geometry=lines, crs=crs
    ).to_crs("EPSG:4326").to_file(path, driver="GeoJSON")
    return path


def test_plan_a_stored_unit_json_contract(city: Database, tmp_path: Path) -> None:
    frame, _ = units_page(city, layer="governance", level="grid", limit=1)
    code = str(frame["code"].iloc[0])
    network = street_grid(frame.geometry.iloc[0], tmp_path / "streets.geojson")
    exit_code, stdout, _ = tongge(
        "plan", "--unit", code, "--network", network, "--format", "json",
        "--max-length-m", "20000", "-o", tmp_path / "plan.gpx",
    )  # fmt: skip
    assert exit_code == 0
    body = json.loads(stdout)
    assert set(body) >= {"routes", "street_length_m", "covered_share", "lower_bound_m"}
    assert body["covered_share"] == pytest.approx(1)
    for route in body["routes"]:
        assert set(route) >= {"length_m", "deadhead_m", "segments", "checkpoints"}
        assert route["length_m"] <= 20000
    gpx = gpxpy.parse((tmp_path / "plan.gpx").read_text(encoding="utf-8"))
    assert len(gpx.routes) == len(body["routes"])
    assert code in (tmp_path / "plan.gpx").read_text(encoding="utf-8")


def test_unit_without_network_plans_on_the_stored_streets(city: Database) -> None:
    from boundaries import SAMPLE_STREETS

    frame, _ = units_page(city, layer="governance", level="grid", limit=1)
    code = str(frame["code"].iloc[0])
    exit_code, stdout, _ = tongge("plan", "--unit", code, "--format", "json")
    assert exit_code == 0
    stored = json.loads(stdout)
    assert stored["covered_share"] == pytest.approx(1) and stored["street_length_m"] > 0
    # The stored layer is the sample city's street file: the same plan.
    exit_code, stdout, _ = tongge(
        "plan", "--unit", code, "--network", SAMPLE_STREETS, "--format", "json"
    )
    assert exit_code == 0
    from_file = json.loads(stdout)
    for key in ("street_length_m", "length_m", "lower_bound_m", "segments"):
        assert stored[key] == pytest.approx(from_file[key], abs=0.2), key


def test_no_stored_streets_and_no_network_is_refused(city: Database) -> None:
    with city.transaction() as repo:
        repo.streets.upsert(
            gpd.GeoDataFrame(
                {"key": [], "name": [], "class": [], "attributes": []},
                geometry=[],
                crs="EPSG:4490",
            ),
            replace_all=True,
        )
    exit_code, _, stderr = tongge("plan", "--unit", "350502")
    assert exit_code == 2
    assert "no stored street layer" in stderr and "--network" in stderr
    exit_code, _, stderr = tongge("plan")
    assert exit_code == 2 and "nothing to plan" in stderr


def recorded(route_file: Path, path: Path) -> Path:
    """Write a GPS track walking the planned route: a fix every 5 m, one a second."""
    from datetime import UTC, datetime, timedelta

    import gpxpy.gpx

    lines = gpd.GeoSeries(read_route(route_file), crs="EPSG:4326")
    crs = local_projected_crs(*lines.union_all().centroid.coords[0])
    dense = lines.to_crs(crs).segmentize(5).to_crs("EPSG:4326")
    segment = gpxpy.gpx.GPXTrackSegment()
    t0 = datetime(2026, 12, 1, tzinfo=UTC)
    for k, (x, y) in enumerate(np.concatenate([np.asarray(g.coords) for g in dense])):
        segment.points.append(
            gpxpy.gpx.GPXTrackPoint(latitude=y, longitude=x, time=t0 + timedelta(seconds=k))
        )
    gpx = gpxpy.gpx.GPX()
    gpx.tracks.append(gpxpy.gpx.GPXTrack())
    gpx.tracks[0].segments.append(segment)
    path.write_text(gpx.to_xml(version="1.1"), encoding="utf-8")
    return path


def test_network_alone_covers_everything_and_export_check_score(tmp_path: Path) -> None:
    network = street_grid(shapely.box(118.58, 24.90, 118.59, 24.91), tmp_path / "grid.geojson")
    exit_code, stdout, _ = tongge(
        "plan", "--network", network, "--start", "118.585,24.905", "--format", "json"
    )
    assert exit_code == 0, stdout
    body = json.loads(stdout)
    assert body["covered_share"] == pytest.approx(1) and len(body["routes"]) == 1
    out = tmp_path / "plan.kml"
    assert tongge("export", "--network", network, "-o", out, "--datum", "gcj02")[0] == 0
    gpx = tmp_path / "plan.gpx"
    assert tongge("export", "--network", network, "-o", gpx)[0] == 0
    exit_code, stdout, _ = tongge("check", gpx, "--network", network, "--format", "json")
    assert exit_code == 0
    assert json.loads(stdout)["covered_share"] == pytest.approx(1)
    track = recorded(gpx, tmp_path / "walked.gpx")
    exit_code, stdout, _ = tongge("score", track, "--network", network, "--format", "json")
    assert exit_code == 0
    assert json.loads(stdout)["walked_share"] == pytest.approx(1)


def test_monaco_ward_area_file(tmp_path: Path) -> None:
    import pyrosm

    wards = pyrosm.OSM(str(MONACO_PBF)).get_boundaries()
    area = tmp_path / "ward.geojson"
    wards[wards["name"] == "Monaco-Ville"][["name", "geometry"]].to_file(area, driver="GeoJSON")
    exit_code, stdout, _ = tongge(
        "plan", "--area", area, "--network", MONACO_PBF, "--mode", "drive", "--format", "json"
    )
    assert exit_code == 0, stdout
    assert json.loads(stdout)["covered_share"] == pytest.approx(1)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ((), "nothing to plan"),
        (("--network", "missing.geojson"), "no such file"),
        (("--network", "{points}"), "no lines"),
        (("--network", "{grid}", "--start", "x,y"), "LON,LAT"),
        (("--network", "{grid}", "--max-length-m", "10"), "too short"),
        (("--area", "{points}", "--network", "{grid}"), "no polygon"),
    ],
)
def test_bad_input_is_a_message_not_a_traceback(
    args: tuple[str, ...], message: str, tmp_path: Path
) -> None:
    points = tmp_path / "points.geojson"
    gpd.GeoDataFrame(geometry=[shapely.Point(1, 2)], crs="EPSG:4326").to_file(points)
    grid = street_grid(shapely.box(118.58, 24.90, 118.582, 24.902), tmp_path / "grid.geojson")
    filled = [a.format(points=points, grid=grid) for a in args]
    exit_code, _, stderr = tongge("plan", *filled)
    assert exit_code == 2
    assert message in stderr
    assert "Traceback" not in stderr
