"""``tongge incidents``: intake, list, show, transition, overdue, relocate — on both databases."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from api.cli import app
from gis.access import audit_log
from gis.repository import Database
from gis.settings import get_settings
from gis.times import utc_now
from tests.fixtures_access import GRID_A, GRID_B, load_two_grids, move_edge
from tests.fixtures_incidents import IN_A, add_responsible

runner = CliRunner()


@pytest.fixture
def city(db: Database, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Database]:
    load_two_grids(db, tmp_path)
    add_responsible(db)
    monkeypatch.setenv("TONGGE_DATABASE_URL", db.url)
    monkeypatch.setenv("TONGGE_CLI_NICENESS", "0")
    get_settings.cache_clear()
    yield db
    get_settings.cache_clear()


def run(*args: str) -> tuple[int, str, str]:
    result = runner.invoke(app, ["incidents", *args], env={"COLUMNS": "200", "TERM": "dumb"})
    assert result.exception is None or isinstance(result.exception, SystemExit), result.output
    return result.exit_code, result.stdout, result.stderr


def as_json(*args: str) -> Any:
    code, stdout, stderr = run(*args, "--format", "json")
    assert code == 0, stderr
    return json.loads(stdout)


def test_a_day_of_one_incident_at_the_command_line(city: Database) -> None:
    x, y = str(IN_A[0]), str(IN_A[1])
    intake = ("intake", "--category", "0101", "--x", x, "--y", y, "--key", "desk-1")
    first = as_json(*intake, "--contact", "张女士 13800000000", "--description", "占道")
    assert first["created"] and first["status"] == "dispatched"
    assert first["units"]["governance"]["grid"] == GRID_A
    assert "reporter_contact" not in first
    again = as_json(*intake, "--contact", "张女士 13800000000", "--description", "占道")
    assert not again["created"] and again["id"] == first["id"]
    code, _, stderr = run(*intake, "--description", "另一件")
    assert code == 1 and "Idempotency-Key" in stderr  # a conflict: the data, not the usage
    incident = str(first["id"])
    listed = as_json("list", "--status", "dispatched")
    assert [i["id"] for i in listed] == [first["id"]]
    for action in ("accept", "start", "resolve"):
        assert as_json("transition", incident, action, "--note", f"{action}")["status"]
    closed = as_json("transition", incident, "close", "--score", "4", "--feedback", "好")
    assert closed["status"] == "closed" and closed["feedback_score"] == 4
    shown = as_json("show", incident)
    assert [h["action"] for h in shown["history"]][-1] == "close"
    assert all(h["actor"].startswith("cli:") for h in shown["history"][2:])
    code, stdout, _ = run("show", incident)
    assert code == 0 and "history" in stdout and "close" in stdout
    assert audit_log(city, action="incidents.close")[1] == 1


def test_review_overdue_and_relocation_at_the_command_line(city: Database) -> None:
    review = as_json("intake", "--category", "0202", "--x", "110", "--y", "30", "--datum", "wgs84")
    assert review["status"] == "review" and review["review_reason"] == "outside_all_units"
    queue = as_json("list", "--status", "review")
    assert [i["id"] for i in queue] == [review["id"]]
    assert as_json("overdue") == {"overdue": [], "escalated": []}
    moved = as_json("intake", "--category", "0101", "--x", str(IN_A[0]), "--y", str(IN_A[1]))
    move_edge(city, utc_now())
    report = as_json("relocate")
    assert [entry["id"] for entry in report] == [moved["id"]]
    code, _, stderr = run("relocate", str(moved["id"]))
    assert code == 2 and "--reason" in stderr
    done = as_json("relocate", str(moved["id"]), "--reason", "网格调整")
    assert done == [
        {
            "id": moved["id"],
            "relocated": True,
            "from": {"governance": moved["units"]["governance"]["micro_grid"], "police": "P01X"},
            "to": {"governance": f"{GRID_B}001", "police": "P01X"},
        }
    ]
    assert as_json("relocate") == []


@pytest.mark.parametrize(
    ("args", "names"),
    [
        (("intake", "--category", "9999", "--x", "118.5", "--y", "24.9"), "9999"),
        (("intake", "--category", "0101"), "location"),
        (("intake", "--category", "0101", "--x", "118.5"), "--y"),
        (("intake", "--category", "0101", "--x", "1", "--y", "2", "--datum", "mars"), "datum"),
        (
            ("intake", "--category", "0101", "--address", "x", "--event-time", "2026-13-01"),
            "--event-time",
        ),
        (("transition", "1", "fly"), "unknown action"),
        (("transition", "1", "accept"), "no incident 1"),
        (("show", "abc"), "INCIDENT_ID"),
    ],
)
def test_bad_arguments_name_the_problem(city: Database, args: tuple[str, ...], names: str) -> None:
    code, stdout, stderr = run(*args)
    assert code == 2 and names.lower() in (stdout + stderr).lower(), stdout + stderr
    assert "Traceback" not in stdout + stderr
