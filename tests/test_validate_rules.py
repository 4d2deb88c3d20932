"""One test per validation rule, on the tiny hand-drawn grids of :mod:`tests.fixtures_grids`.

Each test asserts the exact set of rules reported, the codes involved, that the
reported lon/lat (CGCS2000) lies on the fault once projected back to metres,
and the area in m².
"""

from __future__ import annotations

import json
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely
from pyproj import Transformer
from shapely.geometry.base import BaseGeometry

from gis.datum import wgs84_to_gcj02
from gis.io import FieldMap, read_units
from gis.layers import GOVERNANCE
from gis.units import check_file
from gis.validate import RULES, Problem, Tolerances, ValidationReport, validate_units
from gis.validate._coverage import coverage_union
from tests import fixtures_grids as fg

TO_METRES = Transformer.from_crs("EPSG:4490", fg.CRS, always_xy=True)
#: How far (m) a reported location may be from the fault: it should be on it.
NEAR_M = 1.0
PROBLEM_KEYS = {"rule", "codes", "lon", "lat", "area_m2", "message"}


def located(problem: Problem) -> shapely.Point:
    """Return the problem's location in the fixtures' metre CRS."""
    assert problem.lon is not None and problem.lat is not None, problem
    x, y = TO_METRES.transform(problem.lon, problem.lat)
    return shapely.Point(x, y)


def assert_near(problem: Problem, fault: BaseGeometry, metres: float = NEAR_M) -> None:
    """Assert the problem is located on (within ``metres`` of) the fault."""
    distance = located(problem).distance(fault)
    assert distance <= metres, f"{problem} is {distance:.2f} m from the fault"


def only(report: ValidationReport, rule: str) -> Problem:
    """Assert the report has exactly one problem, of ``rule``, and return it."""
    assert [p.rule for p in report.problems] == [rule], report.problems
    return report.problems[0]


def run(grids: fg.Grids, *, with_parents: bool = True, **kwargs: object) -> ValidationReport:
    """Validate a fixture, against its parents or as a level alone."""
    parents = grids.parents if with_parents else None
    return validate_units(grids.children, parents=parents, **kwargs)  # type: ignore[arg-type]


# --- clean data ---------------------------------------------------------------------------


@pytest.mark.parametrize("with_parents", [True, False], ids=["parents", "level"])
def test_clean_grid_has_no_problem_and_no_warning(with_parents: bool) -> None:
    report = run(fg.clean(), with_parents=with_parents)
    assert report.ok
    assert report.problems == []
    assert report.warnings == []
    assert report.unit_count == 4


def test_clean_grid_in_degrees_with_parent_in_metres_is_clean() -> None:
    grids = fg.clean()
    report = validate_units(grids.children.to_crs("EPSG:4326"), parents=grids.parents)
    assert report.problems == []


def test_parent_without_the_childrens_corner_vertex_gives_sub_tolerance_warnings_only() -> None:
    # The 200 m edge of a projected square, stored in EPSG:4490, bends away from
    # the children's corner at its middle by a fraction of a millimetre.
    grids = fg.clean()
    parents = fg.frame(["01"], [fg.rect(0, 0, 200, 200)])
    report = validate_units(grids.children, parents=parents)
    assert report.problems == []
    assert report.warnings, "sub-tolerance discrepancies must be reported, not dropped"
    assert all(w.area_m2 is not None and w.area_m2 < 0.1 for w in report.warnings)


# --- one test per rule --------------------------------------------------------------------


@pytest.mark.parametrize("with_parents", [True, False], ids=["parents", "level"])
def test_overlap(with_parents: bool) -> None:
    grids = fg.overlap()
    problem = only(run(grids, with_parents=with_parents), "overlap")
    assert problem.codes == ("0101", "0102")
    assert_near(problem, grids.fault)
    assert problem.area_m2 == pytest.approx(2000, rel=1e-3)


def test_overlap_of_a_unit_inside_another() -> None:
    children = fg.frame(["0101", "0102"], [fg.rect(0, 0, 200, 200), fg.rect(50, 50, 70, 70)])
    problem = only(validate_units(children), "overlap")
    assert problem.codes == ("0101", "0102")
    assert_near(problem, fg.rect(50, 50, 70, 70))
    assert problem.area_m2 == pytest.approx(400, rel=1e-3)


