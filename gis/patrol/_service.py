"""Patrol services for the CLI and the API: a unit or area, a network, a plan.

The streets come from the street layer stored in the database
(:mod:`gis.streets`; the sample city ships one) unless a request names a
network file (OSM PBF or any line file). The unit comes from the database
(``unit``) or from a polygon file (``area``). Without either, the whole
network is covered.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from pyproj import CRS
from shapely.geometry.base import BaseGeometry

from gis.errors import InputError
from gis.patrol._export import write_plan
from gis.patrol._network import Mode, StreetNetwork, network_from_frame, read_network
from gis.patrol._plan import Checkpoint, PatrolPlan, plan_patrol
from gis.patrol._schedule import Balance, WeekSchedule, plan_week
from gis.repository import Database

__all__ = [
    "NO_STREET_LAYER",
    "STREET_MARGIN_M",
    "UnitArea",
    "area_from_file",
    "load_unit",
    "network_for",
    "parse_checkpoint",
    "parse_lonlat",
    "parse_visited",
    "plan_for",
    "save_plan",
    "schedule_for",
    "stored_network",
    "unit_places",
]

#: Said when no network file is given and no street is stored.
NO_STREET_LAYER = (
    "no stored street layer: import the streets (`tongge streets import FILE`) or give "
    "them with --network FILE (an OSM .osm.pbf or a line file: GeoJSON, GeoPackage, "
    "Shapefile, KML...)"
)
#: Stored streets are read this far around the unit: the shortest way between
#: two of its streets may leave it.
STREET_MARGIN_M = 1000.0
#: Stored streets read around a unit for its weekly visits (m).
SCHEDULE_MARGIN_M = 300.0
#: Stored street attributes carrying the traffic rules (OSM tags).
_RULE_ATTRIBUTES = ("oneway", "junction")


@dataclass(frozen=True)
class UnitArea:
    """The polygon to cover, in ``crs``, with the unit's code and name when known."""

    geometry: BaseGeometry
    crs: CRS
    code: str | None = None
    name: str | None = None
    layer: str | None = None
    level: str | None = None
    valid_from: datetime | None = None


def clip_arguments(area: UnitArea | None) -> dict[str, Any]:
    """Return the ``area`` and ``area_crs`` keywords of :func:`check_route` and :func:`score_track`.

    Without a unit (a whole uploaded network) nothing is clipped.
    """
    if area is None:
        return {"area": None, "area_crs": "EPSG:4326"}
    return {"area": area.geometry, "area_crs": area.crs}


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
        level=str(unit["level"]),
        valid_from=unit["valid_from"].to_pydatetime()
        if hasattr(unit["valid_from"], "to_pydatetime")
        else unit["valid_from"],
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
    db: Database | None,
    network_path: str | Path | None,
    *,
    area: UnitArea | None = None,
    mode: Mode = "walk",
    start: tuple[float, float] | None = None,
    checkpoints: list[Checkpoint] | None = None,
    max_length_m: float | None = None,
    label: str | None = None,
) -> PatrolPlan:
    """Build the network (a file, else the stored streets) and plan the unit's patrol."""
    network = network_for(db, network_path, area=area, mode=mode, label=label)
    return plan_patrol(
        network,
        area=None if area is None else area.geometry,
        area_crs=CRS.from_epsg(4326) if area is None else area.crs,
        start=start,
        checkpoints=checkpoints or [],
        max_length_m=max_length_m,
    )


def network_for(
    db: Database | None,
    network_path: str | Path | None,
    *,
    area: UnitArea | None = None,
    mode: Mode = "walk",
    label: str | None = None,
) -> StreetNetwork:
    """Return the network of a file, or of the stored streets when none is given.

    Streets are split at the area's edge.

    Raises
    ------
    InputError
        Unreadable file, or no file and no stored street (:data:`NO_STREET_LAYER`).
    """
    if network_path is None:
        if db is None:
            raise InputError(NO_STREET_LAYER, field="network")
        return stored_network(db, area=area, mode=mode)
    return read_network(
        network_path,
        mode=mode,
        area=None if area is None else area.geometry,
        area_crs=CRS.from_epsg(4326) if area is None else area.crs,
        label=label,
    )


def stored_network(
    db: Database,
    *,
    area: UnitArea | None = None,
    mode: Mode = "walk",
    margin_m: float = STREET_MARGIN_M,
) -> StreetNetwork:
    """Return the network of the stored street layer around ``area`` (all of it without).

    Parameters
    ----------
    db : Database
        The registry holding the streets (:mod:`gis.streets`).
    area : UnitArea, optional
        Only streets within ``margin_m`` of its bounding box are read (spatial index).
    mode : {"walk", "drive"}
        Driving respects the ``oneway``/``junction`` attributes (OSM tags) of the streets.
    margin_m : float
        How far around the area streets are read.

    Raises
    ------
    InputError
        No street is stored (there or at all).
    """
    from gis.streets import streets_frame

    bbox = None if area is None else _bbox_around(area, margin_m)
    frame = streets_frame(db, bbox=bbox)
    if frame.empty:
        with db.reader() as repo:
            stored = repo.streets.count()
        if bbox is None or not stored:
            raise InputError(NO_STREET_LAYER, field="network")
        raise InputError(
            "no stored street lies in or near the unit: import its streets "
            "(`tongge streets import FILE`) or give them with --network FILE",
            field="network",
        )
    for key in _RULE_ATTRIBUTES:
        frame[key] = [a.get(key) for a in frame["attributes"]]
    return network_from_frame(
        frame.drop(columns=["attributes"]),
        mode=mode,
        area=None if area is None else area.geometry,
        area_crs=CRS.from_epsg(4326) if area is None else area.crs,
        label="stored streets",
    )


