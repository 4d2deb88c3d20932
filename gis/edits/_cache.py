"""Layer states kept in memory between edits, keyed by the database's change counters.

Reading a layer (every level, every version, the buildings and POIs) costs
far more than an edit's own geometry work. Every write bumps the change
counters (``boundaries``, ``places``; see :mod:`gis.revisions`), and they
only grow, so a state read at a revision is never stale at that revision:
each request reads the counters (one small query) and finds the layer here.

Per database, bounded (least recently used out) and thread-safe:

- the versions of a layer per ``boundaries`` revision (every version of every
  level, read once);
- the state at an instant per (layer, revision, version window): the units
  valid anywhere inside a window between two version boundaries are the same,
  so one state (with its spatial indexes built) serves the whole window;
- the places per ``places`` revision: buildings with their household counts
  and entrance points, POIs with a spatial index.

The frames handed out are shared: callers never modify them in place.
"""

from __future__ import annotations

import bisect
import dataclasses
import threading
import weakref
from collections import OrderedDict
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from gis._heap import keep_long_lived
from gis.crs import STORAGE_CRS
from gis.edits._model import UNIT_COLUMNS, LayerState, unit_etag
from gis.errors import NotFoundError
from gis.layers import LayerSpec
from gis.repository import Database, ImportSummary, Repository
from gis.times import utc_now

__all__ = [
    "Places",
    "StateCache",
    "cached_state",
    "clear",
    "places",
    "read_versions",
    "state_at",
    "state_cache",
]

_T = TypeVar("_T")
#: Columns of the buildings an edit needs (footprint, counts, entrance).
BUILDING_COLUMNS = ["key", "households", "persons", "entrance_lon", "entrance_lat"]


class _Bounded:
    """A small least-recently-used map whose values are loaded once per key, thread-safe."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._items: OrderedDict[Hashable, Any] = OrderedDict()
        self._lock = threading.Lock()
        self._loading: dict[Hashable, threading.Lock] = {}

    def get(self, key: Hashable, load: Callable[[], _T]) -> _T:
        """Return the value of ``key``, loading it (once, whoever asks meanwhile waits)."""
        with self._lock:
            if key in self._items:
                self._items.move_to_end(key)
                found: _T = self._items[key]
                return found
            gate = self._loading.setdefault(key, threading.Lock())
        with gate:
            with self._lock:
                if key in self._items:  # loaded by the thread we waited for
                    self._items.move_to_end(key)
                    value: _T = self._items[key]
                    return value
            value = load()
            with self._lock:
                self._items[key] = value
                self._items.move_to_end(key)
                while len(self._items) > self.size:
                    self._items.popitem(last=False)
                self._loading.pop(key, None)
            return value

    def clear(self) -> None:
        with self._lock:
            self._items.clear()


@dataclass(frozen=True)
class _Versions:
    """Every stored version of a layer's units at one ``boundaries`` revision."""

    spec: LayerSpec
    every: gpd.GeoDataFrame
    starts: np.ndarray  # valid_from of each row
    ends: np.ndarray  # valid_to of each row (None: still valid)
    instants: list[datetime]  # every start and end, sorted: the version windows' edges
    taken: dict[str, set[str]]
    latest: dict[str, datetime]


@dataclass(frozen=True)
class Places:
    """The places an edit looks at, read once per ``places`` revision.

    Attributes
    ----------
    revision : int
        The ``places`` counter they were read at.
    buildings : GeoDataFrame
        ``key``, ``households``, ``persons``, ``entrance_lon``,
        ``entrance_lat``, ``entrance`` (a point or ``None``) and the
        footprint, ordered by key, spatial index built.
    pois : DataFrame
        Points of interest (see :meth:`gis.repository.PlaceStore.pois_table`).
    poi_points : ndarray of Point
        Each POI's point, row for row.
    poi_tree : STRtree
        Over ``poi_points``.
    poi_keys, poi_names : ndarray of object
        Each POI's key and name, row for row (as ``pois[column].to_numpy(dtype=object)``:
        made once here, not on every preview that moves a POI).
    """

    revision: int
    buildings: gpd.GeoDataFrame
    pois: pd.DataFrame
    poi_points: np.ndarray
    poi_tree: shapely.STRtree
    poi_keys: np.ndarray
    poi_names: np.ndarray