def test_overlap_with_stored_neighbours() -> None:
    grids = fg.clean()
    neighbours = fg.frame(["0201"], [fg.rect(190, 0, 300, 100)])
    report = validate_units(grids.children, neighbours=neighbours)
    problem = only(report, "overlap")
    assert problem.codes == ("0104", "0201")
    assert_near(problem, fg.rect(190, 0, 200, 100))
    assert problem.area_m2 == pytest.approx(1000, rel=1e-3)


def test_gap_in_the_middle_inside_a_parent() -> None:
    grids = fg.gap_middle()
    problem = only(run(grids), "gap")
    assert problem.codes == ("01", "0101", "0102", "0103", "0104")
    assert_near(problem, grids.fault)
    assert problem.area_m2 == pytest.approx(400, rel=1e-3)


def test_gap_in_the_middle_of_a_level_without_parents() -> None:
    grids = fg.gap_middle()
    problem = only(run(grids, with_parents=False), "gap")
    assert problem.codes == ("0101", "0102", "0103", "0104")
    assert_near(problem, grids.fault)
    assert problem.area_m2 == pytest.approx(400, rel=1e-3)


@pytest.mark.parametrize(
    ("with_parents", "codes"),
    [(True, ("01", *fg.CHILD_CODES, "0105")), (False, (*fg.CHILD_CODES, "0105"))],
    ids=["parents", "level"],
)
def test_gap_around_an_island_unit_excludes_the_island(
    with_parents: bool, codes: tuple[str, ...]
) -> None:
    grids = fg.gap_around_island()
    problem = only(run(grids, with_parents=with_parents), "gap")
    assert problem.codes == codes
    assert_near(problem, grids.fault)  # not on the island
    assert problem.area_m2 == pytest.approx(1200, rel=1e-3)


def test_outside_parent() -> None:
    grids = fg.outside_parent()
    problem = only(run(grids), "outside_parent")
    assert problem.codes == ("0102", "01")
    assert_near(problem, grids.fault)
    assert problem.area_m2 == pytest.approx(3000, rel=1e-3)


@pytest.mark.parametrize(
    ("code", "codes"), [("0105", ("0105", "01")), ("0905", ("0905",))], ids=["by-code", "nowhere"]
)
def test_unit_far_outside_its_parent(code: str, codes: tuple[str, ...]) -> None:
    # Without parent_code: 0105 belongs to 01 by its code, 0905 to no parent at all.
    grids = fg.clean()
    children = pd_concat(grids.children, fg.frame([code], [fg.rect(500, 0, 600, 100)]))
    children = children.drop(columns="parent_code")
    problem = only(validate_units(children, parents=grids.parents), "outside_parent")
    assert problem.codes == codes
    assert_near(problem, fg.rect(500, 0, 600, 100))
    assert problem.area_m2 == pytest.approx(10_000, rel=1e-3)


def test_parent_not_covered_at_its_edge() -> None:
    grids = fg.parent_not_covered()
    problem = only(run(grids), "parent_not_covered")
    assert problem.codes == ("01",)
    assert_near(problem, grids.fault)
    assert problem.area_m2 == pytest.approx(2000, rel=1e-3)


@pytest.mark.parametrize("with_parents", [True, False], ids=["parents", "level"])
def test_duplicate_code(with_parents: bool) -> None:
    grids = fg.duplicate_code()
    problem = only(run(grids, with_parents=with_parents), "duplicate_code")
    assert problem.codes == ("0101",)
    assert_near(problem, grids.fault)
    assert "2 features" in problem.message


@pytest.mark.parametrize("parent_column", [True, False], ids=["parent_code", "by-place"])
def test_code_not_under_parent(parent_column: bool) -> None:
    grids = fg.code_not_under_parent()
    children = grids.children if parent_column else grids.children.drop(columns="parent_code")
    problem = only(validate_units(children, parents=grids.parents), "code_not_under_parent")
    assert problem.codes == ("0204", "01")
    assert_near(problem, grids.fault)


