"""Same-grid (同格) service on the stored sample city, on both dialects: find, fix, keep history."""

from __future__ import annotations

import json

import geopandas as gpd
import pytest

from boundaries import SAMPLE_CITY, sample_city_listing
from gis.access import Principal, Role, audit_log
from gis.alignment import NoiseTolerance, align, apply_alignment, parse_layer_level, propose
from gis.errors import InputError
from gis.repository import Database
from gis.units import import_manifest, units_page
from gis.validate import validate_units
from tests._client import signed_in


def test_sample_city_misalignments_found_fixed_and_versioned(db: Database) -> None:
    import_manifest(db, manifest=SAMPLE_CITY / "manifest.json")
    expected = sample_city_listing("police/misalignments.json")
    state = align(db, a="governance:grid", b="police:beat")
    assert not state.report.aligned
    named = {code for v in state.report.violations for code in v.codes}
    for item in expected:
        for key in ("grid", "beat"):
            if key in item:
                assert item[key] in named, item
    plan = propose(state)
    assert plan.aligned
    assert sorted(m.households or 0 for m in plan.moves) == sorted(
        e["households_moved"] for e in expected
    )
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


def test_align_command_exit_codes_json_and_map(city_db: Database, tmp_path, monkeypatch) -> None:
    from typer.testing import CliRunner

    from api.cli import app
    from gis.settings import get_settings

    # The sample city as `serve` loads it on first use (a copy of the run's one).
    monkeypatch.setenv("TONGGE_DATABASE_URL", city_db.url)
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


def test_noise_options_datum_and_stale_in_the_answers(city_db: Database, monkeypatch) -> None:
    from typer.testing import CliRunner

    from api.cli import app
    from gis.settings import get_settings

    with signed_in(city_db) as client:
        body = client.get("/api/v1/alignment").json()
        assert body["aligned"] is False and len(body["violations"]) >= 5
        # The police layer is digitised separately: its offsets are noise, listed.
        assert body["noise"] and body["datum_offset"] is None and body["stale"] == []
        default = NoiseTolerance()
        for noise in body["noise"]:
            thin = noise["width_m"] < default.width_m
            assert thin or (noise["household_share"] or 0.0) < default.household_share, noise
        bad = client.get("/api/v1/alignment", params={"noise_width_m": -1})
        assert bad.status_code == 400 and "noise_width_m" in bad.text
        share = client.get("/api/v1/alignment", params={"noise_household_share": 2})
        assert share.status_code == 400 and "noise_household_share" in share.text
    monkeypatch.setenv("TONGGE_DATABASE_URL", city_db.url)
    get_settings.cache_clear()
    try:
        runner = CliRunner()
        wrong = runner.invoke(app, ["align", "--noise-area", "1.5"])
        assert wrong.exit_code == 2 and "noise_area_share" in wrong.stderr
        strict = runner.invoke(
            app, ["align", "--noise-width", "0", "--noise-households", "0", "--format", "json"]
        )
        assert strict.exit_code == 1
        assert json.loads(strict.stdout)["noise_tolerance"]["width_m"] == 0.0
    finally:
        get_settings.cache_clear()


def test_same_grid_joins_the_township_work_areas_too(city_db: Database, monkeypatch) -> None:
    from typer.testing import CliRunner

    from api.cli import app
    from gis.settings import get_settings

    areas = gpd.read_file(SAMPLE_CITY / "township" / "work_area.geojson")
    grids = gpd.read_file(SAMPLE_CITY / "governance" / "grid.geojson")
    with signed_in(city_db) as client:
        body = client.get("/api/v1/alignment", params={"layer_b": "township:work_area"}).json()
    assert body["aligned"] is True, body["violations"][:3]
    assert body["counts"] == {} and body["noise"] == []  # drawn from the civil layer itself
    monkeypatch.setenv("TONGGE_DATABASE_URL", city_db.url)
    get_settings.cache_clear()
    try:
        runner = CliRunner()
        found = runner.invoke(app, ["align", "--layer-b", "township:work_area", "--format", "json"])
        beats = runner.invoke(
            app, ["align", "--layer-a", "police:beat", "--layer-b", "township:work_area"]
        )
    finally:
        get_settings.cache_clear()
    assert found.exit_code == 0, found.output
    report = json.loads(found.stdout)
    assert report["aligned"] is True
    assert report["a_units"] == len(grids) and report["b_units"] == len(areas)
    # Beats against work areas: the beat that crosses a street boundary is found.
    assert beats.exit_code == 1, beats.output


def test_check_command_reports_a_gcj02_layer_against_its_parent(tmp_path) -> None:
    import geopandas as gpd
    import numpy as np
    from typer.testing import CliRunner

    from api.cli import app
    from gis.validate import convert_to_datum

    stations = gpd.read_file(SAMPLE_CITY / "police" / "station.geojson")
    geoms = convert_to_datum(np.asarray(stations.geometry.values, dtype=object), "gcj02")
    shifted = stations.set_geometry(gpd.GeoSeries(geoms, crs=stations.crs))
    shifted.to_file(tmp_path / "stations.geojson", driver="GeoJSON")
    county = SAMPLE_CITY / "governance" / "county.geojson"
    result = CliRunner().invoke(
        app,
        ["check", str(tmp_path / "stations.geojson"), "--parent", str(county), "--format", "json"],
    )
    assert result.exit_code == 1
    problems = json.loads(result.stdout)["problems"]
    (offset,) = [p for p in problems if p["rule"] == "datum_offset"]
    assert "gcj02" in offset["message"] and offset["lon"] is not None
    clean = CliRunner().invoke(
        app,
        ["check", str(SAMPLE_CITY / "police" / "station.geojson"), "--parent", str(county)],
    )
    assert clean.exit_code == 0, clean.output


