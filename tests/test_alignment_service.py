"""Same-grid (同格) service on the stored sample city, on both dialects: find, fix, keep history."""

from __future__ import annotations

import json

import pytest

from boundaries import SAMPLE_CITY
from gis.access import Principal, Role, audit_log
from gis.alignment import align, apply_alignment, parse_layer_level, propose
from gis.errors import InputError
from gis.repository import Database
from gis.units import import_manifest, units_page
from gis.validate import validate_units
from tests._client import signed_in


def test_sample_city_misalignments_found_fixed_and_versioned(db: Database) -> None:
    import_manifest(db, manifest=SAMPLE_CITY / "manifest.json")
    expected = json.loads((SAMPLE_CITY / "police" / "misalignments.json").read_text("utf-8"))
    state = align(db, a="governance:grid", b="police:beat")
    assert not state.report.aligned
    named = {code for v in state.report.violations for code in v.codes}
    for item in expected:
        for key in ("grid", "beat"):
            if key in item:
                assert item[key] in named, item
    plan = propose(state)
    assert plan.aligned
    assert sorted(m.households or 0 for m in plan.moves) == [79, 101, 136, 311, 431]
    planner = Principal(
        kind="user", name="planner-li", role=Role.PLANNER, units=("governance:350502",)
    )
    apply_alignment(db, state=state, proposal=plan, valid_from="2026-07-01", actor=planner)
    (applied,) = audit_log(db, actor="planner-li")[0]  # stations and beats: one change
    assert applied.target == "layer:police:station" and "beat" in applied.detail["cascaded"]
    assert applied.action == "boundaries.import" and applied.role == "planner"
    after = align(db, a="governance:grid", b="police:beat", at="2026-07-02")
    assert after.report.aligned
    beats, _ = units_page(db, layer="police", level="beat", at="2026-07-02", limit=1000)
    stations, _ = units_page(db, layer="police", level="station", at="2026-07-02", limit=1000)
    assert validate_units(beats, parents=stations).ok
    before = align(db, a="governance:grid", b="police:beat", at="2026-03-01")
    assert not before.report.aligned  # history unchanged


def test_bad_layer_references(db: Database) -> None:
    with pytest.raises(InputError, match="LAYER:LEVEL"):
        parse_layer_level("governance")
    import_manifest(db, manifest=SAMPLE_CITY / "manifest.json")
    with pytest.raises(InputError, match="has no level 'block'"):
        align(db, a="governance:block", b="police:beat")


def test_align_command_exit_codes_json_and_map(tmp_path, monkeypatch) -> None:
    from typer.testing import CliRunner

    from api.cli import app
    from gis.settings import get_settings

    monkeypatch.setenv("TONGGE_DATABASE_URL", f"sqlite:///{tmp_path / 'city.sqlite'}")
    monkeypatch.setenv("TONGGE_LOAD_SAMPLE_CITY", "true")
    get_settings.cache_clear()
    try:
        runner = CliRunner()
        # Only `tongge init` creates the database (with the sample city).
        assert runner.invoke(app, ["init"]).exit_code == 0
        found = runner.invoke(app, ["align", "--format", "json", "--map", str(tmp_path / "m.html")])
        assert found.exit_code == 1
        body = json.loads(found.stdout)
        assert body["aligned"] is False and len(body["violations"]) >= 5
        assert (tmp_path / "m.html").stat().st_size > 1000
        fixed = runner.invoke(app, ["align", "--apply", "2026-07-01"])
        assert fixed.exit_code == 0, fixed.output
        assert runner.invoke(app, ["align"]).exit_code == 0
        bad = runner.invoke(app, ["align", "--layer-a", "nope"])
        assert bad.exit_code == 2 and "LAYER:LEVEL" in bad.stderr
    finally:
        get_settings.cache_clear()


def test_alignment_endpoint(db: Database) -> None:

    import_manifest(db, manifest=SAMPLE_CITY / "manifest.json")
    with signed_in(db) as client:
        body = client.get("/api/v1/alignment", params={"proposal": "true"}).json()
        assert body["aligned"] is False and body["counts"]["grid_split_across_beats"] == 3
        assert len(body["proposal"]["moves"]) == 5
        bad = client.get("/api/v1/alignment", params={"layer_a": "governance:nope"})
        assert bad.status_code == 400