def test_unknown_parent_is_reported_once() -> None:
    # The unit still covers its part of parent 01: no parent_not_covered as well.
    grids = fg.unknown_parent()
    problem = only(run(grids), "unknown_parent")
    assert problem.codes == ("0104", "09")
    assert_near(problem, grids.fault)


def test_unknown_parent_far_from_every_parent_is_not_also_outside() -> None:
    grids = fg.clean()
    stray = fg.frame(["0905"], [fg.rect(500, 0, 600, 100)], ["09"])
    report = validate_units(pd_concat(grids.children, stray), parents=grids.parents)
    problem = only(report, "unknown_parent")
    assert problem.codes == ("0905", "09")


@pytest.mark.parametrize("with_parents", [True, False], ids=["parents", "level"])
def test_missing_code(with_parents: bool) -> None:
    grids = fg.missing_code()
    problem = only(run(grids, with_parents=with_parents), "missing_code")
    assert problem.codes == ("#2",)
    assert_near(problem, grids.fault)


def test_missing_code_without_parent_code_is_not_also_code_not_under_parent() -> None:
    grids = fg.missing_code()
    children = grids.children.drop(columns="parent_code")
    problem = only(validate_units(children, parents=grids.parents), "missing_code")
    assert problem.codes == ("#2",)


def test_missing_code_names_the_feature_row_even_after_a_multi_part_join() -> None:
    grids = fg.multi_part()
    unnamed = fg.frame([None], [fg.rect(0, 200, 100, 300)], ["01"])
    children = pd_concat(grids.children, unnamed)  # rows 0..3; rows 0 and 2 are joined
    problem = only(validate_units(children), "missing_code")
    assert problem.codes == ("#3",)
    assert problem.message == "feature #3 has no code"


def test_bow_tie_is_invalid_geometry_located_at_the_crossing() -> None:
    grids = fg.bow_tie()
    problem = only(run(grids, with_parents=False), "invalid_geometry")
    assert problem.codes == ("0104",)
    assert_near(problem, grids.fault)
    assert "Self-intersection" in problem.message
    # The area of what the bow-tie does enclose: two 2,500 m² triangles.
    assert problem.area_m2 == pytest.approx(5000, rel=1e-3)


def test_bow_tie_ground_is_also_reported_uncovered_within_its_parent() -> None:
    # An invalid unit takes no part in the overlays, so the ground it was
    # meant to cover is (truthfully) covered by no valid unit.
    grids = fg.bow_tie()
    report = run(grids)
    assert sorted(p.rule for p in report.problems) == ["invalid_geometry", "parent_not_covered"]
    uncovered = next(p for p in report.problems if p.rule == "parent_not_covered")
    assert uncovered.codes == ("01",)
    assert_near(uncovered, fg.rect(100, 0, 200, 100))


@pytest.mark.parametrize("with_parents", [True, False], ids=["parents", "level"])
def test_point_among_polygons_is_wrong_geometry_type(with_parents: bool) -> None:
    grids = fg.point_feature()
    problem = only(run(grids, with_parents=with_parents), "wrong_geometry_type")
    assert problem.codes == ("0105",)
    assert_near(problem, grids.fault)
    assert "Point" in problem.message


def test_empty_and_missing_geometries_are_invalid() -> None:
    grids = fg.clean()
    broken = fg.frame(["0105", "0106"], [shapely.Polygon(), None], ["01", "01"])
    report = validate_units(pd_concat(grids.children, broken), parents=grids.parents)
    assert [(p.rule, p.codes) for p in report.problems] == [
        ("invalid_geometry", ("0105",)),
        ("invalid_geometry", ("0106",)),
    ]


def test_parent_without_children_is_a_warning_only_when_expected() -> None:
    grids = fg.clean()
    parents = pd_concat(grids.parents, fg.frame(["02"], [fg.rect(200, 0, 400, 200)]))
    assert validate_units(grids.children, parents=parents).warnings == []
    report = validate_units(grids.children, parents=parents, expect_all_parents=True)
    assert report.problems == []
    assert [(w.rule, w.codes) for w in report.warnings] == [("no_children", ("02",))]


def test_empty_frame_is_clean() -> None:
    report = validate_units(fg.frame([], []), parents=fg.parent_square())
    assert report.to_dict() == {"ok": True, "unit_count": 0, "problems": [], "warnings": []}


