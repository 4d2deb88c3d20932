"""Patrol plan exports: GPX 1.1 (gpxpy), KML (GDAL), GeoJSON, CSV; WGS84 and GCJ-02."""

from __future__ import annotations

import json
from pathlib import Path

import gpxpy
import numpy as np
import pandas as pd
import pyogrio
import pytest

from gis.datum import wgs84_to_gcj02
from gis.errors import InputError
from gis.patrol import Checkpoint, PatrolPlan, plan_patrol, write_plan
from gis.patrol._export import GPX_NS
from tests.fixtures_patrol import grid_lines, tiny, to_lonlat, validate_gpx11


@pytest.fixture
def plan() -> PatrolPlan:
    #   3 x 3 nodes, 100 m blocks, checkpoint at the centre, shifts of 800 m
    network = tiny(grid_lines([True], width=3, height=3))
    return plan_patrol(
        network,
        start=to_lonlat(0, 0),
        checkpoints=[Checkpoint("社区服务站", *to_lonlat(100, 100))],
        max_length_m=800,
    )


def test_gpx_has_routes_waypoints_and_unit_codes(plan: PatrolPlan, tmp_path: Path) -> None:
    target = write_plan(plan, tmp_path / "plan.gpx", unit_code="350502004001", unit_name="网格一")
    text = target.read_text(encoding="utf-8")
    assert 'version="1.1"' in text and "http://www.topografix.com/GPX/1/1" in text
    validate_gpx11(text)  # the GPX 1.1 schema itself
    gpx = gpxpy.parse(text)
    assert len(gpx.routes) == len(plan.routes) > 1
    assert [w.name for w in gpx.waypoints] == ["社区服务站"]
    assert not gpx.tracks
    first = gpx.routes[0]
    start = to_lonlat(0, 0)
    assert first.points[0].longitude == pytest.approx(start[0], abs=1e-6)
    assert first.points[-1].latitude == pytest.approx(start[1], abs=1e-6)
    ext = first.extensions[0]
    assert ext.find(f"{{{GPX_NS}}}unit_code").text == "350502004001"
    assert float(ext.find(f"{{{GPX_NS}}}length_m").text) == pytest.approx(
        plan.routes[0].length_m, abs=0.1
    )


def test_gcj02_export_is_shifted(plan: PatrolPlan, tmp_path: Path) -> None:
    wgs = gpxpy.parse(write_plan(plan, tmp_path / "a.gpx").read_text(encoding="utf-8"))
    gcj = gpxpy.parse(
        write_plan(plan, tmp_path / "b.gpx", datum="gcj02").read_text(encoding="utf-8")
    )
    p, q = wgs.routes[0].points[0], gcj.routes[0].points[0]
    lon, lat = wgs84_to_gcj02(np.array([p.longitude]), np.array([p.latitude]))
    assert (q.longitude, q.latitude) == pytest.approx((lon[0], lat[0]), abs=1e-6)
    assert abs(q.longitude - p.longitude) > 1e-4  # hundreds of metres in China


def test_kml_opens_in_gdal_with_extended_data(plan: PatrolPlan, tmp_path: Path) -> None:
    target = write_plan(plan, tmp_path / "plan.kml", unit_code="350502004001")
    frame = pyogrio.read_dataframe(target)
    routes = frame[frame.geometry.geom_type == "LineString"]
    assert len(routes) == len(plan.routes)
    assert set(routes["unit_code"]) == {"350502004001"}
    assert "<Style" in target.read_text(encoding="utf-8")
    assert (frame.geometry.geom_type == "Point").sum() == 1


def test_geojson_and_csv(plan: PatrolPlan, tmp_path: Path) -> None:
    body = json.loads(write_plan(plan, tmp_path / "plan.geojson").read_text(encoding="utf-8"))
    kinds = [f["properties"]["kind"] for f in body["features"]]
    assert kinds.count("route") == len(plan.routes) and kinds.count("checkpoint") == 1
    table = pd.read_csv(write_plan(plan, tmp_path / "plan.csv"), encoding="utf-8-sig")
    assert len(table) == sum(len(r.steps) for r in plan.routes)
    covered = table[table["covers"]]
    assert covered["length_m"].sum() == pytest.approx(plan.street_length_m, abs=1)


def test_unknown_format_and_datum(plan: PatrolPlan, tmp_path: Path) -> None:
    with pytest.raises(InputError, match="format"):
        write_plan(plan, tmp_path / "plan.shp")
    with pytest.raises(InputError, match="datum"):
        write_plan(plan, tmp_path / "plan.gpx", datum="mars")