def save_plan(plan: PatrolPlan, target: str | Path, *, area: UnitArea | None, datum: str) -> Path:
    """Write ``plan`` (format from the suffix) naming the unit in every route."""
    return write_plan(
        plan,
        target,
        datum=datum,
        unit_code=area.code if area else None,
        unit_name=area.name if area else None,
    )


def _bbox_around(area: UnitArea, margin_m: float) -> tuple[float, float, float, float]:
    import geopandas as gpd

    from gis.crs import local_projected_crs

    shape = gpd.GeoSeries([area.geometry], crs=area.crs).to_crs(4490)
    local = local_projected_crs(*shape.iloc[0].centroid.coords[0])
    grown = shape.to_crs(local).envelope.buffer(margin_m).to_crs(4490)
    x0, y0, x1, y1 = grown.total_bounds
    return float(x0), float(y0), float(x1), float(y1)


#: Building uses and place categories visited weekly as shops (商铺).
SHOP_USES = ("shop",)
SHOP_CATEGORIES = ("shop", "enterprise", "restaurant", "market")


def unit_places(db: Database, area: UnitArea) -> pd.DataFrame:
    """Return the households and shops of a unit to visit: ``id``, ``kind``, ``lon``, ``lat``.

    A building belongs to the unit when its entrance (else a point inside
    its footprint) lies in the unit; its households are visited at that
    point (household keys only: no names, no persons). Shops are buildings
    used as shops and places (POIs) of a shop category inside the unit.
    """
    import geopandas as gpd
    import shapely

    bbox = _bbox_around(area, 0.0)
    unit = gpd.GeoSeries([area.geometry], crs=area.crs).to_crs(4490).iloc[0]
    with db.reader() as repo:
        buildings = repo.places.buildings_frame(bbox=bbox)
        pois = repo.places.pois_table()
    if len(buildings):
        inner = shapely.point_on_surface(buildings.geometry.values)
        lon = buildings["entrance_lon"].astype(float).to_numpy()
        lat = buildings["entrance_lat"].astype(float).to_numpy()
        known = np.isfinite(lon) & np.isfinite(lat)
        lon = np.where(known, lon, shapely.get_x(inner))
        lat = np.where(known, lat, shapely.get_y(inner))
        inside = shapely.covers(unit, shapely.points(lon, lat))
        buildings = buildings.assign(lon=lon, lat=lat)[inside]
    with db.reader() as repo:
        households = repo.places.households_table(building_keys=list(buildings["key"]))
    door = buildings.set_index("key")[["lon", "lat"]]
    rows = [
        pd.DataFrame(
            {
                "id": households["key"].astype(str),
                "kind": "household",
                "lon": door.loc[households["building_key"], "lon"].to_numpy(),
                "lat": door.loc[households["building_key"], "lat"].to_numpy(),
            }
        ),
        pd.DataFrame(
            {
                "id": buildings.loc[buildings["use"].isin(SHOP_USES), "key"].astype(str),
                "kind": "shop",
                "lon": buildings.loc[buildings["use"].isin(SHOP_USES), "lon"],
                "lat": buildings.loc[buildings["use"].isin(SHOP_USES), "lat"],
            }
        ),
    ]
    if len(pois):
        shops = pois[pois["category"].isin(SHOP_CATEGORIES)]
        shops = shops[shapely.covers(unit, shapely.points(shops["lon"], shops["lat"]))]
        rows.append(
            pd.DataFrame(
                {
                    "id": shops["key"].astype(str),
                    "kind": "shop",
                    "lon": shops["lon"],
                    "lat": shops["lat"],
                }
            )
        )
    return pd.concat(rows, ignore_index=True)


def schedule_for(
    db: Database,
    network_path: str | Path | None,
    *,
    area: UnitArea,
    days: int = 5,
    visited: list[str] | None = None,
    mode: Mode = "walk",
    start: tuple[float, float] | None = None,
    start_date: date | None = None,
    visit_minutes: float = 5.0,
    balance: Balance = "time",
    tolerance: float = 0.15,
    label: str | None = None,
) -> WeekSchedule:
    """Plan the unit's week of visits (:func:`gis.patrol.plan_week`) on its streets."""
    places = unit_places(db, area)
    if network_path is None:
        # A day walks between the unit's own doors: streets 300 m around are
        # plenty for the ways between them, and each day is routed many times.
        network = stored_network(db, area=area, mode=mode, margin_m=SCHEDULE_MARGIN_M)
    else:
        network = network_for(db, network_path, area=area, mode=mode, label=label)
    return plan_week(
        network,
        places,
        days=days,
        visited=visited,
        area=area.geometry,
        area_crs=area.crs,
        start=start,
        start_date=start_date,
        visit_minutes=visit_minutes,
        balance=balance,
        tolerance=tolerance,
    )


def parse_visited(text: str) -> list[str]:
    """Parse last week's visited ids: one a line, or separated by commas."""
    parts = text.replace("，", ",").replace("\n", ",").split(",")
    return [p.strip() for p in parts if p.strip()]