def test_crs_missing() -> None:
    children = fg.clean().children.set_crs(None, allow_override=True)
    report = validate_units(children)
    assert [p.rule for p in report.problems] == ["crs_missing"]
    assert not report.ok


def test_crs_missing_on_the_parents() -> None:
    grids = fg.clean()
    parents = grids.parents.set_crs(None, allow_override=True)
    report = validate_units(grids.children, parents=parents)
    assert [p.rule for p in report.problems] == ["crs_missing"]
    assert "parent" in report.problems[0].message


# --- tolerances ---------------------------------------------------------------------------


@pytest.mark.parametrize("with_parents", [True, False], ids=["parents", "level"])
def test_sliver_overlap_is_a_warning_not_a_problem_and_not_silence(with_parents: bool) -> None:
    grids = fg.sliver_overlap()
    report = run(grids, with_parents=with_parents)
    assert report.problems == []
    warning = next(w for w in report.warnings if w.rule == "overlap" and (w.area_m2 or 0) > 0.1)
    assert warning.codes == ("0101", "0102")
    assert_near(warning, grids.fault)
    assert warning.area_m2 == pytest.approx(0.6, rel=1e-2)
    assert "sliver" in warning.message


@pytest.mark.parametrize(
    ("with_parents", "codes"),
    [(True, ("01",)), (False, ("0101", "0102", "0103", "0104"))],
    ids=["parents", "level"],
)
def test_sliver_gap_is_a_gap_warning(with_parents: bool, codes: tuple[str, ...]) -> None:
    grids = fg.sliver_gap()
    report = run(grids, with_parents=with_parents)
    assert report.problems == []
    assert [(w.rule, w.codes) for w in report.warnings] == [("gap", codes)]
    assert_near(report.warnings[0], grids.fault)
    assert report.warnings[0].area_m2 == pytest.approx(0.25, rel=1e-2)


def test_tighter_tolerances_turn_a_sliver_into_a_problem() -> None:
    grids = fg.sliver_overlap()
    tight = Tolerances(sliver_area_m2=0.1, sliver_width_m=0.001)
    problem = only(run(grids, tolerances=tight), "overlap")
    assert problem.codes == ("0101", "0102")
    assert problem.area_m2 == pytest.approx(0.6, rel=1e-2)


def test_looser_tolerances_turn_a_problem_into_a_warning() -> None:
    grids = fg.overlap()
    report = run(grids, tolerances=Tolerances(sliver_area_m2=5000))
    assert report.problems == []
    assert ("overlap", ("0101", "0102")) in [(w.rule, w.codes) for w in report.warnings]


def test_tolerances_is_sliver_by_area_or_width() -> None:
    tolerances = Tolerances()
    assert tolerances.is_sliver(shapely.box(0, 0, 0.9, 1))  # 0.9 m²
    assert tolerances.is_sliver(shapely.box(0, 0, 0.04, 1000))  # 4 cm wide
    assert not tolerances.is_sliver(shapely.box(0, 0, 1, 2))


# --- governance codes ---------------------------------------------------------------------

COMMUNITY = "350502001001"


def governance_grids(codes: list[str]) -> tuple[gpd.GeoDataFrame, gpd.GeoDataFrame]:
    """Four grids (codes given) of the community 350502001001 (the 2x2 square)."""
    children = fg.frame(codes, fg.quads(), [COMMUNITY] * 4)
    parents = fg.parent_square().assign(code=[COMMUNITY])
    return children, parents


def validate_grids(codes: list[str], **kwargs: object) -> ValidationReport:
    children, parents = governance_grids(codes)
    return validate_units(children, parents=parents, layer=GOVERNANCE, level="grid", **kwargs)  # type: ignore[arg-type]


def test_governance_grid_codes_extend_the_community_code_by_three_digits() -> None:
    report = validate_grids([f"{COMMUNITY}{n:03d}" for n in range(1, 5)])
    assert report.problems == []
    assert report.warnings == []


def test_governance_legacy_14_digit_grid_codes_are_fine() -> None:
    report = validate_grids([f"{COMMUNITY}{n:02d}" for n in range(1, 5)])
    assert report.problems == []
    assert report.warnings == []


