"""Strict JSON (RFC 8259) everywhere: every ``--format json`` output and every API body.

``NaN`` and ``Infinity`` are refused by ``jq`` and most parsers; the test
parser here refuses them too (``parse_constant``).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import geopandas as gpd
import pytest
import shapely
from typer.testing import CliRunner

from api.cli import app
from api.jsontext import dumps, strict_json
from gis.repository import Database
from gis.settings import get_settings
from tests._client import signed_in
from tests.test_cli_errors import commands, invocation
from tests.test_exports import city  # noqa: F401  (fixture)

runner = CliRunner()


def strict_loads(text: str) -> Any:
    def refuse(constant: str) -> Any:
        raise AssertionError(f"not strict JSON: {constant} in {text[:200]!r}")

    return json.loads(text, parse_constant=refuse)


def test_missing_numbers_are_null() -> None:
    value = {"a": float("nan"), "b": [float("inf"), -float("inf"), 1.5], "c": "文字"}
    text = dumps(value)
    assert strict_loads(text) == {"a": None, "b": [None, None, 1.5], "c": "文字"}
    assert "文字" in text
    assert strict_json({"n": None}) == {"n": None}


@pytest.fixture
def cli_city(city: Database, monkeypatch: pytest.MonkeyPatch) -> Iterator[Database]:  # noqa: F811
    monkeypatch.setenv("TONGGE_DATABASE_URL", city.url)
    get_settings.cache_clear()
    yield city
    get_settings.cache_clear()


def test_workload_json_has_no_nan(cli_city: Database) -> None:
    # Levels without a household target have NaN targets inside: null outside.
    result = runner.invoke(app, ["workload", "--level", "county", "--format", "json"])
    assert result.exit_code == 0, result.output
    rows = strict_loads(result.stdout)
    assert rows and rows[0]["code"] == "350502"
    assert rows[0]["min_households"] is None


def test_every_json_output_of_the_cli_is_strict(cli_city: Database, tmp_path: Path) -> None:
    county = tmp_path / "county.geojson"
    streets = tmp_path / "streets.geojson"
    gpd.GeoDataFrame(
        {"name": ["中山路"]},
        geometry=[shapely.LineString([(118.56, 24.90), (118.61, 24.90)])],
        crs=4490,
    ).to_file(streets)
    files = {
        "file": county,
        "source": county,
        "output": tmp_path / "out.csv",
        "area": county,
        "network": streets,
        "route": streets,
        "track": streets,
    }
    checked = []
    for path, command in commands().items():
        if not any(param.name == "format" for param in command.params):
            continue
        if path == ("export",):  # writes files, never JSON
            continue
        args = invocation(command, files, {"format": "json"}, path=path)
        result = runner.invoke(app, [*path, *args])
        assert result.exit_code in (0, 1, 2), result.output
        if result.stdout.strip():
            strict_loads(result.stdout)
            checked.append(path)
    assert {("workload",), ("layers",), ("locate",), ("audit",)} <= set(checked)


def test_api_workload_is_strict_and_refuses_unknown_levels(city: Database) -> None:  # noqa: F811
    with signed_in(city) as client:
        response = client.get("/api/v1/workload", params={"level": "county"})
        assert response.status_code == 200, response.text
        body = strict_loads(response.text)
        assert body["units"][0]["code"] == "350502" and body["units"][0]["buildings"] == 1
        unknown = client.get("/api/v1/workload", params={"level": "grdi"})
        assert unknown.status_code == 404
        assert unknown.json()["field"] == "level" and "grdi" in unknown.json()["detail"]


def test_api_locate_before_the_first_version(city: Database) -> None:  # noqa: F811
    with signed_in(city) as client:
        early = client.post(
            "/api/v1/geocode", json={"x": 118.58, "y": 24.9, "at": "2020-01-01"}
        )
        assert early.status_code == 200, early.text
        body = strict_loads(early.text)
        assert body["status"] == "before_first_version"
        assert body["first_version"] == "2026-01-01T00:00:00+08:00"
        later = client.post("/api/v1/geocode", json={"x": 118.58, "y": 24.9, "at": "2026-02-01"})
        assert later.json()["status"] == "ok"
        bad = client.post("/api/v1/geocode", json={"x": 118.58, "y": 24.9, "at": "yesterday"})
        assert bad.status_code in (400, 422)
        assert "at" in json.dumps(bad.json()) and "valid_from" not in bad.text


def test_geocode_body_limit_is_the_setting(city: Database) -> None:  # noqa: F811
    from gis.settings import Settings

    settings = Settings(database_url=city.url, load_sample_city=False, max_body_bytes=2048)
    with signed_in(city, settings=settings) as client:
        padding = " " * 3000
        response = client.post(
            "/api/v1/geocode",
            content=f'{{"x": 118.58, "y": 24.9}}{padding}',
            headers={"Content-Type": "application/json"},
        )
        assert response.status_code == 413
        assert "2048" in response.json()["detail"]
        small = client.post("/api/v1/geocode", json={"x": 118.58, "y": 24.9})
        assert small.status_code == 200
    default = Settings(database_url=city.url)
    assert default.max_body_bytes == 1024 * 1024  # as the README says (1 MiB)
