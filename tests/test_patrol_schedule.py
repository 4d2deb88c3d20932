"""Weekly visits (周走访) on the sample city: every place once, balanced days, carry-over first."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import shapely
from pyproj import CRS
from typer.testing import CliRunner

from api.cli import app
from gis.crs import transformer
from gis.errors import InputError
from gis.patrol import plan_week, route_line
from gis.patrol._plan import SPEEDS
from gis.patrol._service import load_unit, schedule_for, stored_network, unit_places
from gis.repository import Database
from gis.settings import get_settings
from gis.units import units_page
from tests._client import signed_in

runner = CliRunner()


@pytest.fixture
def grid(city_db: Database) -> str:
    """Return a micro-grid of the sample city with households to visit."""
    frame, _ = units_page(city_db, layer="governance", level="micro_grid", limit=40)
    for code in frame["code"]:
        if len(unit_places(city_db, load_unit(city_db, code=str(code)))) >= 40:
            return str(code)
    raise AssertionError("no micro-grid of the sample city has 40 households")


@pytest.fixture
def city(city_db: Database, monkeypatch: pytest.MonkeyPatch) -> Iterator[Database]:
    monkeypatch.setenv("TONGGE_DATABASE_URL", city_db.url)
    monkeypatch.setenv("TONGGE_LOAD_SAMPLE_CITY", "false")
    get_settings.cache_clear()
    yield city_db
    get_settings.cache_clear()


def check_week(db: Database, code: str, *, days: int, balance: str, visited: list[str] | None):
    area = load_unit(db, code=code)
    places = unit_places(db, area)
    week = schedule_for(db, None, area=area, days=days, visited=visited, balance=balance)  # type: ignore[arg-type]
    scheduled = [p for d in week.days for p in d.visits]
    # Every household and shop exactly once.
    assert len(scheduled) == len(set(scheduled)) == len(places)
    assert set(scheduled) == set(places["id"])
    # Balance, recomputed from each day's own figures, within the stated tolerance.
    speed = SPEEDS["walk"]
    work = np.array(
        [
            d.route.length_m
            if balance == "walk"
            else d.route.length_m / speed + len(d.visits) * 300
            for d in week.days
        ]
    )
    spread = np.abs(work - work.mean()).max() / work.mean()
    assert week.spread == pytest.approx(spread, abs=1e-6)
    assert week.balanced == (spread <= week.tolerance + 1e-9)
    if balance == "time":  # door time is fine-grained: the stated tolerance is met
        assert week.balanced, week.to_dict()
    # Each day's route passes each of its doors: the door is as near the
    # route as it is to the nearest street of the network.
    network = week.network
    to_local = transformer(CRS.from_epsg(4326), network.crs)
    lines = network.segments.geometry.values
    tree = shapely.STRtree(lines)
    where = places.set_index("id")
    for day in week.days:
        line = route_line(day.route, network)
        x, y = to_local.transform(
            where.loc[day.visits, "lon"].to_numpy(), where.loc[day.visits, "lat"].to_numpy()
        )
        doors = shapely.points(x, y)
        nearest = tree.query_nearest(doors, return_distance=True, all_matches=False)[1]
        assert np.all(shapely.distance(line, doors) <= nearest + 0.05)
        assert day.route.length_m == pytest.approx(float(line.length), rel=1e-6)
    return week, places


def test_every_place_once_balanced_days_and_routes_past_every_door(
    city_db: Database, grid: str
) -> None:
    check_week(city_db, grid, days=5, balance="time", visited=None)
    check_week(city_db, grid, days=3, balance="walk", visited=None)


def test_missed_visits_are_carried_over_first(city_db: Database, grid: str) -> None:
    places = unit_places(city_db, load_unit(city_db, code=grid))
    visited = list(places["id"].iloc[::2])  # every other place was visited last week
    week, _ = check_week(city_db, grid, days=5, balance="time", visited=visited)
    missed = set(places["id"]) - set(visited)
    assert set(week.carried) == missed
    day_of = {p: d.day for d in week.days for p in d.visits}
    assert max(day_of[p] for p in missed) <= min(day_of[p] for p in visited)
    assert sum(d.carried for d in week.days) == len(missed)
    # Nothing missed: nothing carried over, the order is the plain tour's.
    nothing, _ = check_week(city_db, grid, days=5, balance="time", visited=list(places["id"]))
    assert nothing.carried == [] and all(d.carried == 0 for d in nothing.days)


def test_bad_schedules_are_refused(city_db: Database, grid: str) -> None:
    area = load_unit(city_db, code=grid)
    network = stored_network(city_db, area=area)
    places = unit_places(city_db, area)
    for kwargs, field in (
        ({"days": 0}, "days"),
        ({"days": 8}, "days"),
        ({"visit_minutes": -1}, "visit_minutes"),
        ({"tolerance": 0}, "tolerance"),
    ):
        with pytest.raises(InputError) as caught:
            plan_week(network, places, **kwargs)  # type: ignore[arg-type]
        assert caught.value.details["field"] == field
    with pytest.raises(InputError, match="no household"):
        plan_week(network, places.iloc[:0])
    with pytest.raises(InputError, match="unique"):
        plan_week(network, places.iloc[[0, 0]])


def test_schedule_command(city: Database, grid: str, tmp_path: Path) -> None:
    places = unit_places(city, load_unit(city, code=grid))
    seen = tmp_path / "visited.txt"
    seen.write_text("\n".join(places["id"].iloc[3:]), encoding="utf-8")
    result = runner.invoke(
        app,
        ["patrol", "schedule", "--unit", grid, "--days", "4", "--from", "2026-12-07",
         "--visited", str(seen), "--format", "json"],
    )  # fmt: skip
    assert result.exit_code == 0, result.stderr
    body = json.loads(result.stdout)
    assert [d["date"] for d in body["days"]] == [
        "2026-12-07", "2026-12-08", "2026-12-09", "2026-12-10"
    ]  # fmt: skip
    assert body["carried"] == 3 and body["days"][0]["carried"] == 3
    assert sum(d["visits"] for d in body["days"]) == len(places)
    bad = runner.invoke(app, ["patrol", "schedule", "--unit", grid, "--from", "Monday"])
    assert bad.exit_code == 2 and "--from" in bad.stderr
    text = runner.invoke(app, ["patrol", "schedule", "--unit", grid])
    assert text.exit_code == 0 and "balanced" in text.stdout


def test_schedule_endpoint_roles_and_jurisdiction(city_db: Database, grid: str) -> None:
    other = "350502008"  # another street's area
    with signed_in(city_db, role="grid_worker", units=[f"governance:{grid}"]) as client:
        answer = client.post("/api/v1/patrol/schedule", json={"unit": grid, "days": 5})
        assert answer.status_code == 200, answer.text
        body = answer.json()
        assert body["balanced"] and len(body["days"]) == 5
        hidden = client.post("/api/v1/patrol/schedule", json={"unit": other})
        absent = client.post("/api/v1/patrol/schedule", json={"unit": "999999"})
        assert hidden.status_code == absent.status_code == 404
        assert hidden.json() == absent.json()
        bad = client.post("/api/v1/patrol/schedule", json={"unit": grid, "days": 9})
        assert bad.status_code == 422 and "days" in bad.text
    with signed_in(city_db, role="planner", units=[f"governance:{grid}"]) as client:
        assert client.post("/api/v1/patrol/schedule", json={"unit": grid}).status_code == 403
