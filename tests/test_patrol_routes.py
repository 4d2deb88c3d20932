"""Stored patrol routes: of units, staff and shifts; stale when a boundary moves; export."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import gpxpy
import pyogrio
import pytest
import shapely

from gis.access import SYSTEM, Jurisdiction
from gis.edits.service import edit
from gis.errors import InputError, NotFoundError
from gis.patrol._routes import get_route, list_routes, save_plan_routes
from gis.patrol._service import load_unit, plan_for
from gis.repository import Database
from gis.units import import_units, units_page
from tests._client import signed_in
from tests.fixtures_governance import frame as governance_frame
from tests.fixtures_governance import load_governance
from tests.fixtures_patrol import validate_gpx11

LINE = shapely.LineString([(118.58, 24.90), (118.581, 24.90), (118.581, 24.901)])


def test_route_store_on_both_databases(db: Database) -> None:
    when = datetime(2026, 12, 1, tzinfo=UTC)
    fields = {
        "layer": "governance",
        "level": "grid",
        "unit_version": when,
        "revision": 1,
        "part": 1,
        "staff_id": None,
        "shift": "早班",
        "name": None,
        "params": {"mode": "walk"},
        "figures": {"length_m": 1.0},
        "steps": [["街", 1.0, True]],
        "checkpoints": [],
        "created_by": "test",
    }
    with db.transaction() as repo:
        first = repo.routes.add(line=LINE, created_at=when, unit_code="A", **fields)
        second = repo.routes.add(
            line=shapely.affinity.translate(LINE, 0.1), created_at=when, unit_code="B", **fields
        )
    with db.reader() as repo:
        assert [r["id"] for r in repo.routes.list()] == [second, first]
        assert [r["id"] for r in repo.routes.list(units=["A"])] == [first]
        near = repo.routes.list(bbox=(118.5805, 24.8995, 118.5806, 24.9005))
        assert [r["id"] for r in near] == [first]
        got = repo.routes.get(first)
        assert got is not None and got["line"].equals(LINE) and got["shift"] == "早班"
        assert got["params"] == {"mode": "walk"} and got["stale"] is False
        assert got["unit_version"] == when
    with db.transaction() as repo:
        assert repo.routes.mark_stale(layer="governance", codes=["A"], reason="moved") == 1
        assert repo.routes.mark_stale(layer="police", codes=["B"], reason="moved") == 0
        assert repo.routes.delete(second) and not repo.routes.delete(second)
    with db.reader() as repo:
        assert [r["id"] for r in repo.routes.list(stale=True)] == [first]
        assert repo.routes.get(first)["stale_reason"] == "moved"  # type: ignore[index]
        assert repo.routes.get(second) is None


def micro_grids(db: Database) -> tuple[str, str]:
    """Return the first micro-grid of the sample city and a sibling sharing an edge with it."""
    frame, _ = units_page(db, layer="governance", level="micro_grid", limit=20)
    first = frame.iloc[0]
    for _, other in frame.iloc[1:].iterrows():
        same_grid = str(other["code"])[:15] == str(first["code"])[:15]
        if same_grid and shapely.intersection(first.geometry, other.geometry).length > 0:
            return str(first["code"]), str(other["code"])
    raise AssertionError("no sibling shares an edge with the first micro-grid")


def with_streets(db: Database, count: int) -> list[str]:
    """Return the first ``count`` micro-grids of the sample city with a street inside."""
    frame, _ = units_page(db, layer="governance", level="micro_grid", limit=60)
    found: list[str] = []
    for code in frame["code"]:
        try:
            plan_for(db, None, area=load_unit(db, code=str(code)))
        except InputError:
            continue
        found.append(str(code))
        if len(found) == count:
            return found
    raise AssertionError("too few micro-grids with streets")


def test_routes_are_flagged_stale_when_an_edit_moves_their_unit(city_db: Database) -> None:
    first, second = micro_grids(city_db)
    area = load_unit(city_db, code=first)
    plan = plan_for(city_db, None, area=area)
    ids = save_plan_routes(city_db, plan, area=area, actor=SYSTEM, shift="早班")
    everything = Jurisdiction.everything()
    assert [r["stale"] for r in list_routes(city_db, everything, unit=first)] == [False]
    stored = get_route(city_db, everything, ids[0])
    assert stored["unit_version"] == area.valid_from and stored["level"] == "micro_grid"
    assert stored["line"].length > 0
    edit(city_db, layer="governance", op="merge", level="micro_grid", units=[first, second])
    stale = list_routes(city_db, everything, stale=True)
    assert [r["id"] for r in stale] == ids
    assert "moved" in stale[0]["stale_reason"]
    with pytest.raises(InputError, match="stored unit"):
        save_plan_routes(city_db, plan, area=area.__class__(area.geometry, area.crs), actor=SYSTEM)
    with pytest.raises(InputError, match="staff"):
        save_plan_routes(city_db, plan, area=area, actor=SYSTEM, staff_id=999_999)


def test_routes_are_flagged_stale_when_an_import_retires_their_unit(city_db: Database) -> None:
    first, second = micro_grids(city_db)
    area = load_unit(city_db, code=first)
    ids = save_plan_routes(city_db, plan_for(city_db, None, area=area), area=area, actor=SYSTEM)
    everything = Jurisdiction.everything()
    level, _ = units_page(city_db, layer="governance", level="micro_grid", limit=1_000_000)
    # The same level imported again with ``first`` merged into its neighbour.
    merged = level[level["code"] != first].copy()
    row = merged.index[merged["code"] == second][0]
    merged.loc[row, "geometry"] = shapely.union(
        level.geometry[level["code"] == first].iloc[0], merged.geometry[row]
    )
    result = import_units(
        city_db, units=merged, layer="governance", level="micro_grid", source="redrawn.gpkg"
    )
    assert first in result.summary.retired
    stale = list_routes(city_db, everything, stale=True)
    assert [r["id"] for r in stale] == ids
    assert "redrawn.gpkg" in stale[0]["stale_reason"]


def test_an_import_that_moves_a_street_flags_the_routes_of_its_cascaded_children(
    db: Database,
) -> None:
    # On both databases: routes are flagged in the import's own transaction,
    # including routes of children the import moved by cascading, and only those.
    load_governance(db)
    fields: dict[str, Any] = {
        "layer": "governance",
        "unit_version": datetime(2026, 1, 1, tzinfo=UTC),
        "revision": 1,
        "part": 1,
        "staff_id": None,
        "shift": None,
        "name": None,
        "params": {},
        "figures": {},
        "steps": [],
        "checkpoints": [],
        "created_by": "test",
        "created_at": datetime(2026, 1, 2, tzinfo=UTC),
    }
    with db.transaction() as repo:
        moved = repo.routes.add(line=LINE, unit_code="350502001001", level="community", **fields)
        kept = repo.routes.add(line=LINE, unit_code="350502", level="county", **fields)
    streets = {
        "350502001": shapely.box(118.50, 24.90, 118.56, 24.95),
        "350502002": shapely.box(118.56, 24.90, 118.60, 24.95),
    }
    result = import_units(
        db,
        units=governance_frame(streets),
        layer="governance",
        level="street",
        source="streets-2026.gpkg",
        valid_from="2026-06-01",
        cascade="merge",
    )
    assert "350502001001" in result.cascaded[0].updated
    with db.reader() as repo:
        stale = repo.routes.list(stale=True)
        assert moved in [r["id"] for r in stale] and kept not in [r["id"] for r in stale]
        assert "streets-2026.gpkg" in str(repo.routes.get(moved)["stale_reason"])  # type: ignore[index]


def test_grid_workers_see_and_download_only_their_own_routes(
    city_db: Database, tmp_path: Path
) -> None:
    mine, other = with_streets(city_db, 2)
    with signed_in(city_db, role="planner", units=["governance:350502"]) as client:
        saved = client.post("/api/v1/patrol/routes", json={"unit": other, "shift": "晚班"})
        assert saved.status_code == 201, saved.text
        theirs = saved.json()["routes"][0]["id"]
    with signed_in(city_db, role="grid_worker", units=[f"governance:{mine}"]) as client:
        saved = client.post(
            "/api/v1/patrol/routes", json={"unit": mine, "shift": "早班", "max_length_m": 5000}
        )
        assert saved.status_code == 201, saved.text
        routes = saved.json()["routes"]
        assert routes and all(r["unit_code"] == mine and r["shift"] == "早班" for r in routes)
        own = routes[0]["id"]
        listed = client.get("/api/v1/patrol/routes").json()["routes"]
        assert {r["id"] for r in listed} == {r["id"] for r in routes}
        detail = client.get(f"/api/v1/patrol/routes/{own}").json()
        assert detail["geometry"]["type"] == "LineString"
        lon, lat = detail["geometry"]["coordinates"][1]
        covering = client.get("/api/v1/patrol/routes", params={"covering": f"{lon},{lat}"})
        assert own in {r["id"] for r in covering.json()["routes"]}
        far = client.get("/api/v1/patrol/routes", params={"covering": "118.0,24.0"})
        assert far.json()["routes"] == []
        bad = client.get("/api/v1/patrol/routes", params={"covering": "east"})
        assert bad.status_code == 400 and "covering" in bad.text
        # Another unit's route: answered exactly like a missing one.
        for path in (f"/api/v1/patrol/routes/{theirs}", f"/api/v1/patrol/routes/{theirs}/export"):
            hidden, absent = client.get(path), client.get(path.replace(str(theirs), "999999"))
            assert hidden.status_code == absent.status_code == 404
        assert client.delete(f"/api/v1/patrol/routes/{theirs}").status_code == 404
        gpx = client.get(f"/api/v1/patrol/routes/{own}/export", params={"format": "gpx"})
        assert gpx.status_code == 200 and gpx.headers["content-type"].startswith(
            "application/gpx+xml"
        )
        parsed = gpxpy.parse(gpx.text)
        assert len(parsed.routes) == 1 and mine in gpx.text
        validate_gpx11(gpx.content)
        shifted = client.get(
            f"/api/v1/patrol/routes/{own}/export", params={"format": "gpx", "datum": "gcj02"}
        )
        moved = gpxpy.parse(shifted.text).routes[0].points[0]
        offset = moved.distance_2d(parsed.routes[0].points[0])
        assert offset is not None and 200 < offset < 700  # the GCJ-02 shift here
        kml = client.get(f"/api/v1/patrol/routes/{own}/export", params={"format": "kml"})
        (tmp_path / "route.kml").write_bytes(kml.content)
        opened = pyogrio.read_dataframe(tmp_path / "route.kml")  # GDAL's KML driver
        assert list(opened.geometry.geom_type) == ["LineString"]
        geojson = client.get(f"/api/v1/patrol/routes/{own}/export", params={"format": "geojson"})
        assert json.loads(geojson.text)["features"][0]["properties"]["unit_code"] == mine
        csv = client.get(f"/api/v1/patrol/routes/{own}/export", params={"format": "csv"})
        assert csv.text.lstrip("\ufeff").startswith("order,name,length_m,covers")
        assert client.delete(f"/api/v1/patrol/routes/{own}").status_code == 204
        assert client.get(f"/api/v1/patrol/routes/{own}").status_code == 404
    with signed_in(city_db, role="viewer", units=[f"governance:{mine}"]) as client:
        assert client.get("/api/v1/patrol/routes").status_code == 403


def test_missing_route_is_not_found(city_db: Database) -> None:
    with pytest.raises(NotFoundError):
        get_route(city_db, Jurisdiction.everything(), 12345)
