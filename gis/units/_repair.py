"""Opt-in repair of slivers under the tolerance (``tongge import --repair``).

Only discrepancies validation classed as slivers are touched, and every fix
is returned so it can be listed; anything larger stays a problem for people
to resolve. The rules:

- overlap sliver between A and B: removed from the unit with the larger code;
- child sticking out of its parent by a sliver: clipped to the parent;
- sliver of a parent not covered by its children (edge or gap): given to the
  child sharing the longest boundary with it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import geopandas as gpd
import shapely

from gis.validate import Problem

__all__ = ["Repair", "repair_slivers"]


@dataclass(frozen=True)
class Repair:
    """One sliver fix: which unit changed, by which rule, by how much."""

    code: str
    rule: str
    area_m2: float | None
    message: str


def repair_slivers(
    units: gpd.GeoDataFrame,
    warnings: Sequence[Problem],
    *,
    parents: gpd.GeoDataFrame | None = None,
) -> tuple[gpd.GeoDataFrame, list[Repair]]:
    """Fix the sliver warnings of a validation report; return new units and the fixes.

    ``units`` and ``parents`` are unit frames in EPSG:4490 (the CRS of the
    warnings' geometries).
    """
    fixed = units.copy()
    row_of = {str(code): index for index, code in zip(fixed.index, fixed["code"], strict=True)}
    parent_geometry = {}
    if parents is not None:
        parent_geometry = dict(
            zip(parents["code"].astype(str), parents.geometry.values, strict=True)
        )
    repairs: list[Repair] = []
    name = fixed.geometry.name
    for warning in warnings:
        if warning.geometry is None:
            continue
        if warning.rule == "overlap" and len(warning.codes) == 2:
            loser = max(warning.codes)
            if loser in row_of:
                row = row_of[loser]
                fixed.at[row, name] = shapely.difference(fixed.at[row, name], warning.geometry)
                repairs.append(
                    Repair(
                        loser,
                        "overlap",
                        warning.area_m2,
                        f"removed overlap sliver shared with {min(warning.codes)!r}",
                    )
                )
        elif warning.rule == "outside_parent" and len(warning.codes) == 2:
            child, parent = warning.codes
            if child in row_of and parent in parent_geometry:
                row = row_of[child]
                fixed.at[row, name] = shapely.intersection(
                    fixed.at[row, name], parent_geometry[parent]
                )
                repairs.append(
                    Repair(
                        child, "outside_parent", warning.area_m2, f"clipped to parent {parent!r}"
                    )
                )
        elif warning.rule in ("parent_not_covered", "gap") and warning.codes:
            parent = warning.codes[0]
            for part in shapely.get_parts(warning.geometry):
                taker = _longest_shared_boundary(fixed, parent, part)
                if taker is None:
                    continue
                fixed.at[taker, name] = shapely.union(fixed.at[taker, name], part)
                repairs.append(
                    Repair(
                        str(fixed.at[taker, "code"]),
                        warning.rule,
                        None,
                        f"absorbed an uncovered sliver of parent {parent!r}",
                    )
                )
    return fixed, repairs


def _longest_shared_boundary(
    units: gpd.GeoDataFrame, parent: str, part: shapely.Geometry
) -> object | None:
    candidates = (
        units[units["parent_code"].astype(str) == parent] if "parent_code" in units else units
    )
    if candidates.empty:
        candidates = units
    boundary = part.boundary
    best, best_length = None, 0.0
    for index, geometry in zip(candidates.index, candidates.geometry.values, strict=True):
        shared = shapely.length(shapely.intersection(boundary, shapely.buffer(geometry, 1e-9)))
        if shared > best_length:
            best, best_length = index, float(shared)
    return best