class StateCache:
    """The cached layer states and places of one database (see the module's docstring).

    Parameters
    ----------
    db : Database
        The database the states are read from.
    layers, states, places : int
        How many layer revisions, states and places revisions are kept.
    """

    def __init__(self, db: Database, *, layers: int = 4, states: int = 8, places: int = 2) -> None:
        self._db = weakref.ref(db)
        self._versions = _Bounded(layers)
        self._states = _Bounded(states)
        self._places = _Bounded(places)

    @property
    def db(self) -> Database:
        db = self._db()
        if db is None:  # pragma: no cover - the cache lives as long as its database
            raise RuntimeError("the database of this cache is gone")
        return db

    def state(self, *, layer: str, at: datetime | None = None) -> LayerState:
        """Return ``layer`` as it stands at ``at`` (default: now), from memory when current."""
        at = at or utc_now()
        with self.db.reader() as repo:
            counters = repo.revisions()
            revision = counters.get("boundaries", 0)
            versions = self._versions.get(
                (layer, revision), lambda: _long_lived(read_versions(repo, layer=layer))
            )
        window = bisect.bisect_right(versions.instants, at)
        base = self._states.get((layer, revision, window), lambda: state_at(versions, at, revision))
        found = self.places(counters.get("places", 0))
        return dataclasses.replace(
            base,
            buildings=found.buildings,
            pois=found.pois,
            places_revision=found.revision,
            at=at,
        )

    def advance(
        self,
        *,
        layer: str,
        revision: int,
        to_revision: int,
        written: Sequence[tuple[ImportSummary, gpd.GeoDataFrame]],
    ) -> None:
        """Derive the layer's versions after this process's own write, without reading them.

        ``written`` are the summaries of :meth:`gis.repository.Repository.replace_units`
        and the units written, level by level, in the transaction that took
        the boundaries from ``revision`` to ``to_revision`` (read inside it:
        nothing else changed in between). Without the versions at ``revision``
        in memory nothing is done (the next request reads them).
        """
        key = (layer, revision)
        with self._versions._lock:
            old = self._versions._items.get(key)
        if old is None:
            return
        self._versions.get((layer, to_revision), lambda: _advanced(old, layer, written))

    def places(self, revision: int | None = None) -> Places:
        """Return the places at the ``places`` revision (the current one when not given)."""
        if revision is None:
            with self.db.reader() as repo:
                revision = repo.revisions().get("places", 0)
        return self._places.get(revision, lambda: _long_lived(_read_places(self.db, revision)))

    def clear(self) -> None:
        """Forget everything (the next request reads again)."""
        for part in (self._versions, self._states, self._places):
            part.clear()


_CACHES: weakref.WeakKeyDictionary[Database, StateCache] = weakref.WeakKeyDictionary()
_CACHES_LOCK = threading.Lock()


def state_cache(db: Database) -> StateCache:
    """Return the state cache of ``db`` (made on first use)."""
    with _CACHES_LOCK:
        found = _CACHES.get(db)
        if found is None:
            found = _CACHES[db] = StateCache(db)
        return found


def cached_state(db: Database, *, layer: str, at: datetime | None = None) -> LayerState:
    """Return ``layer`` at ``at`` from ``db``'s state cache (see :class:`StateCache`)."""
    return state_cache(db).state(layer=layer, at=at)


def places(db: Database) -> Places:
    """Return the current places of ``db`` from its state cache."""
    return state_cache(db).places()


def clear(db: Database) -> None:
    """Forget ``db``'s cached states (tests that compare with a fresh read)."""
    with _CACHES_LOCK:
        found = _CACHES.pop(db, None)
    if found is not None:
        found.clear()


def _long_lived(value: _T) -> _T:
    """Return ``value`` (just read from the database) once it is kept out of the collector's scans.

    A layer's versions or the places are hundreds of thousands of objects
    kept until their revision is evicted; see :mod:`gis._heap`. A read
    already costs seconds, the collection there a tenth of that.
    """
    keep_long_lived()
    return value


