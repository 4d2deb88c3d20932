"""What every edit operation takes (a layer's current state) and returns (a change set)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from functools import cached_property
from typing import Any, Literal

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from pyproj import CRS
from shapely.geometry.base import BaseGeometry

from gis.crs import STORAGE_CRS, local_projected_crs
from gis.layers import LayerSpec
from gis.validate import Problem, Tolerances

__all__ = [
    "GRID_SIZE",
    "OPERATIONS",
    "SNAP_TOLERANCE_M",
    "UNIT_COLUMNS",
    "ChangeSet",
    "EditOptions",
    "LayerState",
    "LevelChange",
    "Operation",
    "frame_from_arrays",
    "unit_etag",
]

#: The precision grid every edited geometry is snapped to, in degrees
#: (1e-7° ≈ 1 cm, the grid the sample city is built on). Overlays run with
#: this grid size (GEOS snap-rounding), so both sides of a new edge get the
#: very same vertices.
GRID_SIZE = 1e-7
#: Drawn vertices this close to an existing boundary vertex or edge snap to it.
SNAP_TOLERANCE_M = 2.0
#: The columns of a unit frame, besides the geometry.
UNIT_COLUMNS = ("code", "name", "parent_code", "kind", "attributes")

Operation = Literal["transfer", "reshape", "split", "merge", "carve", "retire", "auto_split"]
OPERATIONS: tuple[str, ...] = (
    "transfer",
    "reshape",
    "split",
    "merge",
    "carve",
    "retire",
    "auto_split",
)


@dataclass(frozen=True)
class EditOptions:
    """How an operation treats children, snapping and buildings (keyword options).

    Attributes
    ----------
    cascade : {"new", "merge"} or None
        How children cut by a new parent edge follow (see
        :func:`gis.coverage.cascade_children`); ``None`` refuses such an edit.
    snap_m : float
        Drawn vertices within this many metres of a boundary vertex or edge
        snap to it (default 2 m).
    force : bool
        Accept an edge that cuts a building (the building is flagged as cut).
    tolerances : Tolerances
        Sliver tolerances (pieces under them are noise, not ground).
    """

    cascade: Literal["new", "merge"] | None = "new"
    snap_m: float = SNAP_TOLERANCE_M
    force: bool = False
    tolerances: Tolerances = field(default_factory=Tolerances)


@dataclass
class LayerState:
    """A layer as it stands: every level's current units, the codes ever used, the places.

    Attributes
    ----------
    spec : LayerSpec
        The layer's levels, top first.
    levels : mapping of level name to GeoDataFrame
        The current units of each level (:data:`UNIT_COLUMNS` and geometry,
        EPSG:4490); a level without units may be missing or empty.
    taken : mapping of level name to set of str
        Every code each level ever used (retired ones too): new codes never
        reuse one. Defaults to the current codes.
    buildings : GeoDataFrame, optional
        Building footprints (``key``, geometry; EPSG:4490): an edge may not
        cut one unless forced.
    pois : DataFrame, optional
        Points of interest (``key``, ``name``, ``building_key``, ``lon``,
        ``lat``), for :func:`carve` by POI.
    etags : mapping of str to str
        The ETag of each unit's current version (read from the database);
        a change set keeps those of the units it changes.
    revision : int, optional
        The database's boundary revision the state was read at.
    latest : mapping of level name to datetime
        When each level's newest stored version starts (a new one must start later).
    read_buildings : callable, optional
        Reads the buildings in a bounding box, when ``buildings`` is not given
        (a stored layer: only the buildings around an edit are read).
    streets : GeoDataFrame, optional
        Street centre lines (EPSG:4490) drawn vertices also snap to.
    at : datetime, optional
        The instant whose units these are (read from a database).
    places_revision : int, optional
        The database's places revision the buildings and POIs were read at.
    """

    spec: LayerSpec
    levels: Mapping[str, gpd.GeoDataFrame]
    taken: Mapping[str, set[str]] = field(default_factory=dict)
    buildings: gpd.GeoDataFrame | None = None
    pois: pd.DataFrame | None = None
    etags: Mapping[str, str] = field(default_factory=dict)
    revision: int | None = None
    latest: Mapping[str, datetime] = field(default_factory=dict)
    read_buildings: Callable[[tuple[float, float, float, float]], gpd.GeoDataFrame] | None = None
    streets: gpd.GeoDataFrame | None = None
    at: datetime | None = None
    places_revision: int | None = None

    def buildings_in(self, area: BaseGeometry) -> gpd.GeoDataFrame | None:
        """Return the buildings whose footprint intersects ``area`` (EPSG:4490), if known."""
        if self.buildings is not None:
            frame = self.buildings
        elif self.read_buildings is not None:
            frame = self.read_buildings(tuple(area.bounds))
        else:
            return None
        if frame.empty:
            return frame
        return frame.iloc[np.sort(frame.sindex.query(area, predicate="intersects"))].reset_index(
            drop=True
        )

    def frame(self, level: str) -> gpd.GeoDataFrame:
        """Return the current units of ``level`` (an empty frame when it has none)."""
        frame = self.levels.get(level)
        if frame is None:
            return empty_units()
        return frame

    def codes_taken(self, level: str) -> set[str]:
        """Return every code ``level`` ever used."""
        from gis.edits._arrays import level_arrays  # it builds on this module

        # The level's codes as read once per frame (not a pass over its arrow column).
        return set(self.taken.get(level, set())) | set(level_arrays(self.frame(level)).rows)

    def projected(self) -> CRS:
        """Return the metric CRS edits of this layer are measured in."""
        for level in self.spec.levels:
            frame = self.frame(level.name)
            if len(frame):
                minx, miny, maxx, maxy = frame.geometry.total_bounds
                return local_projected_crs((minx + maxx) / 2, (miny + maxy) / 2)
        return local_projected_crs(118.6, 24.9)


@dataclass(frozen=True)
class LevelChange:
    """One level's part of a change set.

    Attributes
    ----------
    level : str
        The level's name.
    before : GeoDataFrame
        Every affected unit as it was (changed and retired ones).
    after : GeoDataFrame
        Every affected unit as it will be (changed and created ones).
    created, changed, retired : tuple of str
        The level's codes made, re-shaped (or re-parented) and ended.
    """

    level: str
    before: gpd.GeoDataFrame
    after: gpd.GeoDataFrame
    created: tuple[str, ...] = ()
    changed: tuple[str, ...] = ()
    retired: tuple[str, ...] = ()

    @property
    def touched(self) -> bool:
        """Whether anything changes at this level."""
        return bool(self.created or self.changed or self.retired)

    @cached_property
    def box(self) -> BaseGeometry:
        """Return the union of the bounding boxes of its units before and after.

        As :func:`gis.edits._arrays.envelope` of both sides, made once per
        change: the checks, the assignments and the impact all ask.
        """
        from gis.edits._arrays import envelope  # it builds on this module

        return envelope([self.before, self.after])

    @cached_property
    def ground(self) -> dict[str, BaseGeometry]:
        """Return, per unit whose ground changes, the ground changing hands.

        See :func:`gis.edits._ground.changed_ground` (made once per change:
        the cut-building check, the nesting check and the building
        assignments all ask).
        """
        from gis.edits._ground import changed_ground  # it builds on this module

        return changed_ground(
            (self.before["code"], self.before.geometry.values),
            (self.after["code"], self.after.geometry.values),
        )


@dataclass(frozen=True)
class ChangeSet:
    """What one edit does to a layer, every level, before anything is written.

    Attributes
    ----------
    op : str
        The operation (:data:`OPERATIONS`).
    params : mapping
        The planner's intent as given (codes, the drawn geometry as GeoJSON,
        options), JSON-ready.
    layer, level : str
        The layer and the level the edit was made at.
    levels : tuple of LevelChange
        The edited level first, then every level below that followed.
    cut_buildings : tuple of str
        Buildings a new edge cuts (only with ``force``).
    warnings : tuple of Problem
        Things the planner should know (a unit left in several parts...).
    etags : mapping of str to str
        The ETag of the version of every unit it changes or retires, as
        computed against (empty for a state not read from a database).
    """

    op: str
    params: Mapping[str, Any]
    layer: str
    level: str
    levels: tuple[LevelChange, ...]
    cut_buildings: tuple[str, ...] = ()
    warnings: tuple[Problem, ...] = ()
    etags: Mapping[str, str] = field(default_factory=dict)

    @property
    def created(self) -> list[str]:
        """Codes created, every level."""
        return [c for lv in self.levels for c in lv.created]

    @property
    def changed(self) -> list[str]:
        """Codes whose unit changes, every level."""
        return [c for lv in self.levels for c in lv.changed]

    @property
    def retired(self) -> list[str]:
        """Codes ended, every level."""
        return [c for lv in self.levels for c in lv.retired]

    def level_change(self, level: str) -> LevelChange | None:
        """Return the part of the change set at ``level`` (``None`` if untouched)."""
        return next((lv for lv in self.levels if lv.level == level), None)

    def apply_to(self, state: LayerState) -> LayerState:
        """Return the layer state after this change set (``state`` is left as it is)."""
        levels = dict(state.levels)
        taken = {name: set(codes) for name, codes in state.taken.items()}
        for change in self.levels:
            frame = state.frame(change.level)
            gone = set(change.retired) | set(change.changed)
            kept = frame[~frame["code"].astype(str).isin(gone)]
            levels[change.level] = concat_units([kept, change.after]).sort_values(
                "code", ignore_index=True
            )
            taken.setdefault(change.level, set()).update(
                str(c) for c in [*frame["code"], *change.created]
            )
        return LayerState(
            spec=state.spec,
            levels=levels,
            taken=taken,
            buildings=state.buildings,
            pois=state.pois,
            revision=state.revision,
            latest=state.latest,
            read_buildings=state.read_buildings,
            streets=state.streets,
            at=state.at,
            places_revision=state.places_revision,
        )


def unit_etag(code: str, valid_from: object) -> str:
    """Return the ETag of a unit version (its code and the start of its validity).

    Examples
    --------
    >>> unit_etag("350502001001001", "2026-01-01T00:00:00+00:00")
    '"350502001001001@2026-01-01T00:00:00+00:00"'
    """
    stamp = valid_from.isoformat() if hasattr(valid_from, "isoformat") else str(valid_from)
    return f'"{code}@{stamp}"'


def problem_geojson(problem: Problem) -> dict[str, Any]:
    """Return a problem's JSON with its offending geometry as GeoJSON (EPSG:4490)."""
    geometry = problem.geometry
    return {
        **problem.to_dict(),
        "geometry": None if geometry is None else shapely.geometry.mapping(geometry),
    }


