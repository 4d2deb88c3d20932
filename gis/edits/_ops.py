"""The edit operations: a planner's intent in, a change set (or a refusal) out.

Each operation works on the current units of one level of a layer
(:class:`LayerState`), in EPSG:4490 with areas and distances in the layer's
projected CRS, and returns a :class:`ChangeSet` naming the new geometry of
every affected unit at every level. Nothing is written. The drawn geometry
is snapped first (vertices within ``snap_m`` of a boundary vertex or edge),
then the touched units and the drawing are noded together into faces
(:class:`gis.edits._faces.Faces`) and the faces re-assigned::

    transfer: drawn ground -> the neighbour named     reshape: a new shared edge
    split: one unit -> two or more                    merge: neighbours -> one
    carve: a dedicated unit out of its parent's units  retire: ground -> neighbours

Refusals (:class:`gis.errors.EditRefusedError`, each problem with rule, codes,
lon/lat, message and geometry): ``crosses_parent``, ``cuts_building``,
``not_adjacent``, ``line_not_reaching_boundary``, ``no_change``,
``split_failed``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
import shapely
from shapely.geometry.base import BaseGeometry

from gis.coverage import next_code
from gis.edits._arrays import level_arrays
from gis.edits._build import NewGround, build_changeset, refuse
from gis.edits._faces import Faces, union_faces
from gis.edits._model import GRID_SIZE, ChangeSet, EditOptions, LayerState
from gis.edits._snap import snap_drawing
from gis.errors import InputError, NotFoundError
from gis.validate._report import Locator

__all__ = ["auto_split_children", "carve", "merge", "reshape", "retire", "split", "transfer"]

_METRES_PER_DEGREE = 111_320.0
#: Two outlines this close (about 1 cm, the precision grid) meet.
_NEAR_DEG = 1e-7


def transfer(
    state: LayerState,
    *,
    level: str,
    geometry: BaseGeometry | Mapping[str, Any],
    to: str,
    options: EditOptions | None = None,
) -> ChangeSet:
    """Move the ground a drawn polygon covers to the unit ``to`` (its neighbour).

    The ground of every other unit of ``level`` under the polygon (more than
    a sliver of it) goes to ``to``; a unit left with no ground is retired.

    Parameters
    ----------
    state : LayerState
        The layer as it stands.
    level : str
        The level the edit is made at.
    geometry : Polygon or GeoJSON mapping
        The ground to move, EPSG:4490.
    to : str
        The receiving unit's code; it must border the ground moved.
    options : EditOptions, optional
        Cascade mode, snapping tolerance, ``force``.

    Raises
    ------
    EditRefusedError
        ``not_adjacent`` (``to`` does not border the ground),
        ``crosses_parent``, ``cuts_building``, ``no_change``...
    """
    options = options or EditOptions()
    ctx = _Context(state, level, options)
    receiver = ctx.unit(to)
    drawn = ctx.snap(_polygon(geometry))
    donors = [
        code
        for code in ctx.intersecting(drawn)
        if code != to
        and not ctx.locator.is_sliver(_polygonal(shapely.intersection(ctx.geometry(code), drawn)))
    ]
    if not donors:
        raise refuse(
            [
                ctx.locator.problem(
                    "no_change",
                    (to,),
                    drawn,
                    "the polygon covers no ground of another unit",
                    measure=False,
                )
            ]
        )
    moved = _polygonal(
        shapely.intersection(shapely.union_all([ctx.geometry(c) for c in donors]), drawn)
    )
    if not _borders(moved, receiver, ctx.locator):
        raise refuse(
            [
                ctx.locator.problem(
                    "not_adjacent",
                    (to, *donors),
                    moved,
                    f"the ground drawn does not border {to!r}: it can only go to a neighbour",
                )
            ]
        )
    faces = Faces({c: ctx.geometry(c) for c in [to, *donors]}, [drawn])
    owner = faces.owner.copy()
    owner[faces.within(drawn) & (owner != to)] = to
    ground = ctx.reassign(faces, owner)
    return ctx.finish("transfer", {"geometry": shapely.geometry.mapping(drawn), "to": to}, ground)


def reshape(
    state: LayerState,
    *,
    level: str,
    units: Sequence[str],
    geometry: BaseGeometry | Mapping[str, Any],
    options: EditOptions | None = None,
) -> ChangeSet:
    """Replace the shared edge of two adjacent units by a drawn line.

    The line runs from boundary to boundary of the two units' union; it cuts
    the union into sides, and each side goes to the unit that held most of
    it before (both units change together).

    Raises
    ------
    EditRefusedError
        ``not_adjacent``, ``line_not_reaching_boundary``, ``no_change``,
        ``crosses_parent``, ``cuts_building``...
    """
    options = options or EditOptions()
    ctx = _Context(state, level, options)
    if len(units) != 2 or units[0] == units[1]:
        raise InputError("reshape takes exactly two different units", field="units")
    a, b = (str(u) for u in units)
    ga, gb = ctx.unit(a), ctx.unit(b)
    if not _borders(ga, gb, ctx.locator):
        raise refuse(
            [
                ctx.locator.problem(
                    "not_adjacent",
                    (a, b),
                    shapely.union(ga, gb),
                    f"{a!r} and {b!r} share no edge",
                    measure=False,
                )
            ]
        )
    both = shapely.coverage_union_all(np.array([ga, gb], dtype=object))
    line = ctx.reaching(ctx.snap(_line(geometry)), both, (a, b))
    sides = _sides(both, line)
    if len(sides) < 2:
        raise refuse(
            [
                ctx.locator.problem(
                    "line_not_reaching_boundary",
                    (a, b),
                    line,
                    "the line does not cut the two units into sides",
                    measure=False,
                )
            ]
        )
    faces = Faces({a: ga, b: gb}, [line])
    owner = faces.owner.copy()
    for side in sides:
        mask = faces.within(side)
        share_a = ctx.locator.area(_polygonal(shapely.intersection(side, ga)))
        share_b = ctx.locator.area(_polygonal(shapely.intersection(side, gb)))
        owner[mask] = a if share_a >= share_b else b
    if not ((owner == a).any() and (owner == b).any()):
        raise refuse(
            [
                ctx.locator.problem(
                    "no_change",
                    (a, b),
                    line,
                    "every side of the line would go to one unit",
                    measure=False,
                )
            ]
        )
    ground = ctx.reassign(faces, owner)
    return ctx.finish(
        "reshape", {"units": [a, b], "geometry": shapely.geometry.mapping(line)}, ground
    )


def split(
    state: LayerState,
    *,
    level: str,
    unit: str,
    geometry: BaseGeometry | Mapping[str, Any],
    options: EditOptions | None = None,
) -> ChangeSet:
    """Cut a unit along drawn line(s) into two or more units.

    The largest part keeps the code; the others get the parent's next free
    codes, north to south, west to east (:func:`gis.coverage.next_code`).
    Parts under the sliver tolerances join their largest neighbouring part.

    Raises
    ------
    EditRefusedError
        ``line_not_reaching_boundary`` (a line end inside the unit),
        ``split_failed`` (fewer than two parts), ``cuts_building``...
    """
    options = options or EditOptions()
    ctx = _Context(state, level, options)
    geometry_u = ctx.unit(unit)
    line = ctx.reaching(ctx.snap(_line(geometry)), geometry_u, (unit,))
    faces = Faces({unit: geometry_u}, [line])
    parts = _join_slivers(faces.geometries, ctx.locator)
    if len(parts) < 2:
        raise refuse(
            [
                ctx.locator.problem(
                    "split_failed",
                    (unit,),
                    line,
                    f"the line does not cut {unit!r} into two or more parts",
                    measure=False,
                )
            ]
        )
    areas = [ctx.locator.area(union_faces(faces.geometries[p])) for p in parts]
    keep = int(np.argmax(areas))
    others = [p for i, p in enumerate(parts) if i != keep]
    # New codes run north to south, west to east.
    others.sort(
        key=lambda p: (
            -round(union_faces(faces.geometries[p]).centroid.y, 6),
            union_faces(faces.geometries[p]).centroid.x,
        )
    )
    row = ctx.row(unit)
    parent = _parent_code(row)
    taken = ctx.state.codes_taken(level)
    # A top-level unit's siblings are the other top-level units (no parent).
    # The level's arrays (read once per frame), not a pass of pandas over it.
    stored = level_arrays(ctx.frame)
    siblings = [str(c) for c, p in zip(stored.codes, stored.parents, strict=True) if p == parent]
    owner = faces.owner.copy()
    created: dict[str, dict[str, Any]] = {}
    for number, part in enumerate(others, start=2):
        code = _new_code(parent, unit, taken, siblings)
        taken.add(code)
        siblings.append(code)
        owner[part] = code
        created[code] = {
            "name": f"{row.get('name') or unit}（分{number}）",
            "parent_code": parent,
            "kind": row.get("kind") or "comprehensive",
            "attributes": {"split_from": unit},
        }
    ground = ctx.reassign(faces, owner, created=created)
    return ctx.finish("split", {"unit": unit, "geometry": shapely.geometry.mapping(line)}, ground)


def merge(
    state: LayerState,
    *,
    level: str,
    units: Sequence[str],
    options: EditOptions | None = None,
) -> ChangeSet:
    """Join adjacent units with the same parent into the first one named.

    Raises
    ------
    EditRefusedError
        ``crosses_parent`` (different parents), ``not_adjacent`` (the units
        do not form one connected piece of ground).
    """
    options = options or EditOptions()
    ctx = _Context(state, level, options)
    codes = list(dict.fromkeys(str(u) for u in units))
    if len(codes) < 2:
        raise InputError("merge takes two or more different units", field="units")
    geometries = {c: ctx.unit(c) for c in codes}
    parents = {c: ctx.row(c).get("parent_code") for c in codes}
    if len(set(parents.values())) > 1:
        raise refuse(
            [
                ctx.locator.problem(
                    "crosses_parent",
                    tuple(codes),
                    shapely.union_all(list(geometries.values())),
                    "units with different parents cannot be merged ("
                    + ", ".join(f"{c} in {p}" for c, p in parents.items())
                    + "): change the parents first",
                    measure=False,
                )
            ]
        )
    apart = _components(codes, geometries, ctx.locator)
    if len(apart) > 1:
        raise refuse(
            [
                ctx.locator.problem(
                    "not_adjacent",
                    tuple(sorted(group)),
                    shapely.union_all([geometries[c] for c in group]),
                    "these units share no edge with the others: only adjacent units merge",
                    measure=False,
                )
                for group in apart[1:]
            ]
        )
    merged = shapely.coverage_union_all(np.array(list(geometries.values()), dtype=object))
    ground = NewGround(geometries={codes[0]: merged}, retired=codes[1:])
    return ctx.finish("merge", {"units": codes}, ground)


def carve(
    state: LayerState,
    *,
    level: str,
    geometry: BaseGeometry | Mapping[str, Any] | None = None,
    poi: str | None = None,
    name: str | None = None,
    options: EditOptions | None = None,
) -> ChangeSet:
    """Make a dedicated unit (专属网格) for an institution out of its parent's units.

    The ground is the drawn polygon, or the footprint of the building the
    POI ``poi`` (key or name) is in. It must lie in one parent; the units of
    ``level`` under it give it up, and the new unit (kind ``dedicated``)
    gets the parent's next free code.

    Raises
    ------
    EditRefusedError
        ``crosses_parent``, ``no_footprint`` (a POI in no building),
        ``cuts_building``...
    """
    options = options or EditOptions()
    ctx = _Context(state, level, options)
    parent_level = state.spec.parent_level(level)
    if parent_level is None:
        raise InputError(
            f"carve makes a unit inside a parent; {level!r} is the top level", field="level"
        )
    attributes: dict[str, Any] = {}
    if geometry is None:
        if poi is None:
            raise InputError("carve needs a polygon (geometry) or a POI", field="geometry")
        drawn, found = _poi_footprint(state, poi, ctx.locator)
        attributes["poi"] = found["key"]
        name = name or found.get("name")
    else:
        drawn = ctx.snap(_polygon(geometry))
        if poi is not None:
            attributes["poi"] = poi
    parents = state.frame(parent_level.name)
    shares = [
        (ctx.locator.area(_polygonal(shapely.intersection(g, drawn))), str(c), g)
        for c, g in zip(parents["code"], parents.geometry.values, strict=True)
        if shapely.intersects(g, drawn)
    ]
    shares = [s for s in shares if s[0] > 0]
    if not shares:
        raise refuse(
            [
                ctx.locator.problem(
                    "no_change",
                    (),
                    drawn,
                    "the polygon covers no ground of the layer",
                    measure=False,
                )
            ]
        )
    shares.sort(reverse=True)
    _, parent, parent_geometry = shares[0]
    outside = _polygonal(shapely.difference(drawn, parent_geometry))
    if (
        not outside.is_empty
        and not ctx.locator.is_sliver(outside)
        and any(s[1] != parent for s in shares[1:] if s[0] > options.tolerances.sliver_area_m2)
    ):
        raise refuse(
            [
                ctx.locator.problem(
                    "crosses_parent",
                    (parent, *[s[1] for s in shares[1:]]),
                    outside,
                    f"{ctx.locator.area(outside):,.0f} m² of the polygon lies outside "
                    f"{parent_level.name} {parent!r}: a dedicated unit lies in one parent",
                )
            ]
        )
    drawn = _polygonal(shapely.intersection(drawn, parent_geometry, grid_size=GRID_SIZE))
    donors = [
        c
        for c in ctx.intersecting(drawn)
        if ctx.row(c).get("parent_code") == parent
        and not ctx.locator.is_sliver(_polygonal(shapely.intersection(ctx.geometry(c), drawn)))
    ]
    if not donors:
        raise refuse(
            [
                ctx.locator.problem(
                    "no_change",
                    (parent,),
                    drawn,
                    "the polygon covers no ground of a unit",
                    measure=False,
                )
            ]
        )
    code = _new_code(
        parent,
        None,
        ctx.state.codes_taken(level),
        [str(c) for c in ctx.frame["code"][ctx.frame["parent_code"] == parent]],
    )
    faces = Faces({c: ctx.geometry(c) for c in donors}, [drawn])
    owner = faces.owner.copy()
    owner[faces.within(drawn)] = code
    created = {
        code: {
            "name": name or f"专属网格 {code}",
            "parent_code": parent,
            "kind": "dedicated",
            "attributes": attributes,
        }
    }
    ground = ctx.reassign(faces, owner, created=created)
    params = {"geometry": shapely.geometry.mapping(drawn), "poi": poi, "name": name}
    return ctx.finish("carve", params, ground)


def retire(
    state: LayerState,
    *,
    level: str,
    unit: str,
    to: Sequence[str],
    options: EditOptions | None = None,
) -> ChangeSet:
    """End a unit; its ground goes to the named neighbours.

    With one neighbour it takes everything. With several, each piece of the
    unit goes to the nearest of them (a Voronoi partition of their shared
    borders), so every neighbour gets the ground along its own border.

    Raises
    ------
    EditRefusedError
        ``not_adjacent`` (a neighbour shares no edge), ``crosses_parent``.
    """
    options = options or EditOptions()
    ctx = _Context(state, level, options)
    receivers = list(dict.fromkeys(str(t) for t in to))
    if not receivers or unit in receivers:
        raise InputError("retire needs one or more neighbours other than the unit", field="to")
    gone = ctx.unit(unit)
    geometries = {c: ctx.unit(c) for c in receivers}
    problems = [
        ctx.locator.problem(
            "not_adjacent", (c, unit), g, f"{c!r} shares no edge with {unit!r}", measure=False
        )
        for c, g in geometries.items()
        if not _borders(g, gone, ctx.locator)
    ]
    if problems:
        raise refuse(problems)
    if len(receivers) == 1:
        merged = shapely.coverage_union_all(
            np.array([geometries[receivers[0]], gone], dtype=object)
        )
        ground = NewGround(geometries={receivers[0]: merged}, retired=[unit])
    else:
        regions = _nearest_regions(gone, geometries)
        faces = Faces({unit: gone, **geometries}, list(regions.values()))
        owner = faces.owner.copy()
        for code, region in regions.items():
            owner[faces.within(region) & (faces.owner == unit)] = code
        leftover = owner == unit
        if leftover.any():  # faces on a region border: the nearest receiver
            for i in np.flatnonzero(leftover):
                owner[i] = min(
                    receivers, key=lambda c: shapely.distance(faces.points[i], geometries[c])
                )
        ground = ctx.reassign(faces, owner)
    return ctx.finish("retire", {"unit": unit, "to": receivers}, ground)


def auto_split_children(
    state: LayerState,
    *,
    level: str,
    unit: str,
    parts: int,
    options: EditOptions | None = None,
) -> ChangeSet:
    """Re-partition a unit into ``parts`` children with balanced households.

    The parts come from :func:`gis.edits._autosplit.auto_split` (contiguous,
    compact, cut along streets and between buildings); they replace the
    unit's current children. Each current child keeps its code on the part
    it overlaps most (codes stay stable), extra parts get new codes, children
    left without a part are retired; the levels further down follow.

    Raises
    ------
    InputError
        ``level`` is the lowest level, or ``parts`` is below 2.
    """
    options = options or EditOptions()
    ctx = _Context(state, level, options)
    geometry = ctx.unit(unit)
    child_level = state.spec.child_level(level)
    if child_level is None:
        raise InputError(f"{level!r} has no level below to split into", field="level")
    try:
        from gis.edits._autosplit import auto_split
    except ImportError:  # pragma: no cover - the module ships with the streets layer
        raise InputError("auto_split is not available in this version", field="op") from None
    buildings = state.buildings_in(geometry)
    if buildings is None or buildings.empty:
        raise InputError(f"{unit!r} has no buildings to balance", field="units")
    result = auto_split(
        geometry,
        buildings,
        "households",
        state.streets,
        parts,
        projected=ctx.locator.projected,
    )
    # Only the cuts between parts are taken: the parts' outline, computed in
    # metres and back, runs millimetres off the unit's; the cuts' ends are
    # snapped onto the unit's own boundary.
    band = shapely.buffer(shapely.boundary(geometry), 0.1 / _METRES_PER_DEGREE)
    cuts = shapely.difference(
        shapely.union_all([shapely.boundary(g) for g in result.parts.geometry.values]), band
    )
    cuts = snap_drawing(
        shapely.line_merge(cuts) if not cuts.is_empty else cuts,
        [geometry],
        tolerance_m=0.5,
        projected=ctx.locator.projected,
    )
    faces = Faces({unit: geometry}, [cuts])
    regions = list(result.parts.geometry.values)
    # Each face goes to the part holding most of it (parts and faces share edges).
    label = np.array(
        [
            int(np.argmax([shapely.area(shapely.intersection(f, r)) for r in regions]))
            for f in faces.geometries
        ]
    )
    pieces = {i: union_faces(faces.geometries[label == i]) for i in range(len(regions))}
    children = state.frame(child_level.name)
    mine = children[children["parent_code"].astype(str) == unit]
    keep: dict[int, str] = {}
    for code, old in sorted(zip(mine["code"].astype(str), mine.geometry.values, strict=True)):
        free = [i for i in pieces if i not in keep and not pieces[i].is_empty]
        if not free:
            break
        best = max(free, key=lambda i: shapely.area(shapely.intersection(old, pieces[i])))
        keep[best] = code
    taken = state.codes_taken(child_level.name)
    siblings = list(mine["code"].astype(str))
    ground = NewGround(geometries={})
    template = mine.iloc[0].to_dict() if len(mine) else {}
    for i, piece in pieces.items():
        if piece.is_empty:
            continue
        code = keep.get(i)
        if code is None:
            code = next_code(unit, taken, siblings=siblings)
            taken.add(code)
            siblings.append(code)
            ground.created[code] = {
                "name": f"{ctx.row(unit).get('name') or unit}（微{len(siblings)}）",
                "parent_code": unit,
                "kind": template.get("kind") or "comprehensive",
                "attributes": {"auto_split_from": unit},
            }
        ground.geometries[code] = piece
    ground.retired = [c for c in mine["code"].astype(str) if c not in set(keep.values())]
    child_options = EditOptions(
        cascade=options.cascade, snap_m=options.snap_m, force=True, tolerances=options.tolerances
    )
    child_ctx = _Context(state, child_level.name, child_options)
    params = {"unit": unit, "parts": parts, "balance": result.summary()}
    changes = child_ctx.finish("auto_split", params, ground)
    return changes


# -- shared machinery --------------------------------------------------------------


class _Context:
    """One operation's view of its level: lookups, snapping, measuring, finishing."""

    def __init__(self, state: LayerState, level: str, options: EditOptions) -> None:
        try:
            state.spec.level(level)
        except KeyError:
            names = ", ".join(lv.name for lv in state.spec.levels)
            raise NotFoundError(
                f"layer {state.spec.name!r} has no level {level!r}; its levels are {names}",
                field="level",
            ) from None
        self.state = state
        self.level = level
        self.options = options
        self.frame = state.frame(level)
        self.locator = Locator(state.projected(), options.tolerances)
        self._rows = level_arrays(self.frame).rows  # made once per level frame

    def unit(self, code: str) -> BaseGeometry:
        if str(code) not in self._rows:
            raise NotFoundError(
                f"no {self.level} unit {code!r} in layer {self.state.spec.name!r}", field="units"
            )
        return self.geometry(str(code))

    def geometry(self, code: str) -> BaseGeometry:
        return self.frame.geometry.values[self._rows[code]]

    def row(self, code: str) -> dict[str, Any]:
        record: dict[str, Any] = self.frame.iloc[self._rows[code]].to_dict()
        return record

    def intersecting(self, geometry: BaseGeometry) -> list[str]:
        rows = self.frame.sindex.query(geometry, predicate="intersects")
        return [str(self.frame["code"].iloc[i]) for i in sorted(rows)]

    def snap(self, drawn: BaseGeometry) -> BaseGeometry:
        # Snap to the units around the drawing (their vertices and edges).
        near = self.frame.sindex.query(
            shapely.buffer(shapely.envelope(drawn), self.options.snap_m * 3 / _METRES_PER_DEGREE),
            predicate="intersects",
        )
        targets = list(self.frame.geometry.values[near])
        streets = self.state.streets
        if streets is not None and not streets.empty:
            # Street centre lines too, where the layer has them.
            area = shapely.buffer(
                shapely.envelope(drawn), self.options.snap_m * 3 / _METRES_PER_DEGREE
            )
            targets += list(streets.geometry.values[streets.sindex.query(area)])
        snapped = snap_drawing(
            drawn,
            targets,
            tolerance_m=self.options.snap_m,
            projected=self.locator.projected,
        )
        if snapped.geom_type in ("Polygon", "MultiPolygon") and not snapped.is_valid:
            snapped = shapely.make_valid(snapped)
        return snapped

    def reaching(
        self, line: BaseGeometry, region: BaseGeometry, codes: tuple[str, ...]
    ) -> BaseGeometry:
        """Clip ``line`` to ``region``; refuse a line end inside it (not on its boundary)."""
        inner = shapely.intersection(line, region, grid_size=GRID_SIZE)
        pieces = [
            p for p in shapely.get_parts(inner) if p.geom_type == "LineString" and not p.is_empty
        ]
        if not pieces:
            raise refuse(
                [
                    self.locator.problem(
                        "line_not_reaching_boundary",
                        codes,
                        line,
                        "the line does not cross the unit(s)",
                        measure=False,
                    )
                ]
            )
        outline = region.boundary
        loose = []
        for piece in pieces:
            for end in (shapely.Point(piece.coords[0]), shapely.Point(piece.coords[-1])):
                gap = self.locator.project(shapely.shortest_line(end, outline)).length
                if gap > self.options.tolerances.sliver_width_m:
                    loose.append((end, gap))
        if loose:
            raise refuse(
                [
                    self.locator.problem(
                        "line_not_reaching_boundary",
                        codes,
                        end,
                        f"the line ends {gap:,.1f} m inside the unit: it must run from boundary "
                        f"to boundary (ends within {self.options.snap_m:g} m snap onto it)",
                        measure=False,
                    )
                    for end, gap in loose
                ]
            )
        # Where the line crosses the boundary near a vertex, it takes the vertex
        # (the neighbours' edges then need no new vertex).
        return self.snap(shapely.union_all(pieces))

    def reassign(
        self, faces: Faces, owner: np.ndarray, *, created: dict[str, dict[str, Any]] | None = None
    ) -> NewGround:
        """Turn faces with their new owners into the new ground of each unit."""
        ground = NewGround(geometries={}, created=dict(created or {}))
        for code in dict.fromkeys([*faces.owner, *owner]):
            mine = faces.geometries[owner == code]
            if len(mine) == 0:
                ground.retired.append(str(code))
                continue
            merged = union_faces(mine)
            ground.geometries[str(code)] = merged
            if merged.geom_type == "MultiPolygon" and len(merged.geoms) > 1:
                ground.warnings.append(
                    self.locator.problem(
                        "multi_part_unit",
                        (str(code),),
                        merged,
                        f"{code!r} would be in {len(merged.geoms)} separate parts",
                        measure=False,
                    )
                )
        return ground

    def finish(self, op: str, params: dict[str, Any], ground: NewGround) -> ChangeSet:
        params = {
            **params,
            "level": self.level,
            "cascade": self.options.cascade,
            "snap_m": self.options.snap_m,
            "force": self.options.force,
        }
        return build_changeset(
            self.state,
            op=op,
            params=params,
            level=self.level,
            ground=ground,
            options=self.options,
            locator=self.locator,
        )


