"""Buildings, households and workload of a unit and everything under it.

Buildings belong to units by the assignment rules of :mod:`gis.assign`
(applied at the lowest level of the layer, on the current boundaries); a
household belongs where its building does. Assignments and workloads are
cached until boundaries or places change (an import, or a dated version
starting or ending).
"""

from __future__ import annotations

import dataclasses
import threading
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import geopandas as gpd
import pandas as pd

from gis.access.jurisdiction import Jurisdiction
from gis.assign import Workload
from gis.errors import InputError, NotFoundError
from gis.gridindex import GridIndex
from gis.locate._indexes import IndexCache
from gis.places._service import assign_places, unit_workload
from gis.repository import Database
from gis.revisions import RevisionClock
from gis.times import parse_time

__all__ = ["BasemapPlaces", "UnitPlaces", "VisibleUnit"]

_BUILDING_COLUMNS = [
    "key",
    "address",
    "floors",
    "use",
    "entrance_lon",
    "entrance_lat",
    "households",
    "persons",
    "unit",
    "rule",
    "cut",
]
_HOUSEHOLD_COLUMNS = ["key", "building_key", "unit_no", "floor", "room", "persons"]


@dataclass(frozen=True)
class BasemapPlaces:
    """What the map draws under the units: footprints and points of interest.

    Attributes
    ----------
    buildings : GeoDataFrame
        Footprints (EPSG:4490) with ``key``, ``use``, ``floors``.
    units : dict
        Per layer, the unit code of each building (row for row; None: none).
    pois : DataFrame
        ``key``, ``name``, ``category``, ``lon``, ``lat`` (EPSG:4490).
    streets : GeoDataFrame, optional
        Street centre lines (EPSG:4490) with ``name`` and ``class``.
    """

    buildings: gpd.GeoDataFrame
    units: dict[str, Any]
    pois: pd.DataFrame
    streets: gpd.GeoDataFrame | None = None


@dataclass(frozen=True)
class VisibleUnit:
    """A current unit a caller may see: ``whole`` when seen entirely, else by area only."""

    layer: str
    code: str
    whole: bool = True

    @property
    def target(self) -> str:
        """The audit log's name for it."""
        return f"unit:{self.layer}:{self.code}"