def empty_units() -> gpd.GeoDataFrame:
    """Return a unit frame without rows."""
    # As the public constructor makes it (empty float columns), without its checks.
    return frame_from_arrays({c: np.zeros(0) for c in UNIT_COLUMNS}, np.zeros(0, dtype=object))


def concat_units(frames: list[gpd.GeoDataFrame]) -> gpd.GeoDataFrame:
    """Concatenate unit frames (unit columns and geometry only), EPSG:4490."""
    parts = [f for f in frames if len(f)]
    if not parts:
        return empty_units()
    # One frame built from the joined columns: edits concatenate small frames
    # often, and each intermediate (Geo)DataFrame costs more than the data.
    columns = {
        c: np.concatenate(
            [
                f[c].to_numpy(dtype=object) if c in f else np.full(len(f), None, dtype=object)
                for f in parts
            ]
        )
        for c in UNIT_COLUMNS
    }
    geometry = np.concatenate([np.asarray(f.geometry.values, dtype=object) for f in parts])
    return frame_from_arrays(columns, geometry)


def frame_from_arrays(columns: Mapping[str, Any], geometry: Any) -> gpd.GeoDataFrame:
    """Return a GeoDataFrame (EPSG:4490) of ``columns`` and a ``geometry`` column.

    Built as geopandas builds the result of a pandas operation on a
    GeoDataFrame (a pandas frame whose geometry column is already a
    GeometryArray, re-labelled): the public constructor re-checks the
    geometry and its CRS, about 2 ms a frame, and a preview builds dozens.
    """
    values = gpd.array.GeometryArray(np.asarray(geometry, dtype=object), crs=STORAGE_CRS)
    plain = pd.DataFrame({**columns, "geometry": values}, copy=False)
    from_mgr = getattr(gpd.GeoDataFrame, "_from_mgr", None)
    if from_mgr is None:  # pragma: no cover - a pandas without it: the public way
        return gpd.GeoDataFrame(plain, geometry="geometry", crs=STORAGE_CRS)
    frame: gpd.GeoDataFrame = from_mgr(plain._mgr, plain._mgr.axes)
    frame._geometry_column_name = "geometry"
    return frame


def as_multipolygon(geometry: shapely.Geometry) -> shapely.MultiPolygon:
    """Return ``geometry``'s polygons as one MultiPolygon (the stored type)."""
    if geometry is None or geometry.is_empty:
        return shapely.MultiPolygon()
    if geometry.geom_type == "MultiPolygon":
        return geometry
    if geometry.geom_type == "Polygon":
        return shapely.MultiPolygon([geometry])
    parts = [p for p in shapely.get_parts(geometry) if p.geom_type == "Polygon"]
    parts += [
        q
        for p in shapely.get_parts(geometry)
        if p.geom_type == "MultiPolygon"
        for q in shapely.get_parts(p)
    ]
    return shapely.MultiPolygon(parts)
