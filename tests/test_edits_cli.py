"""``tongge edit`` and ``tongge changesets`` on the tiny hand-drawn layer (SpatiaLite)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import geopandas as gpd
import pytest
from typer.testing import CliRunner

from api.cli import app
from gis.repository import Database
from gis.settings import get_settings
from tests.fixtures_edits import line, polygon
from tests.test_edits_service import _load

runner = CliRunner()


def tongge(*args: str | Path) -> tuple[int, str]:
    result = runner.invoke(app, [str(a) for a in args])
    if result.exception and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result.exit_code, result.stdout


@pytest.fixture
def tiny_db(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Database]:
    db = Database(f"sqlite:///{tmp_path / 'tiny.sqlite'}")
    db.migrate()
    _load(db)
    monkeypatch.setenv("TONGGE_DATABASE_URL", db.url)
    monkeypatch.setenv("TONGGE_LOAD_SAMPLE_CITY", "false")
    monkeypatch.setenv("TONGGE_CLI_NICENESS", "0")
    get_settings.cache_clear()
    yield db
    get_settings.cache_clear()
    db.dispose()


def _file(folder: Path, name: str, geometry: object) -> Path:
    path = folder / name
    gpd.GeoDataFrame(geometry=[geometry], crs=4490).to_file(path)
    return path


def test_edit_preview_apply_list_show_revert(tiny_db: Database, tmp_path: Path) -> None:
    drawn = _file(tmp_path, "drawn.geojson", polygon((100, -1), (140, -1), (140, 101), (100, 101)))
    common = ("--layer", "test", "--level", "grid", "--geometry", drawn, "--to", "1003")
    code, text = tongge("edit", "transfer", *common, "--dry-run", "--format", "json")
    assert code == 0, text
    preview = json.loads(text)
    assert preview["applied"] is False and preview["changeset"] is None
    assert preview["impact"]["households"] == 12
    code, text = tongge("edit", "transfer", *common, "--reason", "测试")
    assert code == 0 and "applied as change set #1" in text, text
    code, text = tongge("changesets", "list", "--layer", "test", "--format", "json")
    listed = json.loads(text)
    assert listed["total"] == 1 and listed["changesets"][0]["reason"] == "测试"
    code, text = tongge("changesets", "show", "1", "--layer", "test", "--format", "json")
    assert code == 0 and json.loads(text)["geometry"]["features"]
    code, text = tongge("changesets", "revert", "1", "--layer", "test", "--format", "json")
    assert code == 0 and json.loads(text)["changeset"] == 2
    code, _ = tongge("changesets", "revert", "1", "--layer", "test")
    assert code == 1  # reverted already


def test_a_refused_edit_exits_1_with_the_problems(tiny_db: Database, tmp_path: Path) -> None:
    cut = _file(tmp_path, "cut.geojson", line((130, -5), (130, 105)))
    code, text = tongge(
        "edit",
        "split",
        "--layer",
        "test",
        "--level",
        "grid",
        "--unit",
        "1004",
        "--geometry",
        cut,
        "--format",
        "json",
    )
    assert code == 1
    answer = json.loads(text)
    assert answer["problems"][0]["rule"] == "cuts_building" and answer["problems"][0]["geometry"]
    code, _ = tongge("edit", "split", "--layer", "test", "--level", "grid", "--unit", "1004")
    assert code == 2  # no line: unusable input


def test_a_draft_is_saved_listed_applied_and_another_discarded(
    tiny_db: Database, tmp_path: Path
) -> None:
    drawn = _file(tmp_path, "drawn.geojson", polygon((100, -1), (140, -1), (140, 101), (100, 101)))
    common = ("--layer", "test", "--level", "grid", "--geometry", drawn, "--to", "1003")
    code, text = tongge("edit", "transfer", *common, "--draft")
    assert code == 0 and "saved as draft #1 (not applied)" in text, text
    code, text = tongge("edit", "transfer", *common, "--draft", "--format", "json")
    assert code == 0 and json.loads(text)["status"] == "draft"
    code, text = tongge("changesets", "list", "--layer", "test", "--status", "draft")
    assert code == 0 and "2 change set(s)" in text, text
    code, text = tongge("changesets", "apply", "1", "--layer", "test", "--format", "json")
    assert code == 0 and json.loads(text)["applied"] is True, text
    code, text = tongge("changesets", "apply", "2", "--layer", "test")
    assert code == 1  # 1003 and 1004 changed since draft 2 was computed
    code, text = tongge("changesets", "discard", "2", "--layer", "test")
    assert code == 0 and "draft #2 discarded" in text, text
    code, text = tongge("changesets", "list", "--layer", "test", "--format", "json")
    statuses = {c["id"]: c["status"] for c in json.loads(text)["changesets"]}
    assert statuses == {1: "applied", 2: "discarded"}
    code, _ = tongge("changesets", "discard", "1", "--layer", "test")
    assert code == 1  # not a draft