def test_governance_13_digit_grid_code_is_not_under_its_parent() -> None:
    codes = [f"{COMMUNITY}{n:03d}" for n in range(1, 4)] + [f"{COMMUNITY}4"]
    report = validate_grids(codes)
    problem = only(report, "code_not_under_parent")
    assert problem.codes == (f"{COMMUNITY}4", COMMUNITY)
    assert_near(problem, fg.rect(100, 0, 200, 100))
    assert [(w.rule, w.codes) for w in report.warnings] == [("code_format", (f"{COMMUNITY}4",))]


def test_governance_grid_code_of_another_community() -> None:
    codes = [f"{COMMUNITY}{n:03d}" for n in range(1, 4)] + ["350502001002004"]
    problem = only(validate_grids(codes), "code_not_under_parent")
    assert problem.codes == ("350502001002004", COMMUNITY)


def test_governance_codes_must_be_digits_a_warning() -> None:
    codes = [f"{COMMUNITY}{n:03d}" for n in range(1, 4)] + [f"{COMMUNITY}00A"]
    report = validate_grids(codes)
    assert report.problems == []
    assert [(w.rule, w.codes) for w in report.warnings] == [("code_format", (f"{COMMUNITY}00A",))]


def test_level_given_by_name_without_layer() -> None:
    report = validate_units(fg.clean().children, parents=fg.clean().parents, level="grid")
    assert report.problems == []


# --- multi-part units ---------------------------------------------------------------------


def test_disjoint_parts_with_equal_properties_are_one_multi_part_unit() -> None:
    grids = fg.multi_part()
    report = run(grids)
    assert report.problems == []
    assert [(w.rule, w.codes) for w in report.warnings] == [("multi_part_unit", ("0101",))]
    assert report.unit_count == 2
    parts = grids.children.geometry[grids.children["code"] == "0101"].union_all()
    assert_near(report.warnings[0], parts)


def test_disjoint_parts_with_different_properties_are_duplicates() -> None:
    grids = fg.multi_part()
    children = grids.children.assign(name=["west", "middle", "east"])
    problem = only(validate_units(children, parents=grids.parents), "duplicate_code")
    assert problem.codes == ("0101",)


def test_same_code_on_overlapping_parts_is_duplicate_and_overlap() -> None:
    grids = fg.clean()
    extra = fg.frame(["0101"], [fg.rect(50, 150, 80, 180)], ["01"])
    report = validate_units(pd_concat(grids.children, extra), parents=grids.parents)
    assert [(p.rule, p.codes) for p in report.problems] == [
        ("overlap", ("0101", "0101")),
        ("duplicate_code", ("0101",)),
    ]
    assert_near(report.problems[0], fg.rect(50, 150, 80, 180))
    assert report.problems[0].area_m2 == pytest.approx(900, rel=1e-3)


# --- the JSON contract --------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(fg.ALL))
def test_json_form_matches_the_contract(name: str) -> None:
    grids = fg.ALL[name]()
    report = run(grids)
    data = json.loads(json.dumps(report.to_dict()))
    assert set(data) == {"ok", "unit_count", "problems", "warnings"}
    assert data["ok"] is (not data["problems"])
    for item in data["problems"] + data["warnings"]:
        assert set(item) == PROBLEM_KEYS
        assert isinstance(item["codes"], list)
        assert all(isinstance(code, str) for code in item["codes"])
        assert isinstance(item["message"], str) and item["message"]
        for key in ("lon", "lat", "area_m2"):
            assert item[key] is None or isinstance(item[key], float | int)
    for item in data["problems"]:
        assert item["rule"] in RULES
        assert item["codes"], "every problem names the units involved"
        # Every fixture fault is located (the data is near 120.00E, 24.86N).
        assert item["lon"] == pytest.approx(120.0, abs=0.01)
        assert item["lat"] == pytest.approx(24.856, abs=0.01)


def test_rules_are_the_contract() -> None:
    assert set(RULES) == {
        "invalid_geometry", "overlap", "gap", "outside_parent", "parent_not_covered",
        "duplicate_code", "code_not_under_parent", "unknown_parent", "missing_code",
        "crs_missing", "wrong_geometry_type", "crs_mismatch", "datum_offset",
        "children_not_nested",
    }