def _polygon(geometry: BaseGeometry | Mapping[str, Any]) -> BaseGeometry:
    shape = _shape(geometry)
    if shape.geom_type not in ("Polygon", "MultiPolygon"):
        raise InputError(
            f"geometry must be a Polygon or MultiPolygon, not {shape.geom_type}", field="geometry"
        )
    if not shape.is_valid:
        raise InputError(
            f"the polygon is not valid ({shapely.is_valid_reason(shape)})", field="geometry"
        )
    return shape


def _line(geometry: BaseGeometry | Mapping[str, Any]) -> BaseGeometry:
    shape = _shape(geometry)
    if shape.geom_type not in ("LineString", "MultiLineString"):
        raise InputError(
            f"geometry must be a LineString or MultiLineString, not {shape.geom_type}",
            field="geometry",
        )
    return shape


def _shape(geometry: BaseGeometry | Mapping[str, Any]) -> BaseGeometry:
    if isinstance(geometry, Mapping):
        try:
            shape = shapely.geometry.shape(geometry)
        except Exception as error:  # GeoJSON from people: say what is wrong
            raise InputError(f"geometry is not GeoJSON: {error}", field="geometry") from None
    else:
        shape = geometry
    if shape is None or shape.is_empty:
        raise InputError("geometry is empty", field="geometry")
    coords = shapely.get_coordinates(shape)
    if (
        not np.isfinite(coords).all()
        or (np.abs(coords[:, 0]) > 180).any()
        or (np.abs(coords[:, 1]) > 90).any()
    ):
        raise InputError(
            "geometry coordinates must be CGCS2000 longitude/latitude degrees", field="geometry"
        )
    return shape