class UnitPlaces:
    """Answers "which buildings and households lie in this unit" from cached assignments.

    Every question takes the caller's :class:`~gis.access.Jurisdiction`: a
    unit seen entirely shows all its places; a unit of another layer that
    overlaps the caller's area shows only the places inside that area (the
    buildings assigned to a unit the caller sees entirely).

    Parameters
    ----------
    db : Database
        The registry.
    clock : RevisionClock
        The shared change counters.
    indexes : IndexCache, optional
        The locate service's indexes: assignment and workload use its index
        of each level instead of building their own.
    """

    def __init__(
        self, db: Database, *, clock: RevisionClock, indexes: IndexCache | None = None
    ) -> None:
        self._db = db
        self._clock = clock
        self._indexes = indexes
        self._lock = threading.Lock()
        self._stamp: tuple[Any, ...] | None = None
        self._layers: dict[str, pd.DataFrame] = {}
        self._trees: dict[str, dict[str, list[str]]] = {}
        self._buildings: gpd.GeoDataFrame | None = None
        self._households: pd.DataFrame | None = None
        self._pois: pd.DataFrame | None = None
        self._streets: gpd.GeoDataFrame | None = None
        self._workloads: dict[str, Workload] = {}

    def unit(self, *, layer: str, code: str, jurisdiction: Jurisdiction) -> VisibleUnit:
        """Return a current unit the caller may see (NotFoundError like a missing one)."""
        # Missing and out-of-jurisdiction units answer alike, and in the same
        # time: the jurisdiction is checked before the database is asked.
        missing = NotFoundError(f"no unit {code!r} in layer {layer!r}", field="code")
        if not jurisdiction.sees(layer, code):
            raise missing
        with self._db.reader() as repo:
            if repo.units_frame(layer=layer, codes=[code]).empty:
                raise missing
        return VisibleUnit(layer=layer, code=code, whole=jurisdiction.sees_wholly(layer, code))

    def visible_workload(
        self,
        *,
        layer: str,
        jurisdiction: Jurisdiction,
        level: str | None = None,
        at: datetime | None = None,
    ) -> Workload:
        """Return the workload of the units seen entirely (listed and summed), of ``level``."""
        result = self.workload(layer=layer, at=at)
        visible = jurisdiction.wholly_codes(layer)
        if visible is not None:
            result = result.restricted_to(visible)
        if level is not None:
            result = dataclasses.replace(result, units=result.units[result.units["level"] == level])
        return result

    def workload(self, *, layer: str, at: datetime | None = None) -> Workload:
        """Return the workload of a layer's units (see :func:`gis.places.unit_workload`).

        The current workload is cached; other times are computed on demand.
        """
        if at is not None:
            return unit_workload(self._db, layer=layer, at=at)
        with self._lock:
            self._check()
            found = self._workloads.get(layer)
            stamp = self._stamp
        if found is None:
            found = unit_workload(self._db, layer=layer, indexes=self._level_index)
            with self._lock:
                # Keep it only if nothing changed while it was computed.
                if self._stamp == stamp:
                    self._workloads[layer] = found
        return found

    def households_per_unit(self, layer: str) -> dict[str, int]:
        """Return ``{code: households}`` of every current unit of ``layer`` (rolled up).

        Empty when no buildings are stored yet (nothing to count).
        """
        try:
            units = self.workload(layer=layer).units
        except InputError:  # no buildings stored
            return {}
        return dict(zip(units["code"], units["households"].fillna(0).astype(int), strict=True))

    def basemap(self, layers: list[str]) -> BasemapPlaces:
        """Return footprints, POIs, streets and each building's unit in ``layers`` (map tiles)."""
        units = {layer: self._assigned(layer)["unit"].to_numpy(dtype=object) for layer in layers}
        with self._lock:
            self._check()
            if self._buildings is None or self._pois is None or self._streets is None:
                with self._db.reader() as repo:
                    if self._buildings is None:
                        self._buildings = repo.places.buildings_frame()
                    if self._pois is None:
                        self._pois = repo.places.pois_table()
                    if self._streets is None:
                        self._streets = repo.streets.frame()
            buildings, pois, streets = self._buildings, self._pois, self._streets
        # Assignments follow the buildings frame's order (key order), row for row.
        return BasemapPlaces(buildings=buildings, units=units, pois=pois, streets=streets)

    def buildings(
        self, *, layer: str, code: str, jurisdiction: Jurisdiction | None = None
    ) -> pd.DataFrame:
        """Return the buildings assigned to ``code`` or a unit below it (no footprints).

        With ``jurisdiction``, of a unit not seen entirely only those inside
        the caller's area.
        """
        table = self._assigned(layer)
        table = table[table["unit"].isin(self._subtree(layer, code))]
        if jurisdiction is not None and not jurisdiction.sees_wholly(layer, code):
            table = table[table["key"].isin(self._inside(jurisdiction))]
        return table.reset_index(drop=True)

    def households(
        self, *, layer: str, code: str, jurisdiction: Jurisdiction | None = None
    ) -> pd.DataFrame:
        """Return the households in the buildings of ``code`` and the units below it."""
        keys = set(self.buildings(layer=layer, code=code, jurisdiction=jurisdiction)["key"])
        table = self._household_table()
        return table[table["building_key"].isin(keys)].reset_index(drop=True)

    def visible_building(self, *, key: str, jurisdiction: Jurisdiction) -> dict[str, Any]:
        """Return a building inside the caller's area with its unit in each visible layer.

        A building outside the area answers like one that does not exist.
        """
        with self._db.reader() as repo:
            layers = [summary.name for summary in repo.list_layers()]
        found, units = self.building(key=key, layers=layers)
        if not jurisdiction.unrestricted:
            if not any(jurisdiction.sees_wholly(layer, code) for layer, code in units.items()):
                raise NotFoundError(f"no building {key!r}", field="key")
            units = {layer: code for layer, code in units.items() if jurisdiction.sees(layer, code)}
        return {**found, "units": units}

    def building(self, *, key: str, layers: list[str]) -> tuple[dict[str, Any], dict[str, str]]:
        """Return one building and its unit in each of ``layers`` (NotFoundError if absent)."""
        units: dict[str, str] = {}
        record: dict[str, Any] | None = None
        for layer in layers:
            table = self._assigned(layer)
            hit = table[table["key"] == key]
            if hit.empty:
                continue
            record = hit.iloc[0].to_dict()
            if record["unit"] is not None:
                units[layer] = str(record["unit"])
        if record is None:
            raise NotFoundError(f"no building {key!r}", field="key")
        record.pop("unit", None)
        record.pop("rule", None)
        return record, units

    def _inside(self, jurisdiction: Jurisdiction) -> set[str]:
        # Keys of the buildings assigned to a unit the caller sees entirely.
        keys: set[str] = set()
        for layer, codes in jurisdiction.wholly.items():
            table = self._assigned(layer)
            keys.update(table.loc[table["unit"].isin(codes), "key"])
        return keys

    # -- caches -------------------------------------------------------------

    def _check(self) -> None:
        revisions = self._clock.current()
        stamp = (*revisions.current_boundaries, revisions.places)
        if stamp != self._stamp:
            self._stamp = stamp
            self._workloads.clear()
            self._layers.clear()
            self._trees.clear()
            self._buildings = None
            self._households = None
            self._pois = None
            self._streets = None

    def _assigned(self, layer: str) -> pd.DataFrame:
        with self._lock:
            self._check()
            if layer not in self._layers:
                self._layers[layer] = self._assign(layer)
            return self._layers[layer]

    def _assign(self, layer: str) -> pd.DataFrame:
        when = parse_time(None)
        with self._db.reader() as repo:
            spec = repo.layer_spec(name=layer)
            present = set(repo.units_frame(layer=layer, at=when)["level"])
            if self._buildings is None:
                self._buildings = repo.places.buildings_frame()
        lowest = next((lv.name for lv in reversed(spec.levels) if lv.name in present), None)
        if lowest is None or self._buildings.empty:
            return pd.DataFrame(columns=_BUILDING_COLUMNS)
        assignment = assign_places(
            self._db, layer=layer, level=lowest, at=when, index=self._level_index(layer, lowest)
        ).frame
        table = pd.DataFrame(self._buildings.drop(columns=["geometry", "attributes"]))
        table = table.merge(assignment[["key", "unit", "rule", "cut"]], on="key", how="left")
        table["rule"] = table["rule"].astype(str)
        return table[_BUILDING_COLUMNS]

    def _level_index(self, layer: str, level: str) -> GridIndex | None:
        # The locate service's index of the level valid now (checked against
        # the units by the callee: a rebuild may be under way).
        if self._indexes is None:
            return None
        found = self._indexes.get().find(layer, level)
        return found.index if found is not None else None

    def _subtree(self, layer: str, code: str) -> set[str]:
        with self._lock:
            children = self._trees.get(layer)
            if children is None:
                with self._db.reader() as repo:
                    pairs = repo.unit_tree(layer=layer, at=parse_time(None))
                children = {}
                for child, parent in pairs:
                    children.setdefault(parent or "", []).append(child)
                self._trees[layer] = children
        found = {code}
        stack = [code]
        while stack:
            for child in children.get(stack.pop(), []):
                if child not in found:
                    found.add(child)
                    stack.append(child)
        return found

    def _household_table(self) -> pd.DataFrame:
        with self._lock:
            self._check()
            if self._households is None:
                with self._db.reader() as repo:
                    self._households = repo.places.households_table()
            return self._households[_HOUSEHOLD_COLUMNS]
