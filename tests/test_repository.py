"""Registry persistence on SpatiaLite and PostGIS: versions, scopes, transactions, bbox."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
import shapely
from shapely import box

from gis.errors import ConflictError, InputError, NotFoundError, ValidationFailedError
from gis.layers import GOVERNANCE, POLICE, LayerSpec, LevelSpec
from gis.repository import Database
from gis.units import define_layer, import_units, parse_time, unit_detail, units_page
from gis.validate import Tolerances
from tests.fixtures_governance import COMMUNITIES, COUNTY, STREETS, frame, load_governance


def test_layers_are_created_once_and_cannot_change_levels(db: Database) -> None:
    with db.transaction() as repo:
        repo.ensure_layer(GOVERNANCE)
        repo.ensure_layer(GOVERNANCE)
        assert [lv.name for lv in repo.layer_spec(name="governance").levels] == [
            "county",
            "street",
            "community",
            "grid",
            "micro_grid",
        ]
    other = LayerSpec("governance", levels=(LevelSpec("a"), LevelSpec("b")))
    with pytest.raises(ConflictError), db.transaction() as repo:
        repo.ensure_layer(other)


def test_hierarchy_round_trip_with_ancestors_and_children(db: Database) -> None:
    load_governance(db)
    detail = unit_detail(db, code="350502002001")
    assert [a["code"] for a in detail["ancestors"]] == ["350502", "350502002"]
    assert detail["children"].empty
    county = unit_detail(db, code="350502")
    assert county["children"]["code"].tolist() == ["350502001", "350502002"]
    stored = detail["unit"].geometry
    assert shapely.equals_exact(stored, shapely.MultiPolygon([COMMUNITIES["350502002001"]]), 0)
    assert detail["unit"]["attributes"] == {"households": 400}


def test_new_version_keeps_history(db: Database) -> None:
    load_governance(db)
    # Move the street boundary 0.01° east from July on (communities follow).
    west = box(118.50, 24.90, 118.56, 24.95)
    east = box(118.56, 24.90, 118.60, 24.95)
    with pytest.raises(ValidationFailedError) as refused:
        import_units(
            db,
            units=frame({"350502001": west, "350502002": east}),
            layer="governance",
            level="street",
            source="redraw",
            valid_from="2026-07-01",
        )
    assert {p.rule for p in refused.value.report.problems} == {"children_not_nested"}
    result = import_units(
        db,
        units=frame({"350502001": west, "350502002": east}),
        layer="governance",
        level="street",
        source="redraw",
        valid_from="2026-07-01",
        cascade="merge",
    )
    summary = result.summary
    assert sorted(summary.updated) == ["350502001", "350502002"]
    # The communities followed: the strip joined the west communities it borders.
    (communities,) = result.cascaded
    assert sorted(communities.updated) == sorted(COMMUNITIES) and not communities.created
    moved, _ = units_page(db, layer="governance", level="community", at="2026-08-01")
    by_code = moved.set_index("code").geometry
    expected = shapely.MultiPolygon([box(118.50, 24.925, 118.56, 24.95)])
    assert by_code["350502001001"].equals(expected)
    before, _ = units_page(db, layer="governance", level="street", at="2026-03-01")
    after, _ = units_page(db, layer="governance", level="street", at="2026-08-01")
    assert before.geometry.iloc[0].equals(shapely.MultiPolygon([STREETS["350502001"]]))
    assert after.geometry.iloc[0].equals(shapely.MultiPolygon([west]))
    assert after["valid_from"].iloc[0] == parse_time("2026-07-01")
    assert before["valid_to"].iloc[0] == parse_time("2026-07-01")


def test_unchanged_reimport_creates_no_version(db: Database) -> None:
    load_governance(db)
    result = import_units(
        db,
        units=frame(STREETS),
        layer="governance",
        level="street",
        source="again",
        valid_from="2026-02-01",
    )
    assert result.summary.counts() == {"created": 0, "updated": 0, "retired": 0, "unchanged": 2}


def test_reimport_retires_units_missing_in_scope(db: Database) -> None:
    load_governance(db)
    # Street 001 is now one community: 001002 is merged into 001001.
    merged = {"350502001001": STREETS["350502001"]}
    summary = import_units(
        db,
        units=frame(merged),
        layer="governance",
        level="community",
        source="merge",
        valid_from="2026-05-01",
    ).summary
    assert summary.retired == ["350502001002"]
    assert summary.updated == ["350502001001"]
    now, total = units_page(db, layer="governance", level="community")
    assert total == 3  # the east street's communities were out of scope and stay
    assert "350502002002" in set(now["code"])


def test_import_older_than_stored_version_is_refused(db: Database) -> None:
    load_governance(db, when="2026-03-01")
    with pytest.raises(ConflictError, match="already has a version from"):
        import_units(
            db,
            units=frame({"350502": COUNTY}),
            layer="governance",
            level="county",
            source="late",
            valid_from="2026-01-01",
        )


def test_faulty_import_writes_nothing(db: Database) -> None:
    load_governance(db)
    overlapping = dict(COMMUNITIES)
    overlapping["350502001001"] = box(118.50, 24.92, 118.55, 24.95)  # overlaps 001002
    with pytest.raises(ValidationFailedError) as raised:
        import_units(
            db,
            units=frame(overlapping),
            layer="governance",
            level="community",
            source="bad",
            valid_from="2026-06-01",
        )
    assert "overlap" in raised.value.report.rules()
    page, _ = units_page(db, layer="governance", level="community", at="2026-07-01")
    assert page["valid_from"].max() == parse_time("2026-01-01")


def test_failure_mid_import_rolls_everything_back(db: Database) -> None:
    """An error after the first written chunk leaves the database exactly as it was."""
    cells = {
        f"{i:04d}": box(i % 40 * 0.01, i // 40 * 0.01, i % 40 * 0.01 + 0.01, i // 40 * 0.01 + 0.01)
        for i in range(1200)
    }
    units = frame(cells, parent=None)

    def explode(done: int, total: int) -> None:
        raise RuntimeError(f"disk full after {done} of {total}")

    with pytest.raises(RuntimeError, match="disk full after 500"):
        import_units(
            db,
            units=units,
            layer="police",
            level="station",
            source="x",
            valid_from="2026-01-01",
            on_progress=explode,
        )
    with db.reader() as repo:
        assert repo.is_empty()
        assert repo.list_layers() == []


def test_child_level_needs_its_parents_first(db: Database) -> None:
    with pytest.raises(InputError, match="import the county level first"):
        import_units(db, units=frame(STREETS), layer="governance", level="street", source="x")


def test_unknown_layer_and_level(db: Database) -> None:
    with pytest.raises(NotFoundError):
        units_page(db, layer="nope")
    load_governance(db)
    with pytest.raises(NotFoundError, match="its levels are county, street"):
        units_page(db, layer="governance", level="beat")


def test_bbox_filter_matches_geos(db: Database) -> None:
    load_governance(db)
    window = (118.52, 24.93, 118.54, 24.94)  # inside community 350502001001 only
    page, total = units_page(db, layer="governance", level="community", bbox=window)
    assert page["code"].tolist() == ["350502001001"] and total == 1
    everything, _ = units_page(db, layer="governance", limit=1000)
    expected = everything[everything.intersects(box(*window))]["code"].tolist()
    found, _ = units_page(db, layer="governance", bbox=window, limit=1000)
    assert sorted(found["code"]) == sorted(expected)


def test_paging_is_stable(db: Database) -> None:
    load_governance(db)
    first, total = units_page(db, layer="governance", limit=3, offset=0)
    second, _ = units_page(db, layer="governance", limit=3, offset=3)
    assert total == 7
    assert (
        first["code"].tolist() + second["code"].tolist()
        == [
            "350502",
            "350502001",
            "350502002",
            "350502001001",
            "350502001002",
            "350502002001",
            "350502002002",
        ][:6]
    )


def test_times_are_stored_as_utc(db: Database) -> None:
    load_governance(db, when="2026-01-01T08:00:00+08:00")
    page, _ = units_page(db, layer="governance", level="county", at="2026-01-01T00:00:00Z")
    assert page["valid_from"].iloc[0] == datetime(2026, 1, 1, 0, 0, tzinfo=UTC)
    empty, _ = units_page(db, layer="governance", level="county", at="2025-12-31T23:59:59+00:00")
    assert empty.empty


def test_police_layer_codes_need_no_digits(db: Database) -> None:
    with db.transaction() as repo:
        repo.ensure_layer(POLICE)
    stations = frame({"S1": box(0, 0, 0.01, 0.01)}, parent=None)
    stations["parent_code"] = None
    result = import_units(db, units=stations, layer="police", level="station", source="t")
    assert result.summary.created == ["S1"]


def test_repair_fills_slivers_and_lists_each_fix(db: Database) -> None:
    load_governance(db)
    # Community 350502001002 lacks a 0.5 m x 0.5 m notch at the street's
    # south-east corner: a sliver by area (0.25 m²), not a change to ignore
    # (a shift under the 5 cm sliver width would be: the stored edge stays).
    sliver = dict(COMMUNITIES)
    notch = box(118.55 - 5e-6, 24.90, 118.55, 24.90 + 4.5e-6)
    sliver["350502001002"] = COMMUNITIES["350502001002"].difference(notch)
    plain = import_units
    with pytest.raises(ValidationFailedError):
        plain(
            db,
            units=frame(sliver),
            layer="governance",
            level="community",
            source="x",
            valid_from="2026-02-01",
            tolerances=Tolerances(sliver_area_m2=0.001, sliver_width_m=0.001),
        )
    result = import_units(
        db,
        units=frame(sliver),
        layer="governance",
        level="community",
        source="x",
        valid_from="2026-02-01",
        repair=True,
    )
    assert [(r.code, r.rule) for r in result.repairs] == [("350502001002", "parent_not_covered")]
    stored, _ = units_page(db, layer="governance", level="community", parent="350502001")
    street = shapely.MultiPolygon([STREETS["350502001"]])
    assert shapely.difference(street, shapely.union_all(stored.geometry.values)).area < 1e-12


def test_user_defined_layer(db: Database) -> None:
    spec = LayerSpec("township", "乡镇工作片", (LevelSpec("zone", "片区", (9,)), LevelSpec("area")))
    assert define_layer(db, spec=spec) == spec
    import_units(
        db,
        units=frame({"350502001": STREETS["350502001"]}, parent=None),
        layer="township",
        level="zone",
        source="t",
    )
    with pytest.raises(InputError, match="repeats a level"):
        define_layer(db, spec=LayerSpec("x", levels=(LevelSpec("a"), LevelSpec("a"))))