def _borders(a: BaseGeometry, b: BaseGeometry, locator: Locator) -> bool:
    """Whether two polygons share an edge (not just a point)."""
    if shapely.distance(a, b) > _NEAR_DEG:
        return False
    shared = shapely.intersection(shapely.boundary(a), shapely.boundary(b))
    if not shared.is_empty and locator.project(shared).length > locator.tolerances.sliver_width_m:
        return True
    # A piece cut out of a unit by a drawing has new vertices on the shared
    # edge that lie on it only to a rounding error: the exact intersection of
    # the outlines is then a few points. Measure the edge along the piece.
    along = shapely.intersection(
        shapely.boundary(b), shapely.buffer(shapely.boundary(a), _NEAR_DEG)
    )
    if not along.is_empty and locator.project(along).length > locator.tolerances.sliver_width_m:
        return True
    overlap = _polygonal(shapely.intersection(a, b))
    return not overlap.is_empty


def _components(
    codes: list[str], geometries: dict[str, BaseGeometry], locator: Locator
) -> list[list[str]]:
    """Group units connected by shared edges (the first unit's group first)."""
    remaining = list(codes)
    groups = []
    while remaining:
        group = [remaining.pop(0)]
        grew = True
        while grew:
            grew = False
            for code in list(remaining):
                if any(_borders(geometries[code], geometries[g], locator) for g in group):
                    group.append(code)
                    remaining.remove(code)
                    grew = True
        groups.append(group)
    return groups