def test_stale_references_name_retired_and_unknown_codes() -> None:
    import geopandas as gpd
    import pandas as pd
    from shapely import box

    from gis.alignment._stale import stale_references

    beats = gpd.GeoDataFrame(
        {
            "code": ["b1", "b2", "b3"],
            "attributes": [
                {"grid_codes": ["g1", "g7"]},
                {"community_code": "c9"},
                {"grids": "g1、g2"},
            ],
        },
        geometry=[box(0, 0, 1, 1)] * 3,
        crs="EPSG:4490",
    )
    history = pd.DataFrame(
        {
            "code": ["g1", "g7", "g7"],
            "valid_to": [
                None,
                pd.Timestamp("2025-01-01", tz="UTC"),
                pd.Timestamp("2026-01-01", tz="UTC"),
            ],
        }
    )
    found = stale_references(beats, valid={"g1", "g2", "c1"}, history=history)
    assert [(r["b_code"], r["code"]) for r in found] == [("b1", "g7"), ("b2", "c9")]
    assert found[0]["retired"].startswith("2026-01-01") and "retired" in found[0]["message"]
    assert found[1]["retired"] is None and "does not exist" in found[1]["message"]


def test_beats_drawn_on_an_earlier_version_of_the_grids_are_stale(db: Database, tmp_path) -> None:
    from gis.units import import_units
    from tests.fixtures_access import (
        BEAT_X,
        BEAT_Y,
        COMMUNITY,
        GRID_A,
        GRID_B,
        _units,
        load_two_grids,
    )

    load_two_grids(db, tmp_path)
    assert align(db, a="governance:grid", b="police:beat", at="2026-03-01").report.stale == []
    # The grid edge moves 0.005° (~500 m) east; the beats still follow the old one.
    moved = [
        (GRID_A, "甲网格", COMMUNITY, (118.50, 24.925, 118.53, 24.95)),
        (GRID_B, "乙网格", COMMUNITY, (118.53, 24.925, 118.55, 24.95)),
    ]
    import_units(
        db,
        units=_units(moved),
        layer="governance",
        level="grid",
        source="t",
        valid_from="2026-06-01",
        cascade="new",
    )
    state = align(db, a="governance:grid", b="police:beat", at="2026-07-01")
    stale = {(s["b_code"], s["a_code"]) for s in state.report.stale}
    assert (BEAT_X, GRID_A) in stale and (BEAT_Y, GRID_B) in stale
    assert all("2026-05-31T16:00:00+00:00" in s["message"] for s in state.report.stale)
    assert not state.report.aligned
    body = state.report.to_dict()
    assert body["stale"] and json.dumps(body)


def test_noisy_police_layer_stored_reported_and_snapped(city_db: Database, monkeypatch) -> None:
    """The police layer re-digitised with 3 m rms noise: found as noise, then snapped away."""
    import geopandas as gpd
    import shapely
    from typer.testing import CliRunner

    from api.cli import app
    from gis.settings import get_settings
    from gis.units import import_units
    from tests.test_alignment_noise import smooth_field

    move = smooth_field(3.0, 5)

    def noisy(level: str) -> gpd.GeoDataFrame:
        frame, _ = units_page(city_db, layer="police", level=level, limit=1000)
        frame = frame[["code", "name", "parent_code", "kind", "attributes", "geometry"]]
        return frame.set_geometry(
            gpd.GeoSeries(shapely.transform(frame.geometry.values, move), crs=frame.crs)
        )

    import_units(
        city_db,
        units=noisy("station"),
        layer="police",
        level="station",
        source="noise study",
        valid_from="2026-05-01",
        levels_below={"beat": noisy("beat")},
    )
    state = align(city_db, a="governance:grid", b="police:beat", at="2026-05-02")
    assert len(state.report.noise) > 20
    assert {v.codes[0] for v in state.report.violations if v.kind == "grid_split_across_beats"} == {
        e["grid"]
        for e in sample_city_listing("police/misalignments.json")
        if e["kind"] == "grid_split_across_beats"
    }
    monkeypatch.setenv("TONGGE_DATABASE_URL", city_db.url)
    get_settings.cache_clear()
    try:
        runner = CliRunner()
        fixed = runner.invoke(app, ["align", "--apply", "2026-07-01"])
        assert fixed.exit_code == 0, fixed.output
        assert "boundary noise" in fixed.stdout and "snapped" in fixed.stdout
    finally:
        get_settings.cache_clear()
    after = align(city_db, a="governance:grid", b="police:beat", at="2026-07-02")
    assert after.report.aligned and after.report.noise == []
