"""Coverage rules within one level: overlaps between units, gaps inside the level's extent."""

from __future__ import annotations

from typing import Any

import numpy as np
import shapely
from numpy.typing import NDArray
from shapely.geometry.base import BaseGeometry

from gis.validate._report import Locator, Problem, ValidationReport, add_discrepancy

_INTERIORS_INTERSECT = "2********"
#: Coordinates closer than this (~0.1 mm) are the same point for "unchanged".
SAME_TOLERANCE_DEGREES = 1e-9


def polygonal(geometry: BaseGeometry) -> BaseGeometry:
    """Keep only the polygonal parts of an overlay result (drop shared edges/points)."""
    if geometry.is_empty or geometry.geom_type in ("Polygon", "MultiPolygon"):
        return geometry
    parts = shapely.get_parts(geometry)
    parts = parts[np.isin(shapely.get_type_id(parts), (3, 6))]
    return shapely.union_all(parts) if len(parts) else shapely.Polygon()


def coverage_union(geometries: NDArray[np.object_], *, is_coverage: bool) -> BaseGeometry:
    """Union polygons, with the fast coverage algorithm when they form a valid coverage."""
    if len(geometries) == 0:
        return shapely.Polygon()
    if is_coverage:
        try:
            return shapely.coverage_union_all(geometries)
        except shapely.errors.GEOSException:
            # GEOS' coverage validator passes some inputs its coverage union
            # still calls "incorrectly noded" (edges meeting within a rounding
            # error); the overlay union answers the same question, slower.
            pass
    return shapely.union_all(geometries)


def unmatched_edges(
    geometries: NDArray[np.object_],
) -> tuple[NDArray[np.bool_], NDArray[np.object_]]:
    """Mark polygons with an edge not exactly matched by a neighbour's; return the edges too.

    GEOS' coverage validator does this in one linear pass; an unflagged set
    of polygons is a valid coverage, so only flagged ones need pairwise overlay.
    """
    if len(geometries) == 0:
        return np.zeros(0, dtype=bool), np.zeros(0, dtype=object)
    edges = shapely.coverage_invalid_edges(geometries)
    return ~shapely.is_empty(edges) & ~shapely.is_missing(edges), edges


def report_unnoded(
    codes: list[str],
    edges: NDArray[np.object_],
    flagged_rows: NDArray[np.bool_],
    report: ValidationReport,
    *,
    first_checked: int = 0,
) -> None:
    """Warn about units whose edges do not match the neighbours' vertex for vertex.

    Called after overlaps and gaps: a flagged unit no other discrepancy names
    has edges that meet without ground between them but with vertices only
    one side has (an edge cut by ``difference``/``union``, or vertices a
    hair apart). Harmless for areas, wrong for a coverage; imports node them.
    """
    named = {code for problem in (*report.problems, *report.warnings) for code in problem.codes}
    rows = [i for i in np.flatnonzero(flagged_rows) if i >= first_checked]
    if not rows:
        return
    for row in rows:
        if codes[row] in named or edges[row] is None or edges[row].is_empty:
            continue
        point = shapely.line_interpolate_point(
            shapely.get_geometry(shapely.line_merge(edges[row]), 0), 0.5, normalized=True
        )
        report.warnings.append(
            Problem(
                "unnoded_edge",
                (codes[row],),
                round(point.x, 7) if not point.is_empty else None,
                round(point.y, 7) if not point.is_empty else None,
                0.0,
                f"edges of {codes[row]!r} do not match its neighbours' vertex for vertex "
                "(no ground between them): importing nodes them so shared edges are identical",
            )
        )


