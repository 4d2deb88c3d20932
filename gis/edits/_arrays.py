"""A level's units as plain arrays, made once per frame and shared.

The state cache hands every request the same level frames (never modified
in place). Reading their code columns (arrow strings) and geometries into
numpy costs milliseconds per call on a level of thousands of units, and a
preview asked for them dozens of times: here they are made once per frame
and kept as long as the frame lives.
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import geopandas as gpd
import numpy as np
import shapely
from numpy.typing import NDArray
from shapely.geometry.base import BaseGeometry

from gis.edits._model import UNIT_COLUMNS, LevelChange, empty_units, frame_from_arrays

__all__ = [
    "LevelArrays",
    "after_frame",
    "around",
    "envelope",
    "level_arrays",
    "stored_frame",
    "stored_rows",
    "units_frame",
]


@dataclass(frozen=True)
class LevelArrays:
    """The units of one level frame, row for row.

    Attributes
    ----------
    codes : ndarray of str
        Each unit's code.
    parents : ndarray of object
        Each unit's parent code (``None`` when it has none).
    geometries : ndarray of Geometry
        Each unit's polygon.
    columns : dict of str to ndarray
        Each of :data:`~gis.edits._model.UNIT_COLUMNS` as objects.
    rows : dict of str to int
        The row of each code.
    index : SpatialIndex
        The frame's own spatial index (built once by the state cache).
    """

    codes: NDArray[np.object_]
    parents: NDArray[np.object_]
    geometries: NDArray[np.object_]
    columns: dict[str, NDArray[np.object_]]
    rows: dict[str, int]
    index: Any

    def near(self, area: BaseGeometry) -> NDArray[np.int64]:
        """Return the rows of the units meeting ``area``, in row order."""
        if area.is_empty or not len(self.codes):
            return np.zeros(0, dtype=np.int64)
        return np.sort(self.index.query(area, predicate="intersects"))


_MADE: dict[tuple[int, bool], tuple[weakref.ref[gpd.GeoDataFrame], LevelArrays]] = {}
_LOCK = threading.Lock()


def level_arrays(frame: gpd.GeoDataFrame, *, indexed: bool = True) -> LevelArrays:
    """Return ``frame``'s units as arrays (made on first use, then shared).

    ``indexed=False`` (a change's few units, never asked :meth:`LevelArrays.near`)
    leaves the spatial index out: the arrays are then made without it and
    kept apart from the indexed ones.
    """
    key = (id(frame), indexed)
    with _LOCK:
        found = _MADE.get(key)
    if found is not None and found[0]() is frame:
        return found[1]
    parents = (
        frame["parent_code"].to_numpy(dtype=object, na_value=None)
        if indexed or "parent_code" in frame
        else np.full(len(frame), None, dtype=object)
    )
    arrays = LevelArrays(
        codes=np.array([str(c) for c in frame["code"]], dtype=object),
        parents=np.array([None if p is None else str(p) for p in parents], dtype=object),
        geometries=np.asarray(frame.geometry.values, dtype=object),
        columns={c: _column(frame, c) for c in UNIT_COLUMNS},
        rows={str(c): i for i, c in enumerate(frame["code"])},
        index=frame.sindex if indexed else None,
    )

    def forget(_: object, key: tuple[int, bool] = key) -> None:
        with _LOCK:
            _MADE.pop(key, None)

    with _LOCK:
        _MADE[key] = (weakref.ref(frame, forget), arrays)
    return arrays


def stored_rows(
    frame: gpd.GeoDataFrame,
    *,
    codes: Iterable[str] | None = None,
    parents: set[str] | None = None,
    area: BaseGeometry | None = None,
    exclude: set[str] | None = None,
) -> gpd.GeoDataFrame:
    """Return the stored units with these codes, under these parents or meeting ``area``.

    In the frame's order (a boolean selection's), leaving out the codes in
    ``exclude``; the frame's arrays find the rows (no pass over its columns).
    """
    stored = level_arrays(frame)
    if area is not None:
        rows = stored.near(area)
    elif codes is not None:
        rows = np.array(sorted({stored.rows[c] for c in codes if c in stored.rows}), dtype=np.int64)
    else:
        rows = np.arange(len(stored.codes))
    keep = _matching(stored.codes[rows], stored.parents[rows], None, parents)
    if exclude:
        keep &= np.array([c not in exclude for c in stored.codes[rows]], dtype=bool)
    return frame.iloc[rows[keep]]


def units_frame(codes: NDArray[np.object_], geometries: NDArray[np.object_]) -> gpd.GeoDataFrame:
    """Return a frame of units (``code`` and geometry, EPSG:4490) from arrays."""
    return frame_from_arrays({"code": np.asarray(codes, dtype=object)}, geometries)


def around(
    frame: gpd.GeoDataFrame, change: LevelChange, area: BaseGeometry, *, after: bool
) -> tuple[NDArray[np.object_], NDArray[np.object_]]:
    """Return the codes and geometries of a level's units meeting ``area``, before or after.

    After ``change``, its units replace their stored versions and the units
    it makes join; sorted by code (as :func:`gis.edits._impact.after_units`).
    """
    stored = level_arrays(frame)
    rows = stored.near(area)
    codes, geoms = stored.codes[rows], stored.geometries[rows]
    if not after:
        return codes, geoms
    # The change's sides are read once per preview (they are asked for often).
    new = level_arrays(change.after, indexed=False)
    new_codes = new.codes
    gone = set(level_arrays(change.before, indexed=False).codes) | set(new_codes)
    keep = np.array([c not in gone for c in codes], dtype=bool)
    new_geoms = new.geometries
    meets = shapely.intersects(new_geoms, area) if len(new_geoms) else np.zeros(0, dtype=bool)
    codes = np.concatenate([codes[keep], new_codes[meets]])
    geoms = np.concatenate([geoms[keep], new_geoms[meets]])
    order = np.argsort(codes.astype(str), kind="stable")
    return codes[order], geoms[order]


def envelope(frames: Iterable[gpd.GeoDataFrame]) -> BaseGeometry:
    """Return the union of the bounding boxes of every unit in ``frames``."""
    boxes = [
        shapely.envelope(np.asarray(f.geometry.values, dtype=object)) for f in frames if len(f)
    ]
    if not boxes:
        return shapely.Polygon()
    return shapely.union_all(np.concatenate(boxes))


def after_frame(
    frame: gpd.GeoDataFrame,
    change: LevelChange,
    area: BaseGeometry,
    *,
    codes: set[str] | None = None,
    parents: set[str] | None = None,
    exclude: set[str] | None = None,
    new_anywhere: bool = False,
    columns: tuple[str, ...] = UNIT_COLUMNS,
) -> gpd.GeoDataFrame:
    """Return a level's units meeting ``area`` as they are after ``change``, sorted by code.

    ``frame`` is the level as stored; the change's units replace their stored
    versions and those it makes join. ``codes`` / ``parents`` keep only the
    units with these codes / parent codes, ``exclude`` leaves out those
    codes; ``new_anywhere`` takes the
    change's units wherever they lie (the stored ones still meet ``area``).
    One frame is built, from arrays (``columns``, by default
    :data:`~gis.edits._model.UNIT_COLUMNS`, and the geometry).
    """
    stored = level_arrays(frame)
    rows = stored.near(area)
    # The change's sides are read once per preview (asked for by every check).
    new = level_arrays(change.after, indexed=False)
    gone = set(level_arrays(change.before, indexed=False).codes) | set(new.codes)
    gone |= exclude or set()
    keep = np.array([stored.codes[r] not in gone for r in rows], dtype=bool)
    rows = rows[keep] if len(rows) else rows
    rows = rows[_matching(stored.codes[rows], stored.parents[rows], codes, parents)]
    new_codes, new_parents, new_geoms = new.codes, new.parents, new.geometries
    taken = _matching(new_codes, new_parents, codes, parents)
    if exclude:
        taken &= np.array([c not in exclude for c in new_codes], dtype=bool)
    if not new_anywhere and len(new_geoms):
        taken &= (not area.is_empty) & shapely.intersects(new_geoms, area)
    order = np.argsort(np.concatenate([stored.codes[rows], new_codes[taken]]), kind="stable")
    values = {
        c: np.concatenate([stored.columns[c][rows], _new_column(new, change.after, c)[taken]])[
            order
        ]
        for c in columns
    }
    geometry = np.concatenate([stored.geometries[rows], new_geoms[taken]])[order]
    return frame_from_arrays(values, geometry)


def stored_frame(
    frame: gpd.GeoDataFrame, area: BaseGeometry, *, columns: tuple[str, ...] = UNIT_COLUMNS
) -> gpd.GeoDataFrame:
    """Return the stored units meeting ``area`` (``columns`` and geometry), in the frame's order.

    As ``concat_units([frame.iloc[rows]])[[*columns, "geometry"]]``, built
    once from the frame's arrays instead of through three frames.
    """
    stored = level_arrays(frame)
    rows = stored.near(area)
    if not len(rows):
        return empty_units()[[*columns, "geometry"]]
    values = {c: stored.columns[c][rows] for c in columns}
    return frame_from_arrays(values, stored.geometries[rows])


def _matching(
    codes: NDArray[np.object_],
    parents: NDArray[np.object_],
    wanted_codes: set[str] | None,
    wanted_parents: set[str] | None,
) -> NDArray[np.bool_]:
    keep = np.ones(len(codes), dtype=bool)
    if wanted_codes is not None:
        keep &= np.array([c in wanted_codes for c in codes], dtype=bool)
    if wanted_parents is not None:
        keep &= np.array([p in wanted_parents for p in parents], dtype=bool)
    return keep


def _new_column(new: LevelArrays, frame: gpd.GeoDataFrame, name: str) -> NDArray[np.object_]:
    """Return ``_column(frame, name)``, from ``frame``'s arrays when it is a unit column."""
    found = new.columns.get(name)
    return found if found is not None else _column(frame, name)


def _column(frame: gpd.GeoDataFrame, name: str) -> NDArray[np.object_]:
    """Return a unit column as objects, as :func:`gis.edits._model.concat_units` joins them."""
    if name not in frame:
        return np.full(len(frame), None, dtype=object)
    return np.asarray(frame[name].to_numpy(dtype=object), dtype=object)
