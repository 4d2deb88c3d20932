"""Validate grid layers as nested coverages, reporting every problem and repairing nothing.

The rules (each a ``rule`` name in the report):

- ``crs_missing`` - the data does not say its CRS;
- ``wrong_geometry_type`` - a feature that is not a Polygon/MultiPolygon;
- ``invalid_geometry`` - empty, missing or GEOS-invalid (with GEOS' reason);
- ``missing_code``, ``duplicate_code``;
- ``overlap`` - two units of the level share area;
- ``gap`` - ground enclosed by units of the level (or of one parent) that no
  unit covers;
- ``unknown_parent`` - a parent code that does not exist;
- ``code_not_under_parent`` - a code that does not extend its parent's code;
- ``outside_parent`` - a unit (partly) outside its parent;
- ``parent_not_covered`` - part of a parent, along its edge, not covered by
  its children;
- ``crs_mismatch`` - coordinates that cannot be in the CRS the data names
  (metres labelled degrees, degrees labelled metres, far from the layer);
- ``datum_offset`` - the whole level is offset from its parents by the
  GCJ-02 or BD-09 shift of the place (drawn on an Amap or Baidu basemap and
  stored as CGCS2000), with the measured offset;
- ``children_not_nested`` (imports) - units of the level below that a new
  edge would cut, or parents their children would no longer cover.

Edges that meet without ground between them but do not share every vertex
are a warning (``unnoded_edge``): imports node them.

Discrepancies below :class:`Tolerances` are reported as warnings. Areas are in
m², computed in a local projected CRS; locations are CGCS2000 lon/lat.

Examples
--------
>>> import geopandas as gpd
>>> from shapely import box
>>> units = gpd.GeoDataFrame(  # CGCS2000 Gauss-Kruger CM 120E, metres
...     {"code": ["a", "b"]},
...     geometry=[box(500_000, 2_750_000, 500_100, 2_750_100),
...               box(500_050, 2_750_000, 500_200, 2_750_100)],
...     crs="EPSG:4549",
... )
>>> report = validate_units(units)
>>> [(p.rule, p.codes, round(p.area_m2)) for p in report.problems]
[('overlap', ('a', 'b'), 5000)]
"""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import shapely
from pyproj import CRS

from gis.crs import STORAGE_CRS, local_projected_crs
from gis.layers import LayerSpec, LevelSpec
from gis.types import Step as Progress
from gis.unitframe import merge_multipart_units
from gis.validate._codes import check_codes, is_missing
from gis.validate._coverage import (
    check_level_gaps,
    check_overlaps,
    report_unnoded,
    unmatched_edges,
)
from gis.validate._datum import (
    DatumOffset,
    convert_from_datum,
    convert_to_datum,
    detect_datum_offset,
)
from gis.validate._geometry import check_geometries
from gis.validate._nesting import Parents, check_nesting, match_parents
from gis.validate._report import (
    RULES,
    Locator,
    Problem,
    Tolerances,
    ValidationReport,
    flush_slivers,
)

__all__ = [
    "RULES",
    "DatumOffset",
    "Problem",
    "Tolerances",
    "ValidationReport",
    "convert_from_datum",
    "convert_to_datum",
    "detect_datum_offset",
    "validate_units",
]


