"""A boundary change keeps every level, every building and the same-grid report consistent.

The acceptance steps of the consistency issue, as a planner does them with
the CLI on the sample city: export the grids, move a 30 m strip of grid
``350502004011003`` into its neighbour ``350502004011002`` in shapely (the
neighbours' edges then carry vertices the other side lacks), check, import
(refused: micro-grids would stick out), import with ``--cascade new``, and
look at every answer that depends on it.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import geopandas as gpd
import pytest
import shapely
from shapely import box
from typer.testing import CliRunner

from api.cli import app
from gis.errors import ValidationFailedError
from gis.io import write_units
from gis.repository import Database
from gis.settings import get_settings
from gis.times import utc_now
from gis.units import import_file, import_units, units_page
from tests._invariants import assert_layer_consistent
from tests.fixtures_city import move_strip
from tests.fixtures_governance import COMMUNITIES, STREETS, frame, load_governance

GIVER, TAKER = "350502004011003", "350502004011002"
runner = CliRunner()


def tongge(*args: str | Path) -> tuple[int, str]:
    result = runner.invoke(app, [str(a) for a in args])
    if result.exception and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result.exit_code, result.stdout


@pytest.fixture
def cli_city(city_db: Database, monkeypatch: pytest.MonkeyPatch) -> Iterator[Database]:
    monkeypatch.setenv("TONGGE_DATABASE_URL", city_db.url)
    monkeypatch.setenv("TONGGE_CLI_NICENESS", "0")
    get_settings.cache_clear()
    yield city_db
    get_settings.cache_clear()


@pytest.mark.slow
def test_moving_a_strip_keeps_every_level_consistent(cli_city: Database, tmp_path: Path) -> None:
    exported = tmp_path / "grid.geojson"
    assert (
        tongge(
            "export",
            "--layer",
            "governance",
            "--level",
            "grid",
            "--format",
            "geojson",
            "-o",
            exported,
        )[0]
        == 0
    )
    grids = gpd.read_file(exported)
    strip = move_strip(grids, GIVER, TAKER, 30)
    assert not shapely.coverage_is_valid(grids.geometry.values)  # as the issue found it
    edited = tmp_path / "grid_edited.geojson"
    grids.to_file(edited)

    code, out = tongge("check", edited, "--level", "grid", "--format", "json")
    report = json.loads(out)
    assert code == 0 and report["ok"]
    assert {GIVER, TAKER} <= {
        c for w in report["warnings"] if w["rule"] == "unnoded_edge" for c in w["codes"]
    }

    def grid_households() -> dict[str, int]:
        code, out = tongge("workload", "--level", "grid", "--format", "json")
        assert code == 0
        return {u["code"]: int(u["households"]) for u in json.loads(out)}

    before_households = grid_households()
    before, _ = units_page(cli_city, layer="governance", level="micro_grid", limit=10_000)
    code, out = tongge(
        "import",
        edited,
        "--layer",
        "governance",
        "--level",
        "grid",
        "--valid-from",
        utc_now().isoformat(),
        "--format",
        "json",
    )
    assert code == 1
    refused = json.loads(out)
    assert {p["rule"] for p in refused["problems"]} == {"children_not_nested"}
    assert all(p["lon"] and p["lat"] and p["area_m2"] for p in refused["problems"])
    unchanged, _ = units_page(cli_city, layer="governance", level="micro_grid", limit=10_000)
    assert len(unchanged) == len(before)

    code, out = tongge(
        "import",
        edited,
        "--layer",
        "governance",
        "--level",
        "grid",
        "--valid-from",
        utc_now().isoformat(),
        "--cascade",
        "new",
        "--format",
        "json",
    )
    assert code == 0, out
    result = json.loads(out)
    assert {GIVER, TAKER} <= set(result["updated_codes"])
    assert result["created"] == 0 and result["retired"] == 0
    assert result["updated"] < 10, "only the two grids and noded neighbours change"
    assert result["ignored_columns"] == ["households", "population"]
    (micro,) = result["cascaded"]
    assert micro["created"] >= 1 and all(c.startswith(TAKER) for c in micro["created_codes"])
    moves = result["moves"]
    assert len(moves) == result["moved_buildings"] > 0  # every one listed
    assert {(m["from_code"], m["to_code"]) for m in moves} == {(GIVER, TAKER)}

    assert_layer_consistent(cli_city, "governance")
    with cli_city.reader() as repo:
        buildings = repo.places.buildings_frame()
    moved_keys = {m["key"] for m in moves}
    in_strip = buildings[buildings.geometry.representative_point().within(strip.buffer(-1e-7))]
    assert set(in_strip["key"]) <= moved_keys

    after = grid_households()
    moved_households = sum(m["households"] for m in moves)
    assert moved_households > 0
    assert after[TAKER] == before_households[TAKER] + moved_households
    assert after[GIVER] == before_households[GIVER] - moved_households

    point = strip.representative_point()
    code, out = tongge("locate", point.x, point.y, "--format", "json")
    located = {u["level"]: u["code"] for u in json.loads(out)["layers"]["governance"]["units"]}
    assert located["grid"] == TAKER and located["micro_grid"].startswith(TAKER)

    code, out = tongge(
        "align",
        "--layer-a",
        "governance:grid",
        "--layer-b",
        "police:beat",
        "--proposal",
        "--format",
        "json",
    )
    assert code in (0, 1), out
    assert "aligned" in json.loads(out)

    again = tmp_path / "grid_again.geojson"
    assert (
        tongge(
            "export", "--layer", "governance", "--level", "grid", "--format", "geojson", "-o", again
        )[0]
        == 0
    )
    code, out = tongge(
        "import",
        again,
        "--layer",
        "governance",
        "--level",
        "grid",
        "--valid-from",
        utc_now().isoformat(),
        "--format",
        "json",
    )
    assert code == 0, out
    noop = json.loads(out)
    assert (noop["created"], noop["updated"], noop["retired"], noop["moved_buildings"]) == (
        0,
        0,
        0,
        0,
    )


def test_an_exported_level_imports_as_a_no_op(db: Database, tmp_path: Path) -> None:
    load_governance(db)
    frame_, _ = units_page(db, layer="governance", level="community", limit=100)
    for fmt in ("geojson", "gpkg", "csv"):
        path = tmp_path / f"communities.{fmt}"
        write_units(frame_, path, fmt=fmt)
        for keep in (False, True):
            result = import_file(
                db,
                path=path,
                layer="governance",
                level="community",
                keep_attributes=keep,
                crs="EPSG:4490" if fmt == "csv" else None,  # WKT in a CSV says no CRS
            )
            assert result.versions == 0 and len(result.moves) == 0, (fmt, keep)
            assert result.summary.counts()["unchanged"] == 4


def test_extra_columns_are_ignored_with_one_warning(db: Database, tmp_path: Path) -> None:
    load_governance(db)
    units = frame(COMMUNITIES)
    units["attributes"] = [{"households": 400}] * 4
    path = tmp_path / "communities.geojson"
    flat = units.drop(columns="attributes").assign(manager=["王"] * 4, households=[999] * 4)
    flat.to_file(path)
    result = import_file(db, path=path, layer="governance", level="community")
    assert result.versions == 0
    assert result.ignored_columns == ["households", "manager"]
    assert [w.rule for w in result.report.warnings].count("ignored_columns") == 1
    kept = import_file(db, path=path, layer="governance", level="community", keep_attributes=True)
    assert kept.summary.counts()["updated"] == 4
    stored, _ = units_page(db, layer="governance", level="community")
    assert stored["attributes"].iloc[0] == {"households": 999, "manager": "王"}


def test_a_partial_import_replaces_only_the_named_units(db: Database, tmp_path: Path) -> None:
    load_governance(db)
    # Move the line between the two west communities north by 0.005°.
    changed = {
        "350502001001": box(118.50, 24.93, 118.55, 24.95),
        "350502001002": box(118.50, 24.90, 118.55, 24.93),
    }
    path = tmp_path / "two.geojson"
    frame(changed).drop(columns="attributes").to_file(path)
    result = import_file(
        db, path=path, layer="governance", level="community", partial=True, valid_from="2026-03-01"
    )
    # The east neighbour gains a vertex where the new line meets it (noded), nothing else.
    noded = {fix.code for fix in result.fixes}
    assert set(result.summary.updated) == set(changed) | noded
    assert "350502002001" in noded and noded <= set(changed) | {"350502002001"}
    assert result.summary.counts()["retired"] == 0
    assert_layer_consistent(db, "governance", places=False)
    # A file that does not cover exactly what it replaces is refused, naming the difference.
    short = {
        "350502001001": box(118.50, 24.935, 118.55, 24.95),
        "350502001002": box(118.50, 24.90, 118.55, 24.93),
    }
    frame(short).drop(columns="attributes").to_file(path)
    with pytest.raises(ValidationFailedError) as refused:
        import_file(
            db,
            path=path,
            layer="governance",
            level="community",
            partial=True,
            valid_from="2026-04-01",
        )
    assert "gap" in {p.rule for p in refused.value.report.problems}


def test_wrong_crs_is_a_problem_not_a_traceback(
    db: Database, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    load_governance(db)
    monkeypatch.setenv("TONGGE_DATABASE_URL", db.url)
    get_settings.cache_clear()
    metres = frame(COMMUNITIES).to_crs(4549).drop(columns="attributes")
    mislabelled = tmp_path / "metres_as_4490.geojson"
    metres.set_crs(4490, allow_override=True).to_file(mislabelled)
    degrees = frame(COMMUNITIES).drop(columns="attributes").set_crs(3857, allow_override=True)
    as_mercator = tmp_path / "degrees_as_3857.geojson"
    degrees.to_file(as_mercator)
    for path in (mislabelled, as_mercator):
        commands: list[list[str | Path]] = [
            ["check", path, "--level", "community", "--format", "json"],
            ["import", path, "--layer", "governance", "--level", "community", "--format", "json"],
        ]
        for command in commands:
            code, out = tongge(*command)
            assert code == 1, (path.name, command[0], out)
            problems = json.loads(out)["problems"]
            assert [p["rule"] for p in problems] == ["crs_mismatch"], problems
    # Degrees in the right CRS but 300 km from the layer: the offset is named.
    far = frame(COMMUNITIES).drop(columns="attributes")
    far["geometry"] = far.geometry.translate(3.0, 0.0)
    far_path = tmp_path / "far.geojson"
    far.to_file(far_path)
    code, out = tongge(
        "import", far_path, "--layer", "governance", "--level", "community", "--format", "json"
    )
    assert code == 1
    (problem,) = json.loads(out)["problems"]
    assert problem["rule"] == "crs_mismatch" and "Δlon +3.0000°" in problem["message"]
    get_settings.cache_clear()


def test_police_beats_follow_a_station_change(db: Database) -> None:
    stations = {"S1": box(118.50, 24.90, 118.55, 24.95), "S2": box(118.55, 24.90, 118.60, 24.95)}
    beats = {
        "S1A": box(118.50, 24.90, 118.525, 24.95),
        "S1B": box(118.525, 24.90, 118.55, 24.95),
        "S2A": box(118.55, 24.90, 118.575, 24.95),
        "S2B": box(118.575, 24.90, 118.60, 24.95),
    }

    def police(units: dict[str, shapely.Geometry], parent: bool) -> gpd.GeoDataFrame:
        f = frame(units)
        f["parent_code"] = [c[:2] if parent else None for c in units]
        return f

    import_units(
        db,
        units=police(stations, False),
        layer="police",
        level="station",
        source="t",
        valid_from="2026-01-01",
    )
    import_units(
        db,
        units=police(beats, True),
        layer="police",
        level="beat",
        source="t",
        valid_from="2026-01-01",
    )
    moved = {"S1": box(118.50, 24.90, 118.56, 24.95), "S2": box(118.56, 24.90, 118.60, 24.95)}
    result = import_units(
        db,
        units=police(moved, False),
        layer="police",
        level="station",
        source="t",
        valid_from="2026-06-01",
        cascade="merge",
    )
    (cascaded,) = result.cascaded
    assert sorted(cascaded.updated) == ["S1B", "S2A"] and not cascaded.created
    assert_layer_consistent(db, "police", places=False)


def test_the_change_and_its_moves_are_all_or_nothing(
    db: Database, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tests.fixtures_governance import write_buildings

    load_governance(db)
    from gis.places import import_buildings

    import_buildings(db, path=write_buildings(tmp_path))
    west = {
        "350502001": box(118.50, 24.90, 118.545, 24.95),
        "350502002": box(118.545, 24.90, 118.60, 24.95),
    }
    import gis.units._import as pipeline

    def broken_audit(*_args: object, **_kwargs: object) -> None:
        raise RuntimeError("disk full after the moves were written")

    monkeypatch.setattr(pipeline, "append_audit", broken_audit)
    with pytest.raises(RuntimeError, match="disk full"):
        import_units(
            db,
            units=frame(west),
            layer="governance",
            level="street",
            source="t",
            valid_from="2026-07-01",
            cascade="new",
        )
    monkeypatch.undo()
    streets, _ = units_page(db, layer="governance", level="street", at="2026-08-01")
    assert (
        streets.set_index("code")
        .geometry["350502001"]
        .equals(shapely.MultiPolygon([STREETS["350502001"]]))
    )
    with db.reader() as repo:
        assert repo.places.moves(import_id=1).empty
        assert len(repo.units_frame(layer="governance", level="community")) == 4
    result = import_units(
        db,
        units=frame(west),
        layer="governance",
        level="street",
        source="t",
        valid_from="2026-07-01",
        cascade="new",
    )
    with db.reader() as repo:
        stored = repo.places.moves(import_id=result.summary.import_id or 0)
    assert list(stored["key"]) == ["B2"] and len(result.moves) == 1


def test_import_history_and_moves_through_the_api(db: Database, tmp_path: Path) -> None:
    from tests._client import sign_in, signed_in
    from tests.fixtures_access import GRID_A, GRID_B, load_two_grids, move_edge

    load_two_grids(db, tmp_path)
    move_edge(db, "2026-06-01")  # BA-1 (in A) now lies in B
    with signed_in(db) as admin:
        history = admin.get("/api/v1/layers/governance/imports").json()
        micro, newest = history[:2]  # the micro-grids changed as part of the grid import
        assert micro["level"] == "micro_grid" and micro["counts"]["part_of"] == newest["id"]
        assert newest["level"] == "grid" and {GRID_A, GRID_B} <= set(newest["codes"])
        moves = admin.get(f"/api/v1/layers/governance/imports/{newest['id']}/moves").json()
        assert moves["total"] == 1 and moves["households"] == 2
        (move,) = moves["moves"]
        assert (move["key"], move["from_code"], move["to_code"]) == ("BA-1", GRID_A, GRID_B)
        worker_a = sign_in(admin, db, role="grid_worker", units=[f"governance:{GRID_A}"])
        mine = admin.get(
            f"/api/v1/layers/governance/imports/{newest['id']}/moves", headers=worker_a
        ).json()
        assert mine["moves"][0]["from_code"] == GRID_A and mine["moves"][0]["to_code"] is None
        assert (
            admin.get(
                "/api/v1/layers/governance/imports/999999/moves", headers=worker_a
            ).status_code
            == 404
        )


def test_a_proposal_that_cannot_be_made_is_reported(
    db: Database, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import gis.alignment.service
    from tests._client import signed_in
    from tests.fixtures_access import load_two_grids

    load_two_grids(db, tmp_path)
    # Beat X reaches into grid B: not aligned, so a proposal is asked for.
    police = frame(
        {"P01X": box(118.50, 24.90, 118.53, 24.95), "P01Y": box(118.53, 24.90, 118.60, 24.95)},
        parent="P01",
    )
    import_units(
        db, units=police, layer="police", level="beat", source="t", valid_from="2026-06-01"
    )

    def impossible(*_args: object, **_kwargs: object) -> None:
        raise ValueError("cannot choose a beat for a grid with no ground")

    monkeypatch.setattr(gis.alignment.service, "propose_alignment", impossible)
    with signed_in(db) as admin:
        answer = admin.get("/api/v1/alignment", params={"proposal": "true"})
    assert answer.status_code == 200, answer.text
    proposal = answer.json()["proposal"]
    assert proposal["aligned"] is False and "no proposal" in proposal["unresolved"][0]
    monkeypatch.setenv("TONGGE_DATABASE_URL", db.url)
    get_settings.cache_clear()
    try:
        code, out = tongge("align", "--proposal", "--format", "json")
    finally:
        get_settings.cache_clear()
    assert code == 1 and json.loads(out)["proposal"]["unresolved"]