def _advanced(
    old: _Versions, layer: str, written: Sequence[tuple[ImportSummary, gpd.GeoDataFrame]]
) -> _Versions:
    """Return the versions after a write: ended ones get their end, new ones are added."""
    every = old.every
    ends = old.ends.copy()
    levels = every["level"].to_numpy(dtype=object)
    codes = every["code"].astype(str).to_numpy(dtype=object)
    added = []
    taken = {name: set(found) for name, found in old.taken.items()}
    latest = dict(old.latest)
    for summary, units in written:
        when = summary.valid_from
        ended = set(summary.updated) | set(summary.retired)
        for i in np.flatnonzero((levels == summary.level) & np.isin(codes, list(ended))):
            if old.starts[i] <= when and (ends[i] is None or pd.isna(ends[i]) or ends[i] > when):
                ends[i] = when
        fresh = set(summary.created) | set(summary.updated)
        new = units[units["code"].astype(str).isin(fresh)]
        if len(new):
            added.append(
                new.assign(layer=layer, level=summary.level, valid_from=when, valid_to=None)
            )
            taken.setdefault(summary.level, set()).update(new["code"].astype(str))
            latest[summary.level] = max(
                [when, *([latest[summary.level]] if summary.level in latest else [])]
            )
    rows = every.assign(valid_to=ends)
    if added:
        rows = pd.concat([rows, *[a[list(every.columns)] for a in added]], ignore_index=True)
    # The order the database reads them in: by level, code and start.
    rank = {lv.name: i for i, lv in enumerate(old.spec.levels)}
    rows = rows.assign(_rank=[rank.get(str(v), len(rank)) for v in rows["level"]])
    rows = rows.sort_values(["_rank", "code", "valid_from"], kind="stable", ignore_index=True)
    rows = gpd.GeoDataFrame(rows.drop(columns="_rank"), geometry="geometry", crs=STORAGE_CRS)
    starts = rows["valid_from"].to_numpy(dtype=object)
    new_ends = rows["valid_to"].to_numpy(dtype=object)
    return _Versions(
        spec=old.spec,
        every=rows,
        starts=starts,
        ends=new_ends,
        instants=sorted({*starts, *(e for e in new_ends if e is not None and not pd.isna(e))}),
        taken=taken,
        latest=latest,
    )


# -- reading -------------------------------------------------------------------------


def read_versions(repo: Repository, *, layer: str) -> _Versions:
    """Read every version of ``layer``'s units (inside an open read transaction)."""
    if layer not in {summary.name for summary in repo.list_layers()}:
        raise NotFoundError(f"no layer {layer!r}", field="layer")
    spec = repo.layer_spec(name=layer)
    every = repo.units_frame(layer=layer, all_versions=True)
    starts = every["valid_from"].to_numpy(dtype=object)
    ends = every["valid_to"].to_numpy(dtype=object)
    instants = sorted({*starts, *(e for e in ends if e is not None and not pd.isna(e))})
    levels = every["level"].to_numpy(dtype=object)
    codes = every["code"].astype(str).to_numpy(dtype=object)
    taken: dict[str, set[str]] = {}
    latest: dict[str, datetime] = {}
    for level, code, start in zip(levels, codes, starts, strict=True):
        taken.setdefault(str(level), set()).add(code)
        if str(level) not in latest or start > latest[str(level)]:
            latest[str(level)] = start
    return _Versions(
        spec=spec,
        every=every,
        starts=starts,
        ends=ends,
        instants=instants,
        taken=taken,
        latest=latest,
    )


def state_at(versions: _Versions, at: datetime, revision: int) -> LayerState:
    """Return the units valid at ``at``, every level, with their spatial indexes built."""
    every = versions.every
    valid = np.array(
        [
            start <= at and (end is None or pd.isna(end) or end > at)
            for start, end in zip(versions.starts, versions.ends, strict=True)
        ],
        dtype=bool,
    )
    current = every[valid]
    levels = {}
    etags: dict[str, str] = {}
    for level in versions.spec.levels:
        frame = current[current["level"] == level.name]
        etags.update(
            (str(c), unit_etag(str(c), v))
            for c, v in zip(frame["code"], frame["valid_from"], strict=True)
        )
        frame = frame[[*UNIT_COLUMNS, frame.geometry.name]].reset_index(drop=True)
        frame.sindex  # noqa: B018 (built now, once, not by concurrent readers)
        levels[level.name] = frame
    return LayerState(
        spec=versions.spec,
        levels=levels,
        taken=versions.taken,
        etags=etags,
        revision=revision,
        latest=versions.latest,
        at=at,
    )


def _read_places(db: Database, revision: int) -> Places:
    with db.reader() as repo:
        frame = repo.places.buildings_frame()
        pois = repo.places.pois_table()
    buildings = gpd.GeoDataFrame(
        frame[BUILDING_COLUMNS], geometry=frame.geometry.values, crs=frame.crs
    ).reset_index(drop=True)
    buildings["entrance"] = [
        None if pd.isna(x) or pd.isna(y) else shapely.Point(float(x), float(y))
        for x, y in zip(buildings["entrance_lon"], buildings["entrance_lat"], strict=True)
    ]
    buildings.sindex  # noqa: B018 (built now, once)
    points = (
        shapely.points(pois["lon"].astype(float).to_numpy(), pois["lat"].astype(float).to_numpy())
        if len(pois)
        else np.array([], dtype=object)
    )
    return Places(
        revision=revision,
        buildings=buildings,
        pois=pois,
        poi_points=np.asarray(points, dtype=object),
        poi_tree=shapely.STRtree(points),
        poi_keys=pois["key"].to_numpy(dtype=object),
        poi_names=pois["name"].to_numpy(dtype=object),
    )
