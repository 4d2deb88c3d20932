"""The locate answer lists the stored patrol routes covering the place (issue 16, item 6)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import shapely
from fastapi import FastAPI
from fastapi.testclient import TestClient

from api.app import create_app
from api.schemas.locate import GeocodeAnswer
from gis.repository import Database
from gis.settings import Settings
from tests._client import sign_in
from tests.fixtures_access import COMMUNITY, GRID_A, GRID_B, MICRO_A, load_two_grids

#: Deep inside grid A (micro-grid A1), far from every route's line.
INSIDE_A = {"x": 118.506, "y": 24.944, "crs": "cgcs2000"}
#: In grid A (micro-grid A2), about 20 m west of grid B's route along the edge.
BY_THE_EDGE = {"x": 118.5249, "y": 24.94, "crs": "cgcs2000"}
IN_B = {"x": 118.54, "y": 24.93, "crs": "cgcs2000"}
#: In police beat Y, outside grids A and B.
AWAY = {"x": 118.58, "y": 24.91, "crs": "cgcs2000"}


def _add_route(db: Database, code: str, line: shapely.LineString, **fields: Any) -> int:
    when = datetime(2026, 1, 1, tzinfo=UTC)
    with db.transaction() as repo:
        return repo.routes.add(
            line=line,
            created_at=when,
            layer="governance",
            level="grid",
            unit_code=code,
            unit_version=when,
            revision=1,
            part=1,
            params={"mode": "walk"},
            figures={"length_m": 1234.5},
            steps=[],
            checkpoints=[],
            created_by="test",
            **{"staff_id": None, "shift": None, "name": None, **fields},
        )


@pytest.fixture
def routes(db: Database, tmp_path: Path) -> dict[str, int]:
    load_two_grids(db, tmp_path)
    with db.reader() as repo:
        worker = next(s["id"] for s in repo.staff() if s["unit_code"] == GRID_A)
    return {
        "a": _add_route(
            db,
            GRID_A,
            shapely.LineString([(118.505, 24.93), (118.52, 24.93)]),
            staff_id=worker,
            shift="早班 08:00-10:00",
            name="甲网格日巡查",
        ),
        # Grid B's route along the A/B edge, on B's side.
        "b": _add_route(db, GRID_B, shapely.LineString([(118.5251, 24.93), (118.5251, 24.945)])),
    }


@pytest.fixture
def app(db: Database, routes: dict[str, int]) -> FastAPI:
    return create_app(Settings(database_url=db.url, load_sample_city=False), db=db)


def _locate(client: TestClient, headers: dict[str, str], body: dict[str, Any]) -> dict[str, Any]:
    answer = client.post("/api/v1/geocode", json=body, headers=headers)
    assert answer.status_code == 200, answer.text
    data: dict[str, Any] = answer.json()
    GeocodeAnswer.model_validate(data)  # the published schema holds the new key too
    return data


def test_locate_lists_the_routes_of_the_units_and_those_passing_by(
    db: Database, app: FastAPI, routes: dict[str, int]
) -> None:
    with TestClient(app) as client:
        admin = sign_in(client, db, role="admin")
        inside = _locate(client, admin, INSIDE_A)
        assert [r["id"] for r in inside["routes"]] == [routes["a"]]
        (route,) = inside["routes"]
        assert route["in_unit"] is True and route["unit_code"] == GRID_A
        assert route["staff_name"] == "李甲" and route["shift"] == "早班 08:00-10:00"
        assert route["name"] == "甲网格日巡查" and route["stale"] is False
        assert route["distance_m"] > 1000  # its unit holds the place; the line is far
        edge = _locate(client, admin, BY_THE_EDGE)
        assert edge["layers"]["governance"]["units"][-1]["code"] == MICRO_A[1]
        by_id = {r["id"]: r for r in edge["routes"]}
        assert set(by_id) == {routes["a"], routes["b"]}
        # B's route passes within the tolerance: listed, nearest first, not as its unit's.
        assert edge["routes"][0]["id"] == routes["b"]
        assert by_id[routes["b"]]["in_unit"] is False
        assert 10 < by_id[routes["b"]]["distance_m"] < 30


def test_locate_routes_follow_the_callers_jurisdiction_and_permission(
    db: Database, app: FastAPI, routes: dict[str, int]
) -> None:
    with TestClient(app) as client:
        worker = sign_in(client, db, role="grid_worker", units=[f"governance:{GRID_A}"])
        # B's route passes by, but grid B is not the worker's: never listed.
        edge = _locate(client, worker, BY_THE_EDGE)
        assert [r["id"] for r in edge["routes"]] == [routes["a"]]
        outside = _locate(client, worker, IN_B)
        assert outside["status"] == "outside_jurisdiction" and outside["routes"] == []
        planner = sign_in(client, db, role="planner", units=[f"governance:{COMMUNITY}"])
        assert {r["id"] for r in _locate(client, planner, BY_THE_EDGE)["routes"]} == set(
            routes.values()
        )
        # Dispatchers (who locate but do not patrol) get no `routes` key at all.
        dispatcher = sign_in(client, db, role="dispatcher", units=[f"governance:{COMMUNITY}"])
        assert "routes" not in _locate(client, dispatcher, INSIDE_A)
        admin = sign_in(client, db, role="admin")
        (route,) = _locate(client, admin, IN_B)["routes"]
        assert route["id"] == routes["b"] and route["in_unit"] is True
        # Neither in a unit with routes nor near one: an empty list.
        assert _locate(client, admin, AWAY)["routes"] == []
        # A stale route is flagged as such in the answer.
        with db.transaction() as repo:
            repo.routes.mark_stale(layer="governance", codes=[GRID_A], reason="moved by #7")
        (route,) = _locate(client, admin, INSIDE_A)["routes"]
        assert route["stale"] is True and route["stale_reason"] == "moved by #7"
