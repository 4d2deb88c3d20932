"""Property tests: random Voronoi coverages nested in parents made by dissolving them.

Children are the Voronoi cells of random points clipped to a 1 km box (EPSG:4549),
grouped into parents by dissolving; such a layer is clean by construction, and
removing or growing one child must be reported against that child's parent.
"""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import shapely
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gis.validate import validate_units
from tests.fixtures_grids import CRS, X0, Y0

SIZE = 1000.0
PROPERTY = settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)


@st.composite
def coverages(draw: st.DrawFn) -> tuple[gpd.GeoDataFrame, gpd.GeoDataFrame]:
    """Draw (children, parents): 4-30 Voronoi cells in 1-5 dissolved parents of 2 or more."""
    count = draw(st.integers(min_value=4, max_value=30))
    seed = draw(st.integers(min_value=0, max_value=2**32 - 1))
    # At least two cells a parent: a parent left with no child at all is not
    # checked unless ``expect_all_parents`` (the data may be a subset).
    groups = draw(st.integers(min_value=1, max_value=min(5, count // 2)))
    rng = np.random.default_rng(seed)
    xy = rng.uniform([X0, Y0], [X0 + SIZE, Y0 + SIZE], size=(count, 2))
    frame = shapely.box(X0, Y0, X0 + SIZE, Y0 + SIZE)
    cells = shapely.get_parts(shapely.voronoi_polygons(shapely.multipoints(xy), extend_to=frame))
    cells = shapely.intersection(cells, frame)
    cells = cells[~shapely.is_empty(cells) & (shapely.area(cells) > 1.0)]
    groups = max(1, min(groups, len(cells) // 2))
    # Parents are bands of neighbouring cells (by the x of their centroid).
    order = np.argsort(shapely.get_x(shapely.centroid(cells)), kind="stable")
    band = np.empty(len(cells), dtype=int)
    band[order] = np.arange(len(cells)) * groups // len(cells)
    parent_codes = [f"P{b}" for b in band]
    children = gpd.GeoDataFrame(
        {"code": [f"{p}-{i:02d}" for i, p in enumerate(parent_codes)], "parent_code": parent_codes},
        geometry=list(cells),
        crs=CRS,
    )
    parents = children.dissolve(by="parent_code").reset_index()
    parents = parents[["parent_code", "geometry"]].rename(columns={"parent_code": "code"})
    return children, parents


@PROPERTY
@given(coverages())
def test_voronoi_coverage_in_dissolved_parents_is_clean(
    case: tuple[gpd.GeoDataFrame, gpd.GeoDataFrame],
) -> None:
    children, parents = case
    report = validate_units(children, parents=parents)
    assert report.problems == [], report.problems
    assert validate_units(children).problems == []


@PROPERTY
@given(coverages(), st.data())
def test_removing_a_child_leaves_its_parent_with_a_hole(
    case: tuple[gpd.GeoDataFrame, gpd.GeoDataFrame], data: st.DataObject
) -> None:
    children, parents = case
    row = data.draw(st.integers(min_value=0, max_value=len(children) - 1), label="removed")
    removed = children.iloc[row]
    report = validate_units(children.drop(index=children.index[row]), parents=parents)
    found = [p for p in report.problems if p.rule in ("gap", "parent_not_covered")]
    assert found, report.problems
    assert all(p.codes[0] == removed["parent_code"] for p in found), found
    assert {p.rule for p in report.problems} <= {"gap", "parent_not_covered"}
    total = sum(p.area_m2 or 0.0 for p in found)
    assert abs(total - removed.geometry.area) <= 1e-3 * removed.geometry.area + 1.0


@PROPERTY
@given(coverages(), st.data(), st.floats(min_value=2.0, max_value=8.0))
def test_growing_a_child_overlaps_a_neighbour_or_leaves_the_parent(
    case: tuple[gpd.GeoDataFrame, gpd.GeoDataFrame], data: st.DataObject, metres: float
) -> None:
    children, parents = case
    row = data.draw(st.integers(min_value=0, max_value=len(children) - 1), label="grown")
    code = children["code"].iloc[row]
    grown = children.copy()
    grown.loc[grown.index[row], "geometry"] = children.geometry.iloc[row].buffer(metres)
    report = validate_units(grown, parents=parents)
    found = [
        p for p in report.problems
        if p.rule in ("overlap", "outside_parent") and code in p.codes
    ]
    assert found, report.problems
    assert {p.rule for p in report.problems} <= {"overlap", "outside_parent"}
