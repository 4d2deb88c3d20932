"""The buildings around one level's change, assigned to its units before and after, once.

The moves (the lowest level) and the workload (every level) of a preview
both need where the buildings around the change go, before and after: each
level's two assignments are made here once and shared (they were made three
times for the lowest level). The units given to the assignment are those
meeting the box of the footprints and entrances: a building's unit depends
only on the units its footprint meets and those holding its entrance or
first vertex, so the answer is that of the whole level. Once the stored
level's assignment is cached (:mod:`gis.edits._standing`), the "before"
side is read from it and only the buildings on ground that changes hands
(:mod:`gis.edits._ground`) are assigned again for the "after" side: the
others, a merely noded neighbour's included, keep their stored unit.
"""

from __future__ import annotations

from dataclasses import dataclass

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from numpy.typing import NDArray

from gis.assign import assign_buildings
from gis.edits._arrays import around, units_frame
from gis.edits._ground import buildings_on, pieces_of
from gis.edits._model import LayerState, LevelChange
from gis.edits._standing import reach, ready_units

__all__ = ["Assigned", "Assignments", "with_entrances"]


@dataclass(frozen=True)
class Assigned:
    """The buildings meeting the box of one level's change, with their unit before and after.

    Attributes
    ----------
    buildings : GeoDataFrame
        ``key``, ``households``, ``persons``, ``entrance`` and the footprint.
    before, after : ndarray of object
        Each building's unit code (``None``: in no unit), row for row.
    """

    buildings: gpd.GeoDataFrame
    before: NDArray[np.object_]
    after: NDArray[np.object_]

    def households(self, side: str) -> dict[str, int]:
        """Return the households per unit on one side (``before`` or ``after``).

        Units holding no building are left out (their workload is unknown, not 0).
        """
        units = self.before if side == "before" else self.after
        counts = np.nan_to_num(self.buildings["households"].to_numpy(dtype=float))
        found: dict[str, float] = {}
        for unit, count in zip(units, counts, strict=True):
            if unit is not None:
                found[unit] = found.get(unit, 0.0) + count
        return {code: int(total) for code, total in found.items()}


class Assignments:
    """The assignments of a preview, one per level, made when first asked for."""

    def __init__(self, state: LayerState) -> None:
        self.state = state
        self._made: dict[str, Assigned | None] = {}

    def of(self, change: LevelChange) -> Assigned | None:
        """Return the assignments around ``change`` (``None`` without buildings there)."""
        if change.level not in self._made:
            self._made[change.level] = _assign(self.state, change)
        return self._made[change.level]


def _assign(state: LayerState, change: LevelChange) -> Assigned | None:
    area = change.box
    if area.is_empty:
        return None
    every = state.buildings
    rows = None
    if every is not None and "entrance" in every:
        # The places cache's frame: the stored level's side is read by row.
        rows = np.sort(every.sindex.query(area, predicate="intersects")) if len(every) else None
        buildings = every.iloc[rows].reset_index(drop=True) if rows is not None else every
    else:
        buildings = state.buildings_in(area)
    if buildings is None or buildings.empty:
        return None
    buildings = with_entrances(buildings)
    frame = state.frame(change.level)
    standing = None
    if rows is not None and every is not None:
        standing = ready_units(frame, every, lineage=(state.spec.name, change.level))
    if standing is None:
        # Both sides assigned here (the stored side is being made, or no cache).
        box = reach(buildings)
        before = _assigned(buildings, *around(frame, change, box, after=False))
        return Assigned(
            buildings, before, _assigned(buildings, *around(frame, change, box, after=True))
        )
    assert rows is not None and every is not None
    before = standing[rows]
    # Only the buildings on ground that changes can stand elsewhere after it:
    # the others keep their stored unit (:mod:`gis.edits._ground`).
    moved = np.flatnonzero(np.isin(rows, buildings_on(every, pieces_of(change.ground))))
    after = before.copy()
    if len(moved):
        mine = buildings.iloc[moved]
        after[moved] = _assigned(mine, *around(frame, change, reach(mine), after=True))
    return Assigned(buildings=buildings, before=before, after=after)


def _assigned(
    buildings: gpd.GeoDataFrame, codes: NDArray[np.object_], geometries: NDArray[np.object_]
) -> NDArray[np.object_]:
    """Return the unit of each building among these units (``None``: in none of them)."""
    if not len(codes):
        return np.full(len(buildings), None, dtype=object)
    unit = assign_buildings(buildings, units_frame(codes, geometries), entrance="entrance")
    return np.asarray(unit.frame["unit"].to_numpy(dtype=object), dtype=object)


def with_entrances(buildings: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    """Return ``buildings`` with an ``entrance`` point column (from the cache, or made)."""
    if "entrance" in buildings:
        return buildings
    buildings = buildings.copy()
    buildings["entrance"] = [
        None if pd.isna(x) or pd.isna(y) else shapely.Point(float(x), float(y))
        for x, y in zip(buildings["entrance_lon"], buildings["entrance_lat"], strict=True)
    ]
    return buildings
