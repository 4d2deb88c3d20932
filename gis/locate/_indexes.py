"""Spatial indexes of every layer and level, versioned with the registry.

An :class:`IndexSet` holds, for one set of unit versions, a point-in-polygon
:class:`~gis.geocode.GridIndex` per level plus metric geometries for
distances and uncertainty circles. :class:`IndexCache` keeps recent sets
keyed by the registry revision and the time window they are valid for, so
boundary changes are picked up without a restart.
"""

from __future__ import annotations

import gc
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass
from datetime import date, datetime

import geopandas as gpd
import numpy as np
import shapely
from numpy.typing import NDArray
from pyproj import CRS, Transformer

from gis.crs import STORAGE_CRS, local_projected_crs, transformer
from gis.geocode import GridIndex
from gis.registry import parse_time
from gis.repository import Database
from gis.staff import StaffMember, list_staff

__all__ = ["IndexCache", "IndexSet", "LevelIndex"]


@dataclass(frozen=True)
class LevelIndex:
    """One level of one layer, ready for lookups.

    Attributes
    ----------
    layer, level : str
        Names; ``rank`` 0 is the layer's top level.
    codes, names, parents : ndarray
        Per unit, aligned with the index rows.
    index : GridIndex
        Exact point-in-polygon lookups in EPSG:4490.
    metric : ndarray of geometries
        The same units in the set's projected CRS (metres).
    boundaries : ndarray of geometries
        Their boundaries, prepared, for distances to the boundary.
    tree : shapely.STRtree
        Over ``metric``, for nearest units and circle candidates.
    """

    layer: str
    level: str
    rank: int
    codes: NDArray[np.object_]
    names: NDArray[np.object_]
    parents: NDArray[np.object_]
    index: GridIndex
    metric: NDArray[np.object_]
    boundaries: NDArray[np.object_]
    tree: shapely.STRtree


@dataclass(frozen=True)
class IndexSet:
    """Indexes of every level valid during ``[start, end)`` at registry ``revision``."""

    revision: int
    start: datetime | None
    end: datetime | None
    projected: CRS
    to_metric: Transformer
    levels: tuple[LevelIndex, ...]

    def covers_time(self, at: datetime) -> bool:
        """Whether ``at`` falls in the window this set is valid for."""
        return (self.start is None or self.start <= at) and (self.end is None or at < self.end)

    def layers(self) -> dict[str, list[LevelIndex]]:
        """Group the levels by layer, top level first."""
        grouped: dict[str, list[LevelIndex]] = {}
        for level in self.levels:
            grouped.setdefault(level.layer, []).append(level)
        return grouped


class IndexCache:
    """Build index sets on demand and keep the recent ones.

    Parameters
    ----------
    db : Database
        The registry.
    refresh_seconds : float
        How long a revision check is trusted; 0 checks on every call.
    keep : int
        How many index sets (time windows) to keep.
    """

    def __init__(self, db: Database, *, refresh_seconds: float = 1.0, keep: int = 4) -> None:
        self._db = db
        self._refresh = refresh_seconds
        self._keep = keep
        self._sets: OrderedDict[tuple[int, datetime | None], IndexSet] = OrderedDict()
        self._revision = -1
        self._staff_revision: tuple[int, int] = (-1, -1)
        self._staff: list[StaffMember] = []
        self._checked = 0.0
        self._lock = threading.Lock()

    def get(self, at: datetime | date | str | None = None) -> IndexSet:
        """Return the index set for the boundaries valid at ``at`` (default now)."""
        when = parse_time(at)
        revision = self._current_revision()
        for key, cached in reversed(self._sets.items()):
            if cached.revision == revision and cached.covers_time(when):
                self._sets.move_to_end(key)
                return cached
        with self._lock:
            built = _build(self._db, when, revision)
            # Hundreds of thousands of long-lived geometry objects: keep the
            # cyclic garbage collector from re-scanning them (latency spikes).
            gc.collect()
            gc.freeze()
            self._sets[(revision, built.start)] = built
            while len(self._sets) > self._keep:
                self._sets.popitem(last=False)
            return built

    def staff(self) -> list[StaffMember]:
        """Return the active staff (refreshed like the indexes)."""
        self._current_revision()
        return self._staff

    def _current_revision(self) -> int:
        now = time.monotonic()
        if self._revision < 0 or now - self._checked >= self._refresh:
            with self._db.reader() as repo:
                self._revision = repo.revision()
                staff_revision = repo.staff_revision()
            if staff_revision != self._staff_revision:
                self._staff = list_staff(self._db)
                self._staff_revision = staff_revision
            self._checked = now
        return self._revision


def _build(db: Database, when: datetime, revision: int) -> IndexSet:
    frames: list[tuple[str, str, int, gpd.GeoDataFrame]] = []
    with db.reader() as repo:
        start, end = repo.version_window(at=when)
        for layer in repo.list_layers(at=when):
            for level in layer.levels:
                frame = repo.units_frame(layer=layer.name, level=level.name, at=when)
                if len(frame):
                    frames.append((layer.name, level.name, level.rank, frame))
    bounds = _total_bounds([frame for *_, frame in frames])
    projected = local_projected_crs((bounds[0] + bounds[2]) / 2, (bounds[1] + bounds[3]) / 2)
    to_metric = transformer(STORAGE_CRS, projected)
    levels = []
    for layer_name, level_name, rank, frame in frames:
        metric = np.asarray(frame.to_crs(projected).geometry.values, dtype=object)
        levels.append(
            LevelIndex(
                layer=layer_name,
                level=level_name,
                rank=rank,
                codes=frame["code"].to_numpy(dtype=object),
                names=frame["name"].to_numpy(dtype=object),
                parents=frame["parent_code"].to_numpy(dtype=object),
                index=GridIndex.from_frame(frame, code="code"),
                metric=metric,
                boundaries=_prepared(shapely.boundary(metric)),
                tree=shapely.STRtree(metric),
            )
        )
    return IndexSet(
        revision=revision,
        start=start,
        end=end,
        projected=projected,
        to_metric=to_metric,
        levels=tuple(levels),
    )


def _prepared(geometries: NDArray[np.object_]) -> NDArray[np.object_]:
    shapely.prepare(geometries)
    return geometries


def _total_bounds(frames: list[gpd.GeoDataFrame]) -> tuple[float, float, float, float]:
    if not frames:
        return (118.0, 24.0, 119.0, 25.0)  # nothing stored: any valid centre will do
    boxes = np.array([frame.total_bounds for frame in frames])
    return (boxes[:, 0].min(), boxes[:, 1].min(), boxes[:, 2].max(), boxes[:, 3].max())