def validate_units(
    units: gpd.GeoDataFrame,
    *,
    parents: gpd.GeoDataFrame | None = None,
    layer: LayerSpec | None = None,
    level: str | LevelSpec | None = None,
    neighbours: gpd.GeoDataFrame | None = None,
    tolerances: Tolerances | None = None,
    expect_all_parents: bool = False,
    progress: Progress | None = None,
    noded: bool = False,
) -> ValidationReport:
    """Validate one level of a layer, optionally against its parent level.

    Parameters
    ----------
    units : GeoDataFrame
        The level's units, with a ``code`` column, optionally ``parent_code``,
        and a CRS. Without a CRS the report has a single ``crs_missing``
        problem.
    parents : GeoDataFrame, optional
        The parent level (``code`` + geometry, any CRS). Features sharing a
        code are one multi-part parent. When given, gaps are looked for
        inside each parent; otherwise inside the extent of the level.
    layer, level : optional
        Give the code rules (lengths, digits, prefix) to check.
    neighbours : GeoDataFrame, optional
        Stored units of the same level that stay: overlaps with them count.
    tolerances : Tolerances, optional
        Sliver thresholds; see :class:`Tolerances`.
    expect_all_parents : bool, default False
        Warn about parents that have no children in ``units``.
    progress : callable, optional
        Called with the name of each step (for progress bars).
    noded : bool, default False
        The caller has just noded ``units`` together with ``neighbours``
        (:func:`gis.coverage.node_level`): they form a valid coverage, so the
        level-wide edge matching pass is skipped.

    Returns
    -------
    ValidationReport
        Problems and warnings, sorted by rule and codes.
    """
    tolerances = tolerances or Tolerances()
    step = progress or (lambda _name: None)
    level_spec = _level_spec(layer, level)
    report = ValidationReport(unit_count=len(units))
    if units.crs is None:
        report.problems.append(
            Problem(
                "crs_missing",
                (),
                None,
                None,
                None,
                "the data has no CRS: declare it (e.g. --crs EPSG:4490 or --crs gcj02)",
            )
        )
        return report
    if parents is not None and parents.crs is None:
        report.problems.append(
            Problem("crs_missing", (), None, None, None, "the parent data has no CRS")
        )
        return report

    step("geometry")
    storage, joins = merge_multipart_units(_in_storage_crs(units))
    report.unit_count = len(storage)
    for join in joins:
        lon, lat = _lonlat(storage.geometry[storage["code"] == join.code].iloc[0])
        report.warnings.append(
            Problem(
                "multi_part_unit",
                (join.code,),
                lon,
                lat,
                None,
                f"{join.parts} features with code {join.code!r} and equal properties "
                "are disjoint parts of one unit: joined into one MultiPolygon",
            )
        )
    raw_codes = storage["code"].tolist() if "code" in storage else [None] * len(storage)
    missing = np.array([is_missing(c) for c in raw_codes], dtype=bool)
    # A unit without a code is named after its row label: after multi-part
    # joins the position no longer is the feature's number in the file.
    codes = [
        f"#{label}" if missing[i] else str(raw_codes[i]) for i, label in enumerate(storage.index)
    ]
    storage_geoms = np.asarray(storage.geometry.values, dtype=object)
    projected_crs = _projected_crs_for(storage)
    locator = Locator(projected_crs, tolerances)
    usable = check_geometries(codes, storage_geoms, storage_geoms, locator, report)

    step("codes")
    check_codes(
        [None if missing[i] else codes[i] for i in range(len(codes))],
        lambda i: _lonlat(storage_geoms[i]),
        report,
        names=codes,
        layer=layer,
        level=level_spec,
    )

    step("overlaps")
    checked = storage_geoms[usable]
    checked_codes = [codes[i] for i in np.flatnonzero(usable)]
    first_checked = 0
    if neighbours is not None and len(neighbours):
        others = np.asarray(_in_storage_crs(neighbours).geometry.values, dtype=object)
        checked = np.concatenate([others, checked])
        checked_codes = [str(c) for c in neighbours["code"]] + checked_codes
        first_checked = len(others)
    if noded:
        flagged, edges = np.zeros(len(checked), dtype=bool), np.zeros(0, dtype=object)
    else:
        flagged, edges = unmatched_edges(checked)
    is_coverage = not flagged.any()
    check_overlaps(
        checked_codes,
        checked,
        locator,
        report,
        flagged_rows=flagged,
        first_checked=first_checked,
    )

    if parents is None:
        step("gaps")
        check_level_gaps(checked_codes, checked, locator, report, is_coverage=is_coverage)
    else:
        step("nesting")
        parent_set = _parents(parents)
        _check_datum(checked, parent_set.geometries, report)
        refs = None
        if "parent_code" in storage:
            refs = [None if is_missing(r) else str(r) for r in storage["parent_code"]]
        parent_of = match_parents(
            codes,
            refs,
            storage_geoms,
            usable,
            parent_set,
            locator,
            report,
            layer=layer,
            level=level_spec,
            missing=missing,
        )
        flagged_units = np.zeros(len(storage_geoms), dtype=bool)
        flagged_units[np.flatnonzero(usable)] = flagged[first_checked:]
        check_nesting(
            codes,
            storage_geoms,
            usable,
            parent_of,
            parent_set,
            locator,
            report,
            flagged=flagged_units,
            expect_all_parents=expect_all_parents,
        )
    flush_slivers(report, locator)
    if not is_coverage:
        report_unnoded(checked_codes, edges, flagged, report, first_checked=first_checked)
    report.problems.sort(key=_order)
    report.warnings.sort(key=_order)
    return report