def _sides(region: BaseGeometry, line: BaseGeometry) -> list[BaseGeometry]:
    noded = shapely.union(shapely.boundary(region), line, grid_size=GRID_SIZE)
    faces = shapely.get_parts(shapely.polygonize(shapely.get_parts(noded)))
    points = shapely.point_on_surface(faces)
    return [f for f, p in zip(faces, points, strict=True) if shapely.within(p, region)]


def _join_slivers(faces: np.ndarray, locator: Locator) -> list[np.ndarray]:
    """Group face indexes into parts; sliver faces join their largest neighbour."""
    slivers = [locator.is_sliver(f) for f in faces]
    parts = [np.array([i]) for i in range(len(faces)) if not slivers[i]]
    for i in np.flatnonzero(slivers):
        best, length = None, -1.0
        for p, part in enumerate(parts):
            shared = shapely.intersection(faces[i].boundary, union_faces(faces[part]).boundary)
            if shared.length > length:
                best, length = p, shared.length
        if best is not None:
            parts[best] = np.append(parts[best], i)
    return parts


def _nearest_regions(
    gone: BaseGeometry, receivers: dict[str, BaseGeometry]
) -> dict[str, BaseGeometry]:
    """Split ``gone``'s ground among ``receivers`` by nearness to their shared borders."""
    points: list[BaseGeometry] = []
    labels: list[str] = []
    seen: set[tuple[float, float]] = set()
    width, height = gone.bounds[2] - gone.bounds[0], gone.bounds[3] - gone.bounds[1]
    step = max(width, height) / 200 or 1e-6
    for code, geometry in receivers.items():
        border = shapely.intersection(gone.boundary, geometry.boundary)
        if border.is_empty:
            border = shapely.shortest_line(geometry, gone)
        dense = shapely.segmentize(border, step)
        for x, y in np.unique(shapely.get_coordinates(dense), axis=0):
            key = (round(float(x), 9), round(float(y), 9))
            if key in seen:  # a corner two receivers share: the first one's
                continue
            seen.add(key)
            points.append(shapely.Point(x, y))
            labels.append(code)
    extent = shapely.buffer(shapely.envelope(gone), max(width, height))
    cells = shapely.get_parts(
        shapely.voronoi_polygons(shapely.multipoints(points), extend_to=extent, ordered=True)
    )
    by_code: dict[str, list[BaseGeometry]] = {}
    # ordered=True: cell i belongs to input point i (duplicates were removed above).
    for cell, code in zip(cells, labels, strict=True):
        by_code.setdefault(code, []).append(cell)
    return {
        code: shapely.intersection(shapely.union_all(cells_), gone, grid_size=GRID_SIZE)
        for code, cells_ in by_code.items()
    }