def check_overlaps(
    codes: list[str],
    geometries: NDArray[np.object_],
    locator: Locator,
    report: ValidationReport,
    *,
    flagged_rows: NDArray[np.bool_],
    first_checked: int = 0,
) -> None:
    """Report every pair of units whose interiors overlap.

    Only rows from ``first_checked`` on are being checked; rows before it are
    existing neighbours, reported only when they overlap a checked row.
    ``flagged_rows`` comes from :func:`unmatched_edges`: only flagged units
    can overlap anything.
    """
    if not flagged_rows.any() or len(geometries) < 2:
        return
    flagged = np.flatnonzero(flagged_rows)
    flagged = flagged[flagged >= first_checked] if first_checked else flagged
    if len(flagged) == 0:
        return
    tree = shapely.STRtree(geometries)
    query_idx, tree_idx = tree.query(geometries[flagged], predicate="intersects")
    left = flagged[query_idx]
    right = tree_idx
    keep = left != right
    left, right = left[keep], right[keep]
    pairs = np.unique(np.sort(np.column_stack([left, right]), axis=1), axis=0)
    if len(pairs) == 0:
        return
    interior = shapely.relate_pattern(
        geometries[pairs[:, 0]], geometries[pairs[:, 1]], _INTERIORS_INTERSECT
    )
    for a, b in pairs[interior]:
        shared = polygonal(shapely.intersection(geometries[a], geometries[b]))
        first, second = sorted((codes[a], codes[b]))
        add_discrepancy(
            report,
            locator,
            "overlap",
            (first, second),
            shared,
            f"units {first!r} and {second!r} overlap by {locator.area(shared):.1f} m²",
        )


def check_level_gaps(
    codes: list[str],
    geometries: NDArray[np.object_],
    locator: Locator,
    report: ValidationReport,
    *,
    is_coverage: bool,
) -> None:
    """Report holes in the union of a level: ground inside its extent owned by no unit.

    Used when no parent layer is given (e.g. the top level). A hole in the
    union is a gap whether it comes from a missing unit or from a ring inside
    one unit; ground that really belongs to nobody must be a unit of its own.
    """
    union = coverage_union(geometries, is_coverage=is_coverage)
    if union.is_empty:
        return
    tree = shapely.STRtree(geometries)
    for part in shapely.get_parts(union):
        for ring in _holes(part):
            # Units may lie inside the hole as islands: the gap is what they leave.
            nearby = tree.query(shapely.Polygon(ring), predicate="intersects")
            around = sorted(codes[i] for i in nearby)
            hole = polygonal(
                shapely.difference(shapely.Polygon(ring), shapely.union_all(geometries[nearby]))
            )
            add_discrepancy(
                report,
                locator,
                "gap",
                around,
                hole,
                f"gap of {locator.area(hole):.1f} m² not covered by any unit, between "
                f"{', '.join(repr(c) for c in around[:6])}",
            )


def _holes(polygon: BaseGeometry) -> list[BaseGeometry]:
    count = shapely.get_num_interior_rings(polygon)
    return [shapely.get_interior_ring(polygon, i) for i in range(int(count))]


def same_shape(a: np.ndarray, b: np.ndarray, *, within: float = 0.0) -> np.ndarray:
    """Whether boundaries are the same, up to vertex order, collinear vertices and ``within``.

    A stored unit was noded (vertices added on straight edges where a
    neighbour's corner meets them, vertices closer than the snapping
    distance merged) and written with 15 significant digits by exports; the
    file a planner sends back lacks the one and differs in the last digits
    by the other, yet nothing moved. ``within`` (degrees) is the snapping
    distance: no vertex of one is further than that from the other.

    Examples
    --------
    >>> from shapely import Polygon, box
    >>> noded = Polygon([(0, 0), (1, 0), (1, 0.5), (1, 1), (0, 1)])
    >>> same_shape(np.array([noded]), np.array([box(0, 0, 1, 1 + 1e-13)])).tolist()
    [True]
    >>> same_shape(np.array([noded]), np.array([box(0, 0, 1, 1.001)])).tolist()
    [False]
    """

    def canonical(geometries: np.ndarray) -> np.ndarray:
        multi = np.array([_multi(g) for g in geometries], dtype=object)
        return shapely.normalize(shapely.simplify(multi, SAME_TOLERANCE_DEGREES / 10))

    same = np.asarray(
        shapely.equals_exact(canonical(a), canonical(b), tolerance=SAME_TOLERANCE_DEGREES),
        dtype=bool,
    )
    if within > 0 and not same.all():
        rest = ~same
        same[rest] = shapely.hausdorff_distance(a[rest], b[rest]) <= within
    return same


def _multi(geometry: Any) -> Any:
    if geometry is not None and geometry.geom_type == "Polygon":
        return shapely.MultiPolygon([geometry])
    return geometry
