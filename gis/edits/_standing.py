"""Every building's unit on a stored level, kept per (level frame, buildings frame).

A preview needs where the buildings around the change stand *before* it:
that is the stored level's assignment, the same for every preview of one
revision. It is made here once per level frame (the state cache shares the
frames of a revision) and read by row. A level frame of a new revision
(after an edit, this process's or another's) does not start again: the
units that differ from the last frame assigned are found (their codes and
geometries compared), and only the buildings meeting them, or with their
entrance in them, are assigned again. A building's unit depends only on the
units its footprint meets and the one holding its entrance (or, clear of
every boundary, its first vertex, inside the footprint): every other
building keeps its unit. The first assignment of a level takes seconds on a
large city: a preview does not wait for it (:func:`ready_units`), it is made
in the background for the next ones.
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Hashable
from dataclasses import dataclass

import geopandas as gpd
import numpy as np
import shapely
from numpy.typing import NDArray

from gis.assign import assign_buildings
from gis.edits._arrays import LevelArrays, level_arrays, units_frame

__all__ = ["entrances_near", "reach", "ready_units", "settle", "standing_units"]

#: Above this share of a level's units changed, the whole level is assigned again.
_REDO_SHARE = 0.2


@dataclass(frozen=True)
class _Made:
    """One level frame's assignment, with what it was made from (to derive the next one)."""

    frame: weakref.ref[gpd.GeoDataFrame]
    buildings: weakref.ref[gpd.GeoDataFrame]
    codes: NDArray[np.object_]  # the level's codes, row for row
    geometries: NDArray[np.object_]
    units: NDArray[np.object_]  # each building's unit code (None: in no unit)


_MADE: dict[tuple[int, int], _Made] = {}
#: The last assignment made per (layer, level, buildings frame): the base of the next.
_LAST: dict[Hashable, _Made] = {}
_ENTRANCES: dict[int, tuple[weakref.ref[gpd.GeoDataFrame], NDArray[np.int64], shapely.STRtree]] = {}
_LOCK = threading.Lock()
#: The assignments being made in the background (see :func:`ready_units`).
_BUILDING: set[tuple[int, int]] = set()
_THREADS: list[threading.Thread] = []


def standing_units(
    frame: gpd.GeoDataFrame, buildings: gpd.GeoDataFrame, *, lineage: Hashable
) -> NDArray[np.object_]:
    """Return the unit of ``frame`` of every building, row for row (``None``: in no unit).

    ``buildings`` is the places cache's frame (with its ``entrance`` points
    and spatial index); ``lineage`` names the level (layer and level) whose
    last assignment the next frame's is derived from. Never modify the answer.
    """
    found = _made(frame, buildings, lineage)
    if found is None:
        found = _store(frame, buildings, lineage, _whole(frame, buildings))
    return found


def ready_units(
    frame: gpd.GeoDataFrame, buildings: gpd.GeoDataFrame, *, lineage: Hashable
) -> NDArray[np.object_] | None:
    """Return :func:`standing_units` if made or cheap to derive, else ``None`` (and make it).

    Assigning every building of a large city to a level takes seconds: the
    first preview does not wait for it (it assigns its few buildings itself);
    it is made in a background thread, once, for the next previews.
    """
    found = _made(frame, buildings, lineage)
    if found is not None:
        return found
    key = (id(frame), id(buildings))
    with _LOCK:
        if key in _BUILDING:
            return None
        _BUILDING.add(key)

    def build() -> None:
        try:
            _store(frame, buildings, lineage, _whole(frame, buildings))
        finally:
            with _LOCK:
                _BUILDING.discard(key)

    thread = threading.Thread(target=build, name="tongge-standing-units", daemon=True)
    with _LOCK:
        _THREADS.append(thread)
    thread.start()
    return None


def settle() -> None:
    """Wait until the assignments being made in the background are made (benchmarks, tests)."""
    with _LOCK:
        running = list(_THREADS)
        _THREADS.clear()
    for thread in running:
        thread.join()


def _made(
    frame: gpd.GeoDataFrame, buildings: gpd.GeoDataFrame, lineage: Hashable
) -> NDArray[np.object_] | None:
    """Return the assignment of ``frame`` made already, or derived from the last one."""
    key = (id(frame), id(buildings))
    with _LOCK:
        found = _MADE.get(key)
        last = _LAST.get((lineage, id(buildings)))
    if found is not None and found.frame() is frame and found.buildings() is buildings:
        return found.units
    if last is None or last.buildings() is not buildings:
        return None
    units = _derived(last, level_arrays(frame), buildings)
    return None if units is None else _store(frame, buildings, lineage, units)


def _whole(frame: gpd.GeoDataFrame, buildings: gpd.GeoDataFrame) -> NDArray[np.object_]:
    arrays = level_arrays(frame)
    return _assigned(buildings, arrays.codes, arrays.geometries)


