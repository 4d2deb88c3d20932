"""Evaluation through the API and the CLI, on both databases, within the caller's jurisdiction."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pandas as pd
import pytest
from fastapi.testclient import TestClient
from openpyxl import load_workbook
from typer.testing import CliRunner

from api.app import create_app
from api.cli import app as cli
from gis.access import SYSTEM
from gis.access.accounts import create_api_key
from gis.incidents import IncidentDraft, IncidentLocation, service
from gis.repository import Database
from gis.settings import Settings, get_settings
from tests.fixtures_access import GRID_A, GRID_B, STATION, load_two_grids

IN_A = (118.505, 24.94)
IN_B = (118.53, 24.94)
URL = "/api/v1/incidents/evaluation"


def _intake(db: Database, at: tuple[float, float], category: str, when: datetime) -> int:
    draft = IncidentDraft(
        channel="12345",
        category=category,
        description="测试",
        location=IncidentLocation(x=at[0], y=at[1], datum="cgcs2000"),
        address=None,
        event_time=when,
    )
    return service.intake(db, SYSTEM, draft, now=when).incident.id


@pytest.fixture
def city(db: Database, tmp_path: Path) -> Iterator[Database]:
    load_two_grids(db, tmp_path)
    start = datetime.now(UTC) - timedelta(days=3)
    first = _intake(db, IN_A, "0101", start)
    _intake(db, IN_A, "0101", start + timedelta(hours=1))  # the same place again
    _intake(db, IN_B, "0202", start)
    for action in ("accept", "resolve", "close"):
        score = 4 if action == "close" else None
        service.transition(
            db, SYSTEM, first, action, feedback_score=score, now=start + timedelta(hours=5)
        )
    yield db


def _client(db: Database, unit: str) -> TestClient:
    _, token = create_api_key(
        db, name="hotline", role="dispatcher", units=[f"governance:{unit}"], actor=SYSTEM
    )
    client = TestClient(create_app(Settings(database_url=db.url, load_sample_city=False), db=db))
    client.headers["X-API-Key"] = token
    return client


def test_evaluation_of_the_caller_s_units_in_json_csv_and_excel(city: Database) -> None:
    with _client(city, GRID_A) as client:
        answer = client.get(URL, params={"by": "governance:grid", "period": "all"})
        assert answer.status_code == 200, answer.text
        rows = answer.json()["rows"]
        # Grid B's incident is not the caller's: not counted, not named.
        assert [r["unit"] for r in rows] == [GRID_A]
        row = rows[0]
        assert (row["incidents"], row["open"], row["closed"]) == (2, 1, 1)
        assert row["median_hours_to_close"] == pytest.approx(5.0, abs=0.01)
        assert (row["repeats"], row["feedback_count"], row["feedback_mean"]) == (1, 1, 4.0)
        assert row["overdue"] == 1  # the open one: 0101 has a 48-hour deadline
        assert row["categories"] == {"0101": 2}

        csv = client.get(URL, params={"by": "governance:grid", "format": "csv"})
        assert csv.headers["content-type"].startswith("text/csv")
        table = pd.read_csv(io.StringIO(csv.text.removeprefix("\ufeff")), dtype={"unit": str})
        assert table["unit"].tolist() == [GRID_A] and table["incidents"].tolist() == [2]

        xlsx = client.get(URL, params={"by": "governance:community", "format": "xlsx"})
        sheet = load_workbook(io.BytesIO(xlsx.content), read_only=True)["evaluation"]
        header, first = list(sheet.iter_rows(values_only=True))[:2]
        assert header[:3] == ("unit", "period", "incidents") and first[2] == 2

        # Another layer: the station over grid A; an unknown level: 400 naming by.
        beats = client.get(URL, params={"by": "police:station", "period": "all"}).json()
        assert [r["unit"] for r in beats["rows"]] == [STATION]
        bad = client.get(URL, params={"by": "police:bet"})
        assert bad.status_code == 400 and bad.json()["field"] == "by"
        assert client.get(URL, params={"period": "fortnight"}).status_code == 422
        assert client.get(URL, params={"since": "yesterday"}).json()["field"] == "since"


def test_cli_evaluates_everything(city: Database, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TONGGE_DATABASE_URL", city.url)
    monkeypatch.setenv("TONGGE_LOAD_SAMPLE_CITY", "false")
    get_settings.cache_clear()
    try:
        result = CliRunner().invoke(
            cli, ["incidents", "evaluate", "--period", "all", "--format", "json"]
        )
    finally:
        get_settings.cache_clear()
    assert result.exit_code == 0, result.output
    rows = json.loads(result.stdout)["rows"]
    assert {r["unit"]: r["incidents"] for r in rows} == {GRID_A: 2, GRID_B: 1}


def test_evaluation_json_is_strict_with_unknown_values_as_null(city: Database) -> None:
    def refuse(constant: str) -> None:
        raise AssertionError(f"not strict JSON: {constant}")

    with _client(city, "350502") as client:
        text = client.get(URL, params={"by": "governance:grid", "period": "all"}).text
    rows = {r["unit"]: r for r in json.loads(text, parse_constant=refuse)["rows"]}
    # Grid B's only incident is open: nothing closed, no feedback — unknown, not 0.
    assert rows[GRID_B]["median_hours_to_close"] is None
    assert rows[GRID_B]["feedback_mean"] is None
    assert rows[GRID_A]["median_hours_to_close"] is not None