def _check_datum(units: np.ndarray, parents: np.ndarray, report: ValidationReport) -> None:
    found = detect_datum_offset(parents, units)
    if found is None:
        return
    report.problems.append(
        Problem(
            "datum_offset",
            (),
            round(found.lon, 7),
            round(found.lat, 7),
            None,
            found.message("the units", "their parents"),
        )
    )


def _order(problem: Problem) -> tuple[int, tuple[str, ...]]:
    rank = RULES.index(problem.rule) if problem.rule in RULES else len(RULES)
    return rank, problem.codes


def _level_spec(layer: LayerSpec | None, level: str | LevelSpec | None) -> LevelSpec | None:
    if isinstance(level, LevelSpec) or level is None:
        return level
    if layer is not None:
        try:
            return layer.level(level)
        except KeyError:
            return LevelSpec(level)
    return LevelSpec(level)


def _projected_crs_for(frame: gpd.GeoDataFrame) -> CRS:
    bounds = frame.geometry.total_bounds
    if not np.all(np.isfinite(bounds)):
        return local_projected_crs(0.0, 0.0)
    return local_projected_crs((bounds[0] + bounds[2]) / 2, (bounds[1] + bounds[3]) / 2)


def _in_storage_crs(frame: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    """Return ``frame`` in EPSG:4490 (itself when it already is: only read from here)."""
    # An edit's preview validates frames already in EPSG:4490 several times:
    # ``to_crs`` would copy each frame and run a no-op transformation.
    if frame.crs == STORAGE_CRS:
        return frame
    return frame.to_crs(STORAGE_CRS)


def _parents(parents: gpd.GeoDataFrame) -> Parents:
    frame = _in_storage_crs(parents)
    present = np.asarray(frame.geometry.values, dtype=object)
    present = ~(shapely.is_missing(present) | shapely.is_empty(present))
    if not present.all():  # a boolean selection builds a frame: only when one is left out
        frame = frame[present]
    codes = frame["code"].astype(str).tolist()
    geometries = np.asarray(frame.geometry.values, dtype=object)
    geometries = shapely.make_valid(geometries)
    merged: dict[str, list[object]] = {}
    for code, geometry in zip(codes, geometries, strict=True):
        merged.setdefault(code, []).append(geometry)
    unique = list(merged)
    combined = np.array(
        [parts[0] if len(parts) == 1 else shapely.union_all(parts) for parts in merged.values()],
        dtype=object,
    )
    return Parents(codes=unique, geometries=combined)


def _lonlat(geometry: object) -> tuple[float | None, float | None]:
    if not isinstance(geometry, shapely.Geometry) or geometry.is_empty:
        return None, None
    try:
        point = shapely.point_on_surface(geometry)
    except shapely.errors.GEOSException:
        point = shapely.centroid(geometry)
    return round(point.x, 7), round(point.y, 7)
