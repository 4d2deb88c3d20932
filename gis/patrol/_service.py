"""Patrol services for the CLI and the API: a unit or area, a network, a plan.

There is no stored street layer yet, so every request names a network file
(OSM PBF or any line file); the unit comes from the database (``unit``) or
from a polygon file (``area``). Without either, the whole network is covered.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from pyproj import CRS
from shapely.geometry.base import BaseGeometry

from gis.errors import InputError
from gis.patrol._network import Mode, StreetNetwork, read_network
from gis.patrol._plan import Checkpoint, PatrolPlan, plan_patrol
from gis.repository import Database

__all__ = [
    "NO_STREET_LAYER",
    "UnitArea",
    "area_from_file",
    "load_unit",
    "parse_checkpoint",
    "parse_lonlat",
    "plan_for",
]

#: Said when a unit is named without a network.
NO_STREET_LAYER = (
    "no stored street layer yet: give the streets with --network FILE "
    "(an OSM .osm.pbf or a line file: GeoJSON, GeoPackage, Shapefile, KML...)"
)


@dataclass(frozen=True)
class UnitArea:
    """The polygon to cover, in ``crs``, with the unit's code and name when known."""

    geometry: BaseGeometry
    crs: CRS
    code: str | None = None
    name: str | None = None
    layer: str | None = None


def load_unit(
    db: Database, *, code: str, layer: str | None = None, at: datetime | None = None
) -> UnitArea:
    """Return a stored unit's boundary (CGCS2000).

    Raises
    ------
    NotFoundError
        No such unit (or the code is in several layers and none is named).
    """
    from gis.units import unit_detail

    unit = unit_detail(db, code=code, layer=layer, at=at)["unit"]
    return UnitArea(
        geometry=unit["geometry"],
        crs=CRS.from_epsg(4490),
        code=str(unit["code"]),
        name=None if unit.get("name") is None else str(unit["name"]),
        layer=str(unit["layer"]),
    )


def area_from_file(path: str | Path, *, label: str | None = None) -> UnitArea:
    """Return the union of the polygons of a boundary file as the area to cover.

    Raises
    ------
    InputError
        Unreadable file, no CRS, no polygon.
    """
    from gis.io import read_frame

    shown = label if label is not None else str(path)
    frame = read_frame(path, label=shown)
    if frame.crs is None:
        raise InputError(f"{shown}: the area file has no CRS", field="area")
    polygons = frame[frame.geometry.geom_type.isin(["Polygon", "MultiPolygon"])]
    if polygons.empty:
        raise InputError(f"{shown}: has no polygon to cover", field="area")
    code = None
    if "code" in polygons and len(polygons) == 1:
        code = str(polygons["code"].iloc[0])
    return UnitArea(polygons.geometry.union_all(), CRS(polygons.crs), code=code)


def parse_lonlat(text: str, *, field: str = "start") -> tuple[float, float]:
    """Parse ``"LON,LAT"`` (WGS84).

    Raises
    ------
    InputError
        Not two numbers, or not a lon/lat.
    """
    parts = text.replace("，", ",").split(",")
    try:
        lon, lat = (float(p) for p in parts)
    except ValueError:
        raise InputError(
            f"{field} {text!r} is not LON,LAT (e.g. 118.59,24.91)", field=field
        ) from None
    if not (-180 <= lon <= 180 and -90 <= lat <= 90):
        raise InputError(f"{field} {text!r} is not a WGS84 lon,lat", field=field)
    return lon, lat


def parse_checkpoint(text: str) -> Checkpoint:
    """Parse ``"NAME@LON,LAT"`` (or just ``"LON,LAT"``) into a checkpoint."""
    name, _, where = text.rpartition("@")
    lon, lat = parse_lonlat(where, field="checkpoint")
    return Checkpoint(name.strip() or where.strip(), lon, lat)


def plan_for(
    network_path: str | Path,
    *,
    area: UnitArea | None = None,
    mode: Mode = "walk",
    start: tuple[float, float] | None = None,
    checkpoints: list[Checkpoint] | None = None,
    max_length_m: float | None = None,
    label: str | None = None,
) -> PatrolPlan:
    """Read the network (around the area) and plan the unit's patrol."""
    network = network_for(network_path, area=area, mode=mode, label=label)
    return plan_patrol(
        network,
        area=None if area is None else area.geometry,
        area_crs=CRS.from_epsg(4326) if area is None else area.crs,
        start=start,
        checkpoints=checkpoints or [],
        max_length_m=max_length_m,
    )


def network_for(
    network_path: str | Path,
    *,
    area: UnitArea | None = None,
    mode: Mode = "walk",
    label: str | None = None,
) -> StreetNetwork:
    """Read the network, split at the area's edge."""
    return read_network(
        network_path,
        mode=mode,
        area=None if area is None else area.geometry,
        area_crs=CRS.from_epsg(4326) if area is None else area.crs,
        label=label,
    )
