"""``/api/v1/patrol``: plan (JSON contract and files), check, score; roles and jurisdiction."""

from __future__ import annotations

import json
from pathlib import Path

import gpxpy
import pytest

from gis.repository import Database
from gis.units import units_page
from tests._client import signed_in
from tests.test_patrol_cli import recorded, street_grid


@pytest.fixture
def grids(city_db: Database, tmp_path: Path) -> tuple[str, str, Path]:
    """Two grids of the sample city and a street grid over the first."""
    frame, _ = units_page(city_db, layer="governance", level="grid", limit=2)
    network = street_grid(frame.geometry.iloc[0], tmp_path / "streets.geojson")
    return str(frame["code"].iloc[0]), str(frame["code"].iloc[1]), network


def upload(path: Path) -> tuple[str, bytes]:
    return path.name, path.read_bytes()


def test_grid_worker_plans_their_unit_only(city_db: Database, grids: tuple[str, str, Path]) -> None:
    mine, other, network = grids
    with signed_in(city_db, role="grid_worker", units=[f"governance:{mine}"]) as client:
        answer = client.post(
            "/api/v1/patrol/plan",
            params={"unit": mine, "max_length_m": 30000},
            files={"network": upload(network)},
        )
        assert answer.status_code == 200, answer.text
        body = answer.json()
        assert body["covered_share"] == pytest.approx(1)
        assert {"length_m", "deadhead_m", "segments", "checkpoints"} <= set(body["routes"][0])
        assert body["lower_bound_m"] <= sum(r["length_m"] for r in body["routes"]) + 0.5
        hidden = client.post(
            "/api/v1/patrol/plan", params={"unit": other}, files={"network": upload(network)}
        )
        assert hidden.status_code == 404
        absent = client.post(
            "/api/v1/patrol/plan", params={"unit": "999999"}, files={"network": upload(network)}
        )
        assert absent.status_code == 404
        assert hidden.json() == absent.json()
        whole = client.post("/api/v1/patrol/plan", files={"network": upload(network)})
        assert whole.status_code == 400 and "unit" in whole.text


def test_viewer_and_dispatcher_may_not_plan(
    city_db: Database, grids: tuple[str, str, Path]
) -> None:
    mine, _, network = grids
    for role in ("viewer", "dispatcher"):
        with signed_in(city_db, role=role, units=[f"governance:{mine}"]) as client:
            answer = client.post(
                "/api/v1/patrol/plan", params={"unit": mine}, files={"network": upload(network)}
            )
            assert answer.status_code == 403


def test_gpx_download_check_and_score(
    city_db: Database, grids: tuple[str, str, Path], tmp_path: Path
) -> None:
    mine, _, network = grids
    with signed_in(city_db, role="police", units=[f"governance:{mine}"]) as client:
        answer = client.post(
            "/api/v1/patrol/plan",
            params={"unit": mine, "format": "gpx", "datum": "gcj02"},
            files={"network": upload(network)},
        )
        assert answer.status_code == 200, answer.text
        assert answer.headers["content-type"].startswith("application/gpx+xml")
        gpx = gpxpy.parse(answer.text)
        assert gpx.routes and mine in answer.text
        plan_file = tmp_path / "plan.gpx"
        plan_file.write_bytes(answer.content)
        checked = client.post(
            "/api/v1/patrol/check",
            params={"unit": mine, "datum": "gcj02"},
            files={"network": upload(network), "route": upload(plan_file)},
        )
        assert checked.status_code == 200, checked.text
        assert checked.json()["covered_share"] == pytest.approx(1)
        wgs = client.post(
            "/api/v1/patrol/plan",
            params={"unit": mine, "format": "geojson"},
            files={"network": upload(network)},
        )
        route_file = tmp_path / "plan.geojson"
        route_file.write_text(json.dumps(wgs.json()), encoding="utf-8")
        track = recorded(route_file, tmp_path / "walked.gpx")
        scored = client.post(
            "/api/v1/patrol/score",
            params={"unit": mine},
            files={"network": upload(network), "track": upload(track)},
        )
        assert scored.status_code == 200, scored.text
        assert scored.json()["walked_share"] == pytest.approx(1)
        assert scored.json()["time_inside_s"] > 0


def test_bad_uploads_are_problems_not_500s(
    city_db: Database, grids: tuple[str, str, Path], tmp_path: Path
) -> None:
    mine, _, network = grids
    junk = tmp_path / "junk.geojson"
    junk.write_text("{not json", encoding="utf-8")
    with signed_in(city_db, role="admin") as client:
        bad = client.post("/api/v1/patrol/plan", files={"network": upload(junk)})
        assert bad.status_code == 400 and "junk.geojson" in bad.text
        empty = client.post("/api/v1/patrol/plan", files={"network": ("e.geojson", b"")})
        assert empty.status_code == 400 and "empty" in bad.text + empty.text
        # An OSM PBF upload would be inflated without limit by pyrosm: refused.
        pbf = client.post("/api/v1/patrol/plan", files={"network": ("x.osm.pbf", b"\0" * 64)})
        assert pbf.status_code == 400 and "OSM PBF is not accepted" in pbf.text
        track = tmp_path / "t.gpx"
        track.write_text("<gpx>", encoding="utf-8")
        scored = client.post(
            "/api/v1/patrol/score",
            params={"unit": mine},
            files={"network": upload(network), "track": upload(track)},
        )
        assert scored.status_code == 400 and "GPX" in scored.text


def test_plan_on_the_stored_streets_without_an_upload(
    city_db: Database, grids: tuple[str, str, Path]
) -> None:
    mine, _, _ = grids
    with signed_in(city_db, role="grid_worker", units=[f"governance:{mine}"]) as client:
        answer = client.post("/api/v1/patrol/plan", params={"unit": mine})
        assert answer.status_code == 200, answer.text
        body = answer.json()
        assert body["covered_share"] == pytest.approx(1) and body["street_length_m"] > 0
        gpx = client.post("/api/v1/patrol/plan", params={"unit": mine, "format": "gpx"})
        assert gpx.status_code == 200 and gpxpy.parse(gpx.text).routes
    with signed_in(city_db, role="admin", units=[]) as client:
        nothing = client.post("/api/v1/patrol/plan")
        assert nothing.status_code == 400 and "unit" in nothing.text