def test_problems_are_sorted_by_rule_then_codes() -> None:
    grids = fg.overlap()
    children = grids.children.copy()
    children.loc[3, "code"] = "0102"  # a duplicate as well
    report = validate_units(children, parents=grids.parents)
    order = [(RULES.index(p.rule), p.codes) for p in report.problems]
    assert order == sorted(order)


def test_progress_names_each_step() -> None:
    steps: list[str] = []
    grids = fg.clean()
    validate_units(grids.children, parents=grids.parents, progress=steps.append)
    assert steps == ["geometry", "codes", "overlaps", "nesting"]


# --- check_file on real files -------------------------------------------------------------


def write(frame: gpd.GeoDataFrame, path: Path) -> Path:
    frame.to_file(path, driver="GPKG")
    return path


def test_check_file_reprojects_gauss_kruger_children_onto_cgcs2000_parents(tmp_path: Path) -> None:
    grids = fg.clean()
    children = write(grids.children, tmp_path / "grids_4549.gpkg")
    parents = write(grids.parents.to_crs("EPSG:4490"), tmp_path / "communities_4490.gpkg")
    assert read_units(children).crs.to_epsg() == 4490
    report = check_file(children, parent_path=parents)
    assert report.problems == []
    assert report.unit_count == 4


def test_check_file_finds_the_fault_through_files(tmp_path: Path) -> None:
    grids = fg.outside_parent()
    children = write(grids.children, tmp_path / "grids.gpkg")
    parents = write(grids.parents.to_crs("EPSG:4490"), tmp_path / "communities.gpkg")
    problem = only(check_file(children, parent_path=parents), "outside_parent")
    assert problem.codes == ("0102", "01")
    assert_near(problem, grids.fault)


def test_check_file_converts_a_declared_gcj02_file(tmp_path: Path) -> None:
    wgs84 = fg.clean().children.to_crs("EPSG:4326")

    def shift(coords: np.ndarray) -> np.ndarray:
        lon, lat = wgs84_to_gcj02(coords[:, 0], coords[:, 1])
        return np.column_stack([lon, lat])

    gcj02 = wgs84.set_geometry(shapely.transform(np.asarray(wgs84.geometry.values), shift))
    original = write(wgs84, tmp_path / "wgs84.gpkg")
    shifted = write(gcj02, tmp_path / "gcj02.gpkg")
    # The offset is hundreds of metres: not converting it would be a real error.
    offset = shapely.distance(
        read_units(shifted).geometry.values, read_units(original).geometry.values
    )
    assert np.all(offset > 1e-3)

    converted = read_units(shifted, crs="gcj02")
    truth = read_units(original)
    for got, want in zip(converted.geometry.values, truth.geometry.values, strict=True):
        assert np.allclose(shapely.get_coordinates(got), shapely.get_coordinates(want), atol=1e-6)
    report = check_file(shifted, crs="gcj02")
    assert report.problems == []
    assert report.unit_count == 4


def test_check_file_with_a_field_map(tmp_path: Path) -> None:
    grids = fg.duplicate_code()
    renamed = grids.children.rename(columns={"code": "网格编码X", "parent_code": "上级"})
    path = write(renamed, tmp_path / "renamed.gpkg")
    report = check_file(path, fields=FieldMap(code="网格编码X", parent="上级"))
    assert only(report, "duplicate_code").codes == ("0101",)


def pd_concat(*frames: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    """Concatenate unit frames with a fresh 0..n-1 index (as if read from one file)."""
    return gpd.GeoDataFrame(pd.concat(frames, ignore_index=True), crs=frames[0].crs)


def test_coverage_union_answers_when_geos_calls_the_coverage_incorrectly_noded() -> None:
    # A vertex on one side of a shared edge and not on the other: GEOS'
    # coverage union raises on this; the overlay union must answer instead.
    left = shapely.box(0, 0, 1, 1)
    right = shapely.Polygon([(1, 0), (2, 0), (2, 1), (1, 1), (1, 0.5)])
    pair = np.array([left, right], dtype=object)
    with pytest.raises(shapely.errors.GEOSException):
        shapely.coverage_union_all(pair)
    union = coverage_union(pair, is_coverage=True)
    assert union.equals(shapely.box(0, 0, 2, 1))