def _poi_footprint(
    state: LayerState, poi: str, locator: Locator
) -> tuple[BaseGeometry, dict[str, Any]]:
    table = state.pois
    if table is None or table.empty:
        raise NotFoundError(f"no POI {poi!r}", field="poi")
    hits = table[(table["key"].astype(str) == poi) | (table["name"].astype(str) == poi)]
    if hits.empty:
        raise NotFoundError(f"no POI {poi!r}", field="poi")
    found: dict[str, Any] = hits.iloc[0].to_dict()
    footprint = None
    point = shapely.Point(float(found.get("lon") or 0), float(found.get("lat") or 0))
    buildings = state.buildings_in(shapely.buffer(point, 0.002))  # ~200 m around it
    if buildings is not None and not buildings.empty:
        if found.get("building_key") is not None:
            match = buildings[buildings["key"].astype(str) == str(found["building_key"])]
            if len(match):
                footprint = match.geometry.values[0]
        if footprint is None:
            match = buildings[buildings.geometry.covers(point)]
            if len(match):
                footprint = match.geometry.values[0]
    if footprint is None:
        raise refuse(
            [
                locator.problem(
                    "no_footprint",
                    (str(found["key"]),),
                    point,
                    f"POI {poi!r} is in no building: draw the dedicated unit's polygon",
                    measure=False,
                )
            ]
        )
    return footprint, found


def _parent_code(row: Mapping[str, Any]) -> str | None:
    """Return the row's parent code; None for a top-level unit (stored NULL, read as NaN)."""
    parent = row.get("parent_code")
    return None if parent is None or pd.isna(parent) or parent == "" else str(parent)


def _new_code(parent: str | None, unit: str | None, taken: set[str], siblings: list[str]) -> str:
    if parent is None or pd.isna(parent):
        # A top-level unit has no parent to number under: number like its siblings.
        base = (unit or "")[: max(len(unit or "") - 3, 0)]
        return next_code(base, taken, siblings=siblings)
    return next_code(str(parent), taken, siblings=siblings)


def _polygonal(geometry: BaseGeometry) -> BaseGeometry:
    from gis.validate._coverage import polygonal

    result: BaseGeometry = polygonal(geometry)
    return result