def _store(
    frame: gpd.GeoDataFrame,
    buildings: gpd.GeoDataFrame,
    lineage: Hashable,
    units: NDArray[np.object_],
) -> NDArray[np.object_]:
    """Keep ``units`` as ``frame``'s assignment and as the base of the next one."""
    key = (id(frame), id(buildings))

    def forget(_: object, key: tuple[int, int] = key) -> None:
        with _LOCK:
            _MADE.pop(key, None)

    arrays = level_arrays(frame)
    made = _Made(
        frame=weakref.ref(frame, forget),
        buildings=weakref.ref(buildings),
        codes=arrays.codes,
        geometries=arrays.geometries,
        units=units,
    )
    with _LOCK:
        _MADE[key] = made
        _LAST[(lineage, id(buildings))] = made
        for stale in [k for k, v in _LAST.items() if v.buildings() is None]:
            del _LAST[stale]  # the places it was made on are gone
    return units


def _assigned(
    buildings: gpd.GeoDataFrame, codes: NDArray[np.object_], geometries: NDArray[np.object_]
) -> NDArray[np.object_]:
    """Assign ``buildings`` to the units (the import pipeline's rule)."""
    if not len(buildings) or not len(codes):
        return np.full(len(buildings), None, dtype=object)
    units = units_frame(codes, geometries)
    assigned = assign_buildings(buildings, units, entrance="entrance").frame["unit"]
    return np.asarray(assigned.to_numpy(dtype=object), dtype=object)


def _derived(
    last: _Made, arrays: LevelArrays, buildings: gpd.GeoDataFrame
) -> NDArray[np.object_] | None:
    """Return ``last`` brought to these units, or ``None`` when too much changed."""
    codes, geometries = arrays.codes, arrays.geometries
    old = {str(c): g for c, g in zip(last.codes, last.geometries, strict=True)}
    olds = np.array([old.get(str(c)) for c in codes], dtype=object)
    # The state cache shares the geometries of unchanged versions: mostly the same objects.
    same = np.array([o is g for o, g in zip(olds, geometries, strict=True)], dtype=bool)
    known = shapely.is_geometry(olds)
    check = np.flatnonzero(~same & known)
    if len(check):
        same[check] = shapely.equals_exact(olds[check], geometries[check], tolerance=0.0)
    kept = {str(c) for c in codes}
    gone = [g for c, g in old.items() if c not in kept]
    changed = [*geometries[~same], *olds[~same & known], *gone]
    if not changed:
        return last.units
    if len(changed) > max(50, _REDO_SHARE * len(codes)):
        return None
    area = shapely.union_all(shapely.envelope(np.asarray(changed, dtype=object)))
    rows = np.union1d(
        buildings.sindex.query(area, predicate="intersects"), _entrances_in(buildings, area)
    ).astype(np.int64)
    units = last.units.copy()
    if not len(rows):
        return units
    mine = buildings.iloc[rows]
    near = arrays.near(reach(mine))
    units[rows] = _assigned(mine, codes[near], geometries[near])
    return units


def reach(buildings: gpd.GeoDataFrame) -> shapely.Geometry:
    """Return the box of the footprints and entrances: the units outside it decide nothing."""
    bounds = shapely.bounds(np.asarray(buildings.geometry.values, dtype=object))
    entrances = np.asarray(buildings["entrance"].to_numpy(dtype=object), dtype=object)
    points = shapely.get_coordinates(entrances[shapely.is_geometry(entrances)])
    xs = np.concatenate([bounds[:, 0], bounds[:, 2], points[:, 0]])
    ys = np.concatenate([bounds[:, 1], bounds[:, 3], points[:, 1]])
    return shapely.box(np.nanmin(xs), np.nanmin(ys), np.nanmax(xs), np.nanmax(ys))


def _entrances_in(buildings: gpd.GeoDataFrame, area: shapely.Geometry) -> NDArray[np.int64]:
    """Return the rows of the buildings whose entrance lies in ``area``."""
    has, tree = _entrance_tree(buildings)
    return has[tree.query(area, predicate="intersects")]


def entrances_near(
    buildings: gpd.GeoDataFrame, areas: NDArray[np.object_], distance: float
) -> NDArray[np.int64]:
    """Return the rows of the buildings whose entrance is within ``distance`` of ``areas``.

    ``buildings`` is the places cache's frame: the index of its entrances is
    made once and kept as long as it lives. Rows may repeat.
    """
    has, tree = _entrance_tree(buildings)
    _, hits = tree.query(areas, predicate="dwithin", distance=distance)
    return has[hits]


def _entrance_tree(buildings: gpd.GeoDataFrame) -> tuple[NDArray[np.int64], shapely.STRtree]:
    """Return the rows of the buildings with an entrance, and an index of those entrances."""
    key = id(buildings)
    with _LOCK:
        found = _ENTRANCES.get(key)
    if found is None or found[0]() is not buildings:
        points = np.asarray(buildings["entrance"].to_numpy(dtype=object), dtype=object)
        has = np.flatnonzero(shapely.is_geometry(points))
        found = (weakref.ref(buildings), has, shapely.STRtree(points[has]))
        with _LOCK:
            _ENTRANCES[key] = found
    _, has, tree = found
    return has, tree
