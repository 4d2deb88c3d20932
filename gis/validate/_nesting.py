"""Nesting rules: each child inside its parent, each parent exactly covered by its children.

Parent matching, in this order (the first that applies wins):

1. the child's ``parent_code`` equals a parent's code;
2. it equals one after leading zeros are ignored (``"01"`` and ``"1"``) -
   accepted with a warning, because files from different departments often
   disagree on zero padding;
3. without a ``parent_code``: the longest parent code the child's code starts with;
4. without either: the parent it overlaps most.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

import numpy as np
import shapely
from numpy.typing import NDArray

from gis.layers import LayerSpec, LevelSpec
from gis.validate._codes import code_under_parent, is_missing
from gis.validate._coverage import _holes, coverage_union, polygonal, same_shape
from gis.validate._report import Locator, Problem, ValidationReport, add_discrepancy


@dataclass(frozen=True)
class Parents:
    """The parent units, one row per code (multi-feature codes already merged)."""

    codes: list[str]
    geometries: NDArray[np.object_]  # EPSG:4490

    def index(self) -> dict[str, int]:
        """Map each code to its row."""
        return {code: i for i, code in enumerate(self.codes)}


def match_parents(
    codes: list[str],
    parent_refs: list[str | None] | None,
    geometries: NDArray[np.object_],
    usable: NDArray[np.bool_],
    parents: Parents,
    locator: Locator,
    report: ValidationReport,
    *,
    layer: LayerSpec | None,
    level: LevelSpec | None,
    missing: NDArray[np.bool_] | None = None,
) -> NDArray[np.int64]:
    """Return, for each child, the row of its parent in ``parents`` (-1 if none).

    ``missing`` marks children without a code (already ``missing_code``): they
    are matched by ``parent_code`` or by place, and have no code to check.
    A child naming an unknown parent is still counted, for coverage, in the
    parent it overlaps most, so its ground is not reported a second time as
    uncovered.
    """
    by_code = parents.index()
    by_stripped = {code.lstrip("0"): i for i, code in enumerate(parents.codes)}
    result = np.full(len(codes), -1, dtype=np.int64)
    tree = shapely.STRtree(parents.geometries)
    padded: list[tuple[str, str]] = []
    for i, code in enumerate(codes):
        ref = parent_refs[i] if parent_refs is not None else None
        if parent_refs is not None and not is_missing(ref):
            assert ref is not None
            effective = ref
            if ref in by_code:
                result[i] = by_code[ref]
            elif ref.lstrip("0") in by_stripped:
                result[i] = by_stripped[ref.lstrip("0")]
                padded.append((ref, parents.codes[result[i]]))
            else:
                report.problems.append(
                    _at(
                        locator,
                        geometries[i],
                        "unknown_parent",
                        (code, ref),
                        f"unit {code!r} names parent {ref!r}, which does not exist",
                    )
                )
                if usable[i]:
                    result[i] = _most_overlapped(tree, parents, geometries[i], strict=True)
                continue
        else:
            has_code = missing is None or not missing[i]
            prefixed = [
                p for p in parents.codes if has_code and code.startswith(p) and len(code) > len(p)
            ]
            if prefixed:
                effective = max(prefixed, key=len)
                result[i] = by_code[effective]
            elif usable[i]:
                result[i] = _most_overlapped(tree, parents, geometries[i], strict=False)
                if result[i] < 0:
                    continue  # reported as outside_parent by check_nesting
                effective = parents.codes[result[i]]
            else:
                continue
        if missing is not None and missing[i]:
            continue  # no code to compare (reported as missing_code)
        reason = code_under_parent(code, effective, layer=layer, level=level)
        if reason:
            report.problems.append(
                _at(locator, geometries[i], "code_not_under_parent", (code, effective), reason)
            )
    if padded:
        pairs = sorted(set(padded))
        examples = ", ".join(f"{a!r}→{b!r}" for a, b in pairs[:5])
        report.warnings.append(
            Problem(
                "parent_code_padding",
                tuple(sorted({b for _, b in pairs})),
                None,
                None,
                None,
                f"{len(padded)} parent codes matched only when leading zeros are ignored "
                f"({examples}); make the codes agree",
            )
        )
    return result


def _most_overlapped(
    tree: shapely.STRtree, parents: Parents, geometry: object, *, strict: bool
) -> int:
    """Return the parent sharing most area with ``geometry`` (-1 if none intersects).

    With ``strict`` a parent it only touches does not count.
    """
    candidates = tree.query(geometry, predicate="intersects")
    if len(candidates) == 0:
        return -1
    areas = shapely.area(shapely.intersection(geometry, parents.geometries[candidates]))
    best = int(np.argmax(areas))
    if strict and areas[best] <= 0:
        return -1
    return int(candidates[best])


def check_nesting(
    codes: list[str],
    geometries: NDArray[np.object_],
    usable: NDArray[np.bool_],
    parent_of: NDArray[np.int64],
    parents: Parents,
    locator: Locator,
    report: ValidationReport,
    *,
    flagged: NDArray[np.bool_],
    expect_all_parents: bool,
) -> None:
    """Report children outside their parent and parents not exactly covered.

    ``flagged`` marks units with edges that do not match their neighbours';
    a parent whose children are all unflagged can use the fast coverage union.
    """
    children: dict[int, list[int]] = defaultdict(list)
    orphans = {p.codes[0] for p in report.problems if p.rule == "unknown_parent" and p.codes}
    for i in np.flatnonzero(usable):
        if parent_of[i] >= 0:
            children[int(parent_of[i])].append(int(i))
        elif codes[i] not in orphans:
            report.problems.append(
                locator.problem(
                    "outside_parent",
                    (codes[i],),
                    geometries[i],
                    f"unit {codes[i]!r} lies outside every parent unit",
                )
            )
    for p, parent_code in enumerate(parents.codes):
        rows = children.get(p, [])
        parent_geometry = parents.geometries[p]
        if not rows:
            if expect_all_parents:
                report.warnings.append(
                    locator.problem(
                        "no_children",
                        (parent_code,),
                        parent_geometry,
                        f"parent {parent_code!r} has no children in this data",
                    )
                )
            continue
        child_geometries = geometries[rows]
        union = coverage_union(child_geometries, is_coverage=not flagged[rows].any())
        if shapely.equals_exact(union, parent_geometry, tolerance=0.0):
            continue  # the parent was built from these children: nothing to compare
        if same_shape(np.array([union]), np.array([parent_geometry]))[0]:
            continue  # the same outline up to vertices on straight edges (noding)
        if shapely.is_empty(shapely.symmetric_difference(union, parent_geometry)):
            continue
        args = (codes, rows, child_geometries, union, parent_code, parent_geometry, locator, report)
        _outside(*args)
        _uncovered(*args)


def _outside(codes, rows, child_geometries, union, parent_code, parent_geometry, locator, report):
    outside = polygonal(shapely.difference(union, parent_geometry))
    if outside.is_empty:
        return
    # Attribute the outside area to the children it comes from.
    for row, geometry in zip(rows, child_geometries, strict=True):
        if not shapely.intersects(geometry, outside):
            continue
        part = polygonal(shapely.intersection(geometry, outside))
        add_discrepancy(
            report,
            locator,
            "outside_parent",
            (codes[row], parent_code),
            part,
            f"unit {codes[row]!r} extends {locator.area(part):.1f} m² outside its parent "
            f"{parent_code!r}",
        )


def _uncovered(codes, rows, child_geometries, union, parent_code, parent_geometry, locator, report):
    missing = polygonal(shapely.difference(parent_geometry, union))
    if missing.is_empty:
        return
    holes = [shapely.Polygon(ring) for part in shapely.get_parts(union) for ring in _holes(part)]
    hole_tree = shapely.STRtree(holes) if holes else None
    tree = shapely.STRtree(child_geometries)
    for part in shapely.get_parts(missing):
        # A sliver is still a gap when the children enclose it (same rule as
        # without parents); slivers are grouped per parent either way.
        probe = shapely.point_on_surface(part)
        enclosed = hole_tree is not None and len(hole_tree.query(probe, predicate="within")) > 0
        if locator.is_sliver(part):
            rule = "gap" if enclosed else "parent_not_covered"
            add_discrepancy(report, locator, rule, (parent_code,), part, "")
            continue
        if enclosed:
            around = sorted(codes[rows[i]] for i in tree.query(part, predicate="intersects"))
            add_discrepancy(
                report,
                locator,
                "gap",
                (parent_code, *around),
                part,
                f"gap of {locator.area(part):.1f} m² inside parent {parent_code!r} between its "
                f"children {', '.join(repr(c) for c in around[:6])}",
                sliver_key=(parent_code,),
            )
        else:
            add_discrepancy(
                report,
                locator,
                "parent_not_covered",
                (parent_code,),
                part,
                f"{locator.area(part):.1f} m² of parent {parent_code!r} is not covered by any "
                "of its children",
            )


def _at(
    locator: Locator, geometry: object, rule: str, codes: tuple[str, ...], message: str
) -> Problem:
    if geometry is None or not isinstance(geometry, shapely.Geometry) or geometry.is_empty:
        return Problem(rule, codes, None, None, None, message)
    try:
        return locator.problem(rule, codes, geometry, message, measure=False)
    except shapely.errors.GEOSException:  # invalid geometry: already reported as such
        return Problem(rule, codes, None, None, None, message)
