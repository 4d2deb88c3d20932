"""Spatial indexes of every layer and level, versioned with the registry.

An :class:`IndexSet` holds, for one set of unit versions, a point-in-polygon
:class:`~gis.gridindex.GridIndex` per level plus metric geometries for
distances and uncertainty circles. :class:`IndexCache` keeps recent sets
keyed by the boundaries revision and the time window they are valid for, so
boundary changes are picked up without a restart (in a served application
the new set is built in the background and swapped in whole).
"""

from __future__ import annotations

import itertools
import logging
import threading
from collections import OrderedDict
from dataclasses import dataclass
from datetime import date, datetime

import geopandas as gpd
import numpy as np
import shapely
from numpy.typing import NDArray
from pyproj import CRS, Transformer

from gis._heap import keep_long_lived
from gis._prepared import prepare_for_points
from gis.crs import STORAGE_CRS, local_projected_crs, transformer
from gis.gridindex import GridIndex
from gis.repository import Database
from gis.revisions import RevisionClock
from gis.staff import StaffMember, list_staff, responsible_for
from gis.times import parse_time

__all__ = ["IndexCache", "IndexSet", "LevelIndex"]

_log = logging.getLogger(__name__)


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
    geometries : ndarray of geometries
        The units as stored (EPSG:4490), e.g. for vector tiles.
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
    geometries: NDArray[np.object_]
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

    def find(self, layer: str, level: str) -> LevelIndex | None:
        """Return the index of one level (None when it has no units)."""
        return next((lv for lv in self.levels if lv.layer == layer and lv.level == level), None)

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
    clock : RevisionClock
        The shared change counters (read at most once per refresh interval).
    keep : int
        How many index sets (time windows) to keep.
    background : bool
        After a boundary change, keep answering from the previous set while
        the new one is built in a background thread, then swap it in (a
        served application: no request waits for a rebuild). Without it the
        first call after a change builds the new set itself.
    """

    def __init__(
        self,
        db: Database,
        *,
        clock: RevisionClock,
        keep: int = 4,
        background: bool = False,
    ) -> None:
        self._db = db
        self.clock = clock
        self._keep = keep
        self._background = background
        self._sets: OrderedDict[tuple[int, datetime | None], IndexSet] = OrderedDict()
        self._staff_revision = -1
        self._staff: list[StaffMember] = []
        # (staff revision, most local unit first) -> the people responsible there.
        self._responsible: dict[tuple[int, tuple[tuple[str, str], ...]], tuple[StaffMember, ...]]
        self._responsible = {}
        self._lock = threading.Lock()  # one build at a time
        self._pending: threading.Thread | None = None

    def get(self, at: datetime | date | str | None = None) -> IndexSet:
        """Return the index set for the boundaries valid at ``at`` (default now)."""
        when = parse_time(at, field="at")
        revision = self.clock.current().boundaries
        found = self._find(when, revision)
        if found is not None:
            return found
        if self._background:
            stale = self._find(when, None)
            if stale is not None:
                self._rebuild_later(when, revision)
                return stale
        with self._lock:
            return self._find(when, revision) or self._build(when, revision)

    def ready(self, at: datetime | None = None) -> bool:
        """Whether :meth:`get` would answer without building (cheap; for the event loop)."""
        when = parse_time(at, field="at")
        if self._find(when, self.clock.current().boundaries) is not None:
            return True
        return self._background and self._find(when, None) is not None

    def serving_revision(self) -> int | None:
        """Return the boundaries revision the indexes answer from now, without building.

        A set behind the change counters starts its background rebuild (as
        :meth:`get` does); ``None`` until the first set is built. A client
        that saw revision ``r`` before a change knows the indexes (and the
        tiles made from them) show the change once this differs from ``r``.
        """
        if not self.ready():
            return None
        return self.get().revision

    def wait(self, timeout: float | None = None) -> None:
        """Wait for a background rebuild to finish (tests, benchmarks, shut-down)."""
        pending = self._pending
        if pending is not None:
            pending.join(timeout)

    def staff(self) -> list[StaffMember]:
        """Return the active staff (refreshed when the staff counter moves)."""
        revision = self.clock.current().staff
        if revision != self._staff_revision:
            self._staff = list_staff(self._db)
            self._staff_revision = revision
        return self._staff

    def responsible(self, units: list[tuple[str, str]]) -> tuple[StaffMember, ...]:
        """Return the people responsible for a place (:func:`~gis.staff.responsible_for`).

        ``units`` lists ``(layer, code)`` most local first. Kept per staff
        revision: a place's units repeat (every intake in a grid), and the
        choice walks the whole staff list.
        """
        staff = self.staff()
        key = (self._staff_revision, tuple(units))
        found = self._responsible.get(key)
        if found is None:
            if len(self._responsible) > 50_000 or any(
                k[0] != key[0] for k in itertools.islice(self._responsible, 1)
            ):
                self._responsible = {}  # a new staff revision (or too many places)
            found = tuple(responsible_for(staff, list(units))) if staff else ()
            self._responsible[key] = found
        return found

    def _find(self, when: datetime, revision: int | None) -> IndexSet | None:
        # Newest first; ``revision=None`` accepts any (a stale set, while
        # its successor is being built).
        for cached in reversed(list(self._sets.values())):
            if (revision is None or cached.revision == revision) and cached.covers_time(when):
                return cached
        return None

    def _build(self, when: datetime, revision: int) -> IndexSet:
        built = _build(self._db, when, revision)
        # Hundreds of thousands of long-lived geometry objects: keep the
        # cyclic garbage collector from re-scanning them (latency spikes).
        keep_long_lived()
        sets = OrderedDict(self._sets)
        sets[(revision, built.start)] = built
        while len(sets) > self._keep:
            sets.popitem(last=False)
        self._sets = sets  # swapped whole: readers never see a half-updated dict
        return built

    def _rebuild_later(self, when: datetime, revision: int) -> None:
        if self._pending is not None and self._pending.is_alive():
            return
        if not self._lock.acquire(blocking=False):
            return  # a build is running in the foreground

        def build() -> None:
            try:
                if self._find(when, revision) is None:
                    self._build(when, revision)
            except Exception:  # the next request retries; never crash the server
                _log.exception("rebuilding the locate indexes failed")
            finally:
                self._lock.release()

        self._pending = threading.Thread(target=build, name="tongge-index-build", daemon=True)
        self._pending.start()


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
                geometries=np.asarray(frame.geometry.values, dtype=object),
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
    # Published to every request thread: point locators built before that.
    return prepare_for_points(geometries)


def _total_bounds(frames: list[gpd.GeoDataFrame]) -> tuple[float, float, float, float]:
    if not frames:
        return (118.0, 24.0, 119.0, 25.0)  # nothing stored: any valid centre will do
    boxes = np.array([frame.total_bounds for frame in frames])
    return (boxes[:, 0].min(), boxes[:, 1].min(), boxes[:, 2].max(), boxes[:, 3].max())
