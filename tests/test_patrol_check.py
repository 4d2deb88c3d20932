"""Checking routes and scoring recorded tracks: noise, gaps, outliers, GCJ-02."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import gpxpy.gpx
import numpy as np
import pytest
import shapely
from pyproj import CRS

from gis.crs import transformer
from gis.datum import wgs84_to_gcj02
from gis.errors import InputError
from gis.patrol import (
    Checkpoint,
    PatrolPlan,
    check_route,
    plan_patrol,
    read_route,
    read_track,
    route_line,
    score_track,
    write_plan,
)
from tests.fixtures_patrol import UTM, X0, Y0, grid_lines, tiny, to_lonlat

#   4 x 3 nodes, 100 m blocks (17 streets, 1.7 km); checkpoint at (200, 100)
UNIT = shapely.box(X0 - 5, Y0 - 5, X0 + 305, Y0 + 205)


@pytest.fixture
def plan() -> PatrolPlan:
    network = tiny(grid_lines([True], width=4, height=3))
    return plan_patrol(
        network,
        start=to_lonlat(0, 0),
        checkpoints=[Checkpoint("警务室", *to_lonlat(200, 100))],
    )


def walk(plan: PatrolPlan, *, noise_m: float, seed: int = 1) -> np.ndarray:
    """Points every 5 m along the plan, with Gaussian noise (metres, UTM)."""
    line = route_line(plan.routes[0], plan.network)
    along = np.arange(0, line.length, 5.0)
    xy = shapely.get_coordinates(shapely.line_interpolate_point(line, along))
    rng = np.random.default_rng(seed)
    return xy + rng.normal(0, noise_m, xy.shape)


def write_track(xy: np.ndarray, path: Path, *, datum: str = "wgs84") -> Path:
    lon, lat = transformer(UTM, CRS.from_epsg(4326)).transform(xy[:, 0], xy[:, 1])
    lon, lat = np.asarray(lon), np.asarray(lat)
    if datum == "gcj02":
        lon, lat = wgs84_to_gcj02(lon, lat)
    gpx = gpxpy.gpx.GPX()
    track = gpxpy.gpx.GPXTrack()
    segment = gpxpy.gpx.GPXTrackSegment()
    t0 = datetime(2026, 12, 1, 1, 0, tzinfo=UTC)
    for k, (x, y) in enumerate(zip(lon, lat, strict=True)):
        segment.points.append(
            gpxpy.gpx.GPXTrackPoint(latitude=y, longitude=x, time=t0 + timedelta(seconds=4 * k))
        )
    track.segments.append(segment)
    gpx.tracks.append(track)
    path.write_text(gpx.to_xml(version="1.1"), encoding="utf-8")
    return path


def test_a_noisy_walk_of_the_plan_scores_full(plan: PatrolPlan, tmp_path: Path) -> None:
    track = read_track(write_track(walk(plan, noise_m=4), tmp_path / "t.gpx"))
    score = score_track(plan, track, area=UNIT, area_crs=UTM)
    assert score.walked_m == pytest.approx(score.planned_m)
    assert score.checkpoints == {"警务室": True}
    assert score.inside_s is not None and score.inside_s > 0.9 * 4 * (score.points - 1)


def test_a_gcj02_track_needs_its_datum(plan: PatrolPlan, tmp_path: Path) -> None:
    path = write_track(walk(plan, noise_m=3), tmp_path / "amap.gpx", datum="gcj02")
    right = score_track(plan, read_track(path, datum="gcj02"))
    wrong = score_track(plan, read_track(path))
    assert right.walked_m == pytest.approx(right.planned_m)
    assert wrong.walked_m < 0.5 * wrong.planned_m  # hundreds of metres off


def test_a_gap_does_not_walk_the_streets_it_jumps(plan: PatrolPlan, tmp_path: Path) -> None:
    xy = walk(plan, noise_m=2)
    gap = slice(len(xy) // 3, len(xy) // 3 + 60)  # 300 m without a fix
    track = read_track(
        write_track(np.delete(xy, np.arange(len(xy))[gap], axis=0), tmp_path / "g.gpx")
    )
    score = score_track(plan, track)
    assert 0.5 * score.planned_m < score.walked_m < score.planned_m


def test_outliers_are_dropped(plan: PatrolPlan, tmp_path: Path) -> None:
    xy = walk(plan, noise_m=2)
    xy[50] += (400, 400)  # multipath jump
    score = score_track(plan, read_track(write_track(xy, tmp_path / "o.gpx")))
    assert score.dropped_points == 1
    assert score.walked_m == pytest.approx(score.planned_m)


def test_bad_tracks_are_refused(tmp_path: Path) -> None:
    empty = tmp_path / "empty.gpx"
    empty.write_text(gpxpy.gpx.GPX().to_xml(version="1.1"), encoding="utf-8")
    with pytest.raises(InputError, match="fewer than two"):
        read_track(empty)
    junk = tmp_path / "junk.gpx"
    junk.write_text("<gpx><trk>", encoding="utf-8")
    with pytest.raises(InputError, match="not a readable GPX"):
        read_track(junk)
    bomb = tmp_path / "bomb.gpx"
    bomb.write_text('<!DOCTYPE gpx [<!ENTITY a "aaaa">]><gpx>&a;</gpx>', encoding="utf-8")
    with pytest.raises(InputError, match="DOCTYPE"):
        read_track(bomb)
    with pytest.raises(InputError, match="no such file"):
        read_track(tmp_path / "missing.gpx")


def test_check_an_exported_route_and_a_partial_one(plan: PatrolPlan, tmp_path: Path) -> None:
    for suffix in ("gpx", "kml", "geojson"):
        lines = read_route(write_plan(plan, tmp_path / f"plan.{suffix}"))
        check = check_route(plan.network, lines, area=UNIT, area_crs=UTM)
        assert check.covered_m == pytest.approx(check.street_length_m)
        assert check.outside_m == pytest.approx(0, abs=0.5)
        assert not check.uncovered
    # Only the bottom street and a detour 100 m west of the unit.
    partial = [shapely.LineString([to_lonlat(-100, 0), to_lonlat(300, 0)])]
    check = check_route(plan.network, partial, area=UNIT, area_crs=UTM)
    assert check.covered_m == pytest.approx(300)
    assert check.outside_m == pytest.approx(95, abs=1)
    assert len(check.uncovered) == 14
    gcj = read_route(write_plan(plan, tmp_path / "gcj.gpx", datum="gcj02"), datum="gcj02")
    assert check_route(plan.network, gcj).uncovered == []
