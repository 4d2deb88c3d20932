"""Children follow their parents' new edges: check, or cascade a parent change downwards.

A change to a level moves ground between its units; the level below was
drawn inside the old units. :func:`cascade_children` cuts each child of a
changed parent along the new edge: the part that stays keeps the child's
code, the part that moves goes to the receiving parent, either as a new
child with the next free code (``mode="new"``) or merged into the
receiving parent's child that shares the longest border with it
(``mode="merge"``). Slivers (under the tolerances) are always merged: they
are digitising noise, not ground a planner meant to move. Parents are never
changed here. Without a mode, the same walk only reports
``children_not_nested`` problems.

::

    before:  parent P | parent Q          after: P gives the strip s to Q
    +----+----+-------+-------+           +----+--+----+------+-------+
    | p1 | p2 |  q1   |  q2   |           | p1 |p2| s  |  q1  |  q2   |
    +----+----+-------+-------+           +----+--+----+------+-------+
                                          mode new: s = new child of Q
                                          mode merge: s joins q1
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from pandas.api.extensions import ExtensionDtype
from pyproj import CRS
from shapely.geometry.base import BaseGeometry

from gis.crs import STORAGE_CRS
from gis.validate import Problem, Tolerances
from gis.validate._report import Locator

__all__ = ["CascadeMode", "CascadeResult", "cascade_children", "next_code"]

CascadeMode = Literal["new", "merge"]
_POLYGONAL = (3, 6)


@dataclass
class CascadeResult:
    """The child level after a parent change, and what happened to it.

    Attributes
    ----------
    children : GeoDataFrame
        The whole child level as it stands after the change (EPSG:4490).
    created, changed, retired : list of str
        Child codes made, re-shaped (or re-parented) and ended.
    moved : dict
        ``code -> [(from_child, to_parent, area_m2), ...]``: where each moved
        piece came from, for the report.
    problems : list of Problem
        ``children_not_nested`` (no mode given) or ``parent_not_covered``
        (ground a parent gained that no old child held).
    """

    children: gpd.GeoDataFrame
    created: list[str] = field(default_factory=list)
    changed: list[str] = field(default_factory=list)
    retired: list[str] = field(default_factory=list)
    moved: dict[str, list[tuple[str, str, float]]] = field(default_factory=dict)
    problems: list[Problem] = field(default_factory=list)

    @property
    def touched(self) -> bool:
        """Whether the child level changes at all."""
        return bool(self.created or self.changed or self.retired)


def cascade_children(
    children: gpd.GeoDataFrame,
    *,
    parents_before: gpd.GeoDataFrame,
    parents_after: gpd.GeoDataFrame,
    mode: CascadeMode | None,
    level_name: str = "unit",
    taken_codes: Collection[str] = (),
    tolerances: Tolerances | None = None,
    projected: CRS | None = None,
) -> CascadeResult:
    """Make ``children`` nest in ``parents_after`` (or report where they do not).

    Parameters
    ----------
    children : GeoDataFrame
        The child level valid before the change: ``code``, ``name``,
        ``parent_code``, ``kind``, ``attributes`` and geometry, EPSG:4490.
    parents_before, parents_after : GeoDataFrame
        The whole parent level before and after the change (``code``,
        ``name``, geometry).
    mode : {"new", "merge"} or None
        How moved pieces join the receiving parent; ``None`` only checks.
    level_name : str
        The child level's name, for messages.
    taken_codes : collection of str
        Every code the child level ever used (retired ones too): new codes
        never reuse one.
    tolerances : Tolerances, optional
        Pieces under them are slivers (merged, never new units).
    projected : CRS, optional
        Metric CRS for areas and border lengths.

    Examples
    --------
    Parent ``P`` gives its east strip to ``Q``; child ``P01`` is cut::

        0        1.5   2        3        4
        +--------+-----+--------+--------+
        |  P01   |  s  |  Q01   |  Q02   |
        +--------+-----+--------+--------+

    >>> from shapely import box
    >>> def level(rows):
    ...     return gpd.GeoDataFrame(
    ...         {"code": [r[0] for r in rows], "name": [r[0] for r in rows],
    ...          "parent_code": [r[1] for r in rows], "kind": "comprehensive",
    ...          "attributes": [{} for _ in rows]},
    ...         geometry=[box(*r[2]) for r in rows], crs=4490)
    >>> d = 0.001  # degrees
    >>> before = level([("P", None, (0, 0, 2 * d, d)), ("Q", None, (2 * d, 0, 4 * d, d))])
    >>> after = level([("P", None, (0, 0, 1.5 * d, d)), ("Q", None, (1.5 * d, 0, 4 * d, d))])
    >>> kids = level([("P01", "P", (0, 0, 2 * d, d)), ("Q01", "Q", (2 * d, 0, 3 * d, d)),
    ...               ("Q02", "Q", (3 * d, 0, 4 * d, d))])
    >>> checked = cascade_children(kids, parents_before=before, parents_after=after, mode=None)
    >>> [(p.rule, p.codes) for p in checked.problems]  # P01 sticks out; Q is not covered
    [('children_not_nested', ('P01', 'P', 'Q')), ('children_not_nested', ('Q',))]
    >>> new = cascade_children(kids, parents_before=before, parents_after=after, mode="new")
    >>> new.created, new.changed
    (['Q03'], ['P01'])
    >>> merged = cascade_children(kids, parents_before=before, parents_after=after, mode="merge")
    >>> merged.created, sorted(merged.changed)
    ([], ['P01', 'Q01'])
    """
    tolerances = tolerances or Tolerances()
    locator = Locator(projected or _local(parents_after), tolerances)
    result = CascadeResult(children=children)
    old = _by_code(parents_before)
    new = _by_code(parents_after)
    changed_parents = {
        code
        for code in set(old) | set(new)
        if code not in old or code not in new or not old[code].equals_exact(new[code], 0.0)
    }
    if not changed_parents:
        return result
    new_codes = list(new)
    new_geometries = np.array([new[c] for c in new_codes], dtype=object)
    tree = shapely.STRtree(new_geometries)

    # Column by column, as ``to_dict("records")`` gives the values (Python
    # scalars, missing text as NaN, ``pd.NA`` as None): without the frame it
    # drops and re-reads.
    names = [c for c in children.columns if c != children.geometry.name]
    values = [_plain(children[c]) for c in names]
    rows: dict[str, dict[str, Any]] = {
        str(r["code"]): {**r, "geometry": g}
        for r, g in zip(
            (dict(zip(names, row, strict=True)) for row in zip(*values, strict=True)),
            children.geometry.values,
            strict=True,
        )
    }
    pieces: list[tuple[str, str, BaseGeometry, bool]] = []  # child, to parent, ground, sliver
    for code, row in list(rows.items()):
        parent = str(row["parent_code"]) if row["parent_code"] is not None else None
        if parent not in changed_parents:
            continue
        geometry = row["geometry"]
        home = new.get(parent) if parent is not None else None
        inside = _polygonal(shapely.intersection(geometry, home)) if home else shapely.Polygon()
        outside = _polygonal(shapely.difference(geometry, home)) if home else geometry
        if outside.is_empty:
            continue
        for index in tree.query(outside, predicate="intersects"):
            piece = _polygonal(shapely.intersection(outside, new_geometries[index]))
            if piece.is_empty:
                continue
            sliver = locator.is_sliver(piece)
            pieces.append((code, new_codes[index], piece, sliver))
            if mode is None and not sliver:
                area = locator.area(piece)
                result.problems.append(
                    locator.problem(
                        "children_not_nested",
                        (code, parent or "", new_codes[index]),
                        piece,
                        f"{level_name} {code!r} would lie partly ({area:,.0f} m²) outside its "
                        f"parent {parent!r}, in {new_codes[index]!r}: use --cascade new "
                        "(the part becomes a new unit there) or --cascade merge (it joins "
                        "the neighbouring unit there)",
                    )
                )
        if mode is None:
            continue
        # The child keeps the ground that stays; if none does, it ends.
        if inside.is_empty or locator.is_sliver(inside):
            del rows[code]
            result.retired.append(code)
            if not inside.is_empty:
                pieces.append((code, parent or "", inside, True))
        else:
            row["geometry"] = inside
            result.changed.append(code)
    if mode is None:
        _report_uncovered(
            result, rows, new, changed_parents, locator, level_name, "children_not_nested"
        )
        return result

    taken = set(map(str, taken_codes)) | set(rows) | set(result.retired)
    # Real pieces first (they may create units slivers then join), largest first.
    pieces.sort(key=lambda p: (p[3], -locator.area(p[2])))
    for source, target, piece, sliver in pieces:
        source_row = rows.get(source) or {
            "name": source,
            "kind": "comprehensive",
            "attributes": {},
        }
        neighbour = _longest_border(piece, target, rows, locator)
        if (mode == "merge" or sliver) and neighbour is not None:
            rows[neighbour]["geometry"] = _polygonal(
                shapely.union(rows[neighbour]["geometry"], piece)
            )
            if neighbour not in result.created and neighbour not in result.changed:
                result.changed.append(neighbour)
            result.moved.setdefault(neighbour, []).append((source, target, locator.area(piece)))
            continue
        code = next_code(target, taken, siblings=[c for c in rows if _parent(rows[c]) == target])
        taken.add(code)
        rows[code] = {
            "code": code,
            "name": _piece_name(source_row.get("name"), source),
            "parent_code": target,
            "kind": source_row.get("kind") or "comprehensive",
            "attributes": {"split_from": source},
            "geometry": piece,
        }
        result.created.append(code)
        result.moved.setdefault(code, []).append((source, target, locator.area(piece)))
    _report_uncovered(result, rows, new, changed_parents, locator, level_name, "parent_not_covered")
    result.changed = [c for c in result.changed if c in rows and c not in result.created]
    columns = [c for c in children.columns if c != children.geometry.name]
    result.children = gpd.GeoDataFrame(
        {column: [row.get(column) for row in rows.values()] for column in columns},
        geometry=[row["geometry"] for row in rows.values()],
        crs=STORAGE_CRS,
    )
    return result


def next_code(parent: str, taken: Collection[str], *, siblings: Collection[str] = ()) -> str:
    """Return the next free child code under ``parent`` (never one used before).

    The suffix length follows the siblings (3 digits when there are none).

    Examples
    --------
    >>> next_code("350502004011", {"350502004011001", "350502004011002"})
    '350502004011003'
    >>> next_code("350502004011003", set())
    '350502004011003001'
    """
    # ``taken`` is every code the level ever used (thousands): the codes
    # under ``parent`` are picked in one pass, then looked at.
    mine = [s for s in taken if s.startswith(parent)]
    lengths = Counter(
        len(s) - len(parent)
        for s in [*(s for s in siblings if s.startswith(parent)), *mine]
        if s[len(parent) :].isdigit() and len(s) > len(parent)
    )
    width = lengths.most_common(1)[0][0] if lengths else 3
    used = [
        int(s[len(parent) :])
        for s in mine
        if len(s) == len(parent) + width and s[len(parent) :].isdigit()
    ]
    number = max(used, default=0) + 1
    if len(str(number)) > width:
        raise ValueError(f"no free {width}-digit code left under {parent!r}")
    return f"{parent}{number:0{width}d}"


def _piece_name(name: object, source: str) -> str:
    return f"{name or source}（调整部分）"


def _report_uncovered(
    result: CascadeResult,
    rows: Mapping[str, dict[str, Any]],
    new: Mapping[str, BaseGeometry],
    changed_parents: set[str],
    locator: Locator,
    level_name: str,
    rule: str,
) -> None:
    # Ground a changed parent holds that none of its (future) children covers:
    # it was no child's ground before, so nothing can follow into it.
    by_parent: dict[str, list[BaseGeometry]] = {}
    for row in rows.values():
        by_parent.setdefault(_parent(row) or "", []).append(row["geometry"])
    for code in sorted(changed_parents & set(new)):
        covered = by_parent.get(code)
        union = shapely.union_all(covered) if covered else shapely.Polygon()
        bare = _polygonal(shapely.difference(new[code], union))
        if bare.is_empty or locator.is_sliver(bare):
            continue
        area = locator.area(bare)
        result.problems.append(
            locator.problem(
                rule,
                (code,),
                bare,
                f"{area:,.0f} m² of {code!r} would be covered by none of its {level_name} "
                "units: draw or import them too",
            )
        )


def _longest_border(
    piece: BaseGeometry, parent: str, rows: Mapping[str, dict[str, Any]], locator: Locator
) -> str | None:
    best, best_length = None, 0.0
    outline = piece.boundary
    for code, row in rows.items():
        if _parent(row) != parent:
            continue
        shared = shapely.intersection(outline, row["geometry"].boundary)
        if shared.is_empty:
            continue
        length = float(shapely.length(locator.project(shared)))
        if length > best_length:
            best, best_length = code, length
    return best


def _plain(column: pd.Series) -> np.ndarray:
    """Return a column's values as ``DataFrame.to_dict("records")`` gives them."""
    values = column.to_numpy(dtype=object)
    if isinstance(column.dtype, ExtensionDtype):
        missing = np.array([v is pd.NA for v in values], dtype=bool)
        if missing.any():
            values = values.copy()
            values[missing] = None
    return values


def _parent(row: Mapping[str, Any]) -> str | None:
    value = row.get("parent_code")
    return None if value is None else str(value)


def _by_code(frame: gpd.GeoDataFrame) -> dict[str, BaseGeometry]:
    return dict(zip(frame["code"].astype(str), frame.geometry.values, strict=True))


def _polygonal(geometry: BaseGeometry) -> BaseGeometry:
    if geometry is None or geometry.is_empty:
        return shapely.Polygon()
    if geometry.geom_type in ("Polygon", "MultiPolygon"):
        return geometry
    parts = shapely.get_parts(geometry)
    parts = parts[np.isin(shapely.get_type_id(parts), _POLYGONAL)]
    return shapely.union_all(parts) if len(parts) else shapely.Polygon()


def _local(frame: gpd.GeoDataFrame) -> CRS:
    from gis.crs import local_projected_crs

    minx, miny, maxx, maxy = frame.geometry.total_bounds
    return local_projected_crs((minx + maxx) / 2, (miny + maxy) / 2)
