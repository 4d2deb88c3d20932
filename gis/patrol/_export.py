"""Export patrol plans: GPX 1.1, styled KML, GeoJSON and a CSV of segments.

Coordinates are WGS84 lon/lat by default; ``datum="gcj02"`` or ``"bd09"``
shifts them for Chinese phone apps (Amap/Tencent, Baidu) with
:mod:`gis.datum` — the files then say so (GPX ``<desc>``, KML and GeoJSON
``datum`` property), since no format has a code for those offsets.

- GPX: one ``<rte>`` per route (the plan; a track is what was walked), a
  ``<wpt>`` per checkpoint, the unit code and figures in ``<extensions>``
  (namespace :data:`GPX_NS`). Written with gpxpy.
- KML: one styled Placemark per route and checkpoint with ExtendedData,
  readable by GDAL's KML and LIBKML drivers.
- GeoJSON (RFC 7946): route LineStrings and checkpoint Points with properties.
- CSV: one row per street traversal, in walking order.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from xml.etree import ElementTree
from xml.sax.saxutils import escape

import numpy as np
import pandas as pd
import shapely
from pyproj import CRS

from gis.crs import transformer
from gis.datum import wgs84_to_bd09, wgs84_to_gcj02
from gis.errors import InputError
from gis.files import write_csv
from gis.patrol._plan import Checkpoint, PatrolPlan, route_line

__all__ = [
    "DATUMS",
    "EXPORT_FORMATS",
    "GPX_NS",
    "plan_to_geojson",
    "stored_route_text",
    "write_plan",
]

EXPORT_FORMATS = ("gpx", "kml", "geojson", "csv")
DATUMS = ("wgs84", "gcj02", "bd09")
#: Namespace of tongge's GPX extensions (unit code, lengths).
GPX_NS = "https://tongge.cn/xmlschemas/patrol/1"
_COLOURS = ("ff0000ff", "ffff0000", "ff00aa00", "ff00a5ff", "ffff00ff", "ffffff00")


def write_plan(
    plan: PatrolPlan,
    path: str | Path,
    *,
    fmt: str | None = None,
    datum: str = "wgs84",
    unit_code: str | None = None,
    unit_name: str | None = None,
) -> Path:
    """Write ``plan`` to ``path`` as gpx, kml, geojson or csv.

    Parameters
    ----------
    plan : PatrolPlan
        The plan.
    path : str or Path
        Output file; its suffix gives the format when ``fmt`` is not given.
    fmt : {"gpx", "kml", "geojson", "csv"}, optional
        The format.
    datum : {"wgs84", "gcj02", "bd09"}
        Coordinates for the phone app that will show them.
    unit_code, unit_name : str, optional
        Written into every route (GPX extensions, KML ExtendedData, properties).

    Raises
    ------
    InputError
        Unknown format or datum.
    """
    target = Path(path)
    chosen = fmt or _format_of(target)
    if chosen not in EXPORT_FORMATS:
        raise InputError(
            f"unknown format {chosen!r}: use one of {', '.join(EXPORT_FORMATS)}", field="format"
        )
    if datum not in DATUMS:
        raise InputError(f"datum {datum!r} is not one of {', '.join(DATUMS)}", field="datum")
    routes, points = _wgs_geometries(plan, datum)
    meta = {"unit_code": unit_code, "unit_name": unit_name, "datum": datum}
    target.parent.mkdir(parents=True, exist_ok=True)
    if chosen == "gpx":
        target.write_text(_gpx(plan, routes, points, meta), encoding="utf-8")
    elif chosen == "kml":
        target.write_text(_kml(plan, routes, points, meta), encoding="utf-8")
    elif chosen == "geojson":
        body = plan_to_geojson(plan, datum=datum, unit_code=unit_code, unit_name=unit_name)
        target.write_text(json.dumps(body, ensure_ascii=False), encoding="utf-8")
    else:
        write_csv(_segment_table(plan, datum), target)
    return target


def plan_to_geojson(
    plan: PatrolPlan,
    *,
    datum: str = "wgs84",
    unit_code: str | None = None,
    unit_name: str | None = None,
) -> dict[str, Any]:
    """Return the plan as a GeoJSON FeatureCollection (routes, then checkpoints)."""
    routes, points = _wgs_geometries(plan, datum)
    features = []
    for number, (route, line) in enumerate(zip(plan.routes, routes, strict=True), start=1):
        features.append(
            {
                "type": "Feature",
                "geometry": shapely.geometry.mapping(line),
                "properties": {
                    "kind": "route",
                    "route": number,
                    **_route_properties(route),
                    "unit_code": unit_code,
                    "unit_name": unit_name,
                    "datum": datum,
                },
            }
        )
    for checkpoint, point in zip(plan.checkpoints, points, strict=True):
        features.append(
            {
                "type": "Feature",
                "geometry": shapely.geometry.mapping(point),
                "properties": {"kind": "checkpoint", "name": checkpoint.name, "datum": datum},
            }
        )
    return {"type": "FeatureCollection", "features": features}


def _format_of(path: Path) -> str:
    suffix = path.suffix.lower().lstrip(".")
    return {"json": "geojson"}.get(suffix, suffix)


def _route_properties(route: Any) -> dict[str, Any]:
    return {
        "length_m": round(route.length_m, 1),
        "street_m": round(route.street_m, 1),
        "deadhead_m": round(route.deadhead_m, 1),
        "segments": route.segments,
        "time_s": round(route.time_s),
        "checkpoints": ", ".join(route.checkpoints),
    }


def _shift(lon: np.ndarray, lat: np.ndarray, datum: str) -> tuple[np.ndarray, np.ndarray]:
    if datum == "gcj02":
        return wgs84_to_gcj02(lon, lat)
    if datum == "bd09":
        return wgs84_to_bd09(lon, lat)
    return lon, lat


def _wgs_geometries(
    plan: PatrolPlan, datum: str
) -> tuple[list[shapely.LineString], list[shapely.Point]]:
    to_wgs = transformer(plan.network.crs, CRS.from_epsg(4326))

    def convert(coords: np.ndarray) -> np.ndarray:
        lon, lat = to_wgs.transform(coords[:, 0], coords[:, 1])
        x, y = _shift(np.asarray(lon), np.asarray(lat), datum)
        return np.column_stack([np.round(x, 7), np.round(y, 7)])

    lines = [shapely.transform(route_line(r, plan.network), convert) for r in plan.routes]
    points = []
    for checkpoint in plan.checkpoints:
        x, y = _shift(np.array([checkpoint.lon]), np.array([checkpoint.lat]), datum)
        points.append(shapely.Point(round(float(x[0]), 7), round(float(y[0]), 7)))
    return lines, points


def _gpx(
    plan: PatrolPlan,
    routes: list[shapely.LineString],
    points: list[shapely.Point],
    meta: dict[str, Any],
) -> str:
    import gpxpy.gpx

    gpx = gpxpy.gpx.GPX()
    gpx.creator = "tongge 同格"
    gpx.nsmap["tongge"] = GPX_NS
    gpx.name = f"巡查路线 patrol {meta['unit_code'] or ''}".strip()
    gpx.description = f"datum {meta['datum']}"
    for checkpoint, point in zip(plan.checkpoints, points, strict=True):
        gpx.waypoints.append(
            gpxpy.gpx.GPXWaypoint(latitude=point.y, longitude=point.x, name=checkpoint.name)
        )
    for number, (route, line) in enumerate(zip(plan.routes, routes, strict=True), start=1):
        rte = gpxpy.gpx.GPXRoute(name=f"路线 {number}", number=number)
        rte.description = (
            f"{route.length_m:.0f} m, {route.street_m:.0f} m of streets, "
            f"{route.time_s / 60:.0f} min"
        )
        for x, y in line.coords:
            rte.points.append(gpxpy.gpx.GPXRoutePoint(latitude=y, longitude=x))
        rte.extensions.append(_extension(route, meta))
        gpx.routes.append(rte)
    xml: str = gpx.to_xml(version="1.1")
    return xml


def _extension(route: Any, meta: dict[str, Any]) -> ElementTree.Element:
    root = ElementTree.Element(f"{{{GPX_NS}}}patrol")
    values = {
        "unit_code": meta["unit_code"] or "",
        "unit_name": meta["unit_name"] or "",
        "datum": meta["datum"],
        "length_m": f"{route.length_m:.1f}",
        "street_m": f"{route.street_m:.1f}",
        "deadhead_m": f"{route.deadhead_m:.1f}",
    }
    for key, value in values.items():
        child = ElementTree.SubElement(root, f"{{{GPX_NS}}}{key}")
        child.text = value
    return root


def _kml(
    plan: PatrolPlan,
    routes: list[shapely.LineString],
    points: list[shapely.Point],
    meta: dict[str, Any],
) -> str:
    parts = [
        '<?xml version="1.0" encoding="UTF-8"?>',
        '<kml xmlns="http://www.opengis.net/kml/2.2"><Document>',
        f"<name>{escape('巡查路线 ' + (meta['unit_code'] or ''))}</name>",
    ]
    for k, colour in enumerate(_COLOURS):
        parts.append(
            f'<Style id="route{k}"><LineStyle><color>{colour}</color><width>4</width>'
            "</LineStyle></Style>"
        )
    parts.append('<Style id="checkpoint"><IconStyle><scale>1.2</scale></IconStyle></Style>')
    for number, (route, line) in enumerate(zip(plan.routes, routes, strict=True), start=1):
        data = {
            "route": number,
            **_route_properties(route),
            "unit_code": meta["unit_code"] or "",
            "unit_name": meta["unit_name"] or "",
            "datum": meta["datum"],
        }
        coords = " ".join(f"{x:.7f},{y:.7f}" for x, y in line.coords)
        parts.append(
            f"<Placemark><name>路线 {number}</name>"
            f"<styleUrl>#route{(number - 1) % len(_COLOURS)}</styleUrl>"
            f"{_extended(data)}<LineString><tessellate>1</tessellate>"
            f"<coordinates>{coords}</coordinates></LineString></Placemark>"
        )
    for checkpoint, point in zip(plan.checkpoints, points, strict=True):
        parts.append(
            f"<Placemark><name>{escape(checkpoint.name)}</name><styleUrl>#checkpoint</styleUrl>"
            f"{_extended({'kind': 'checkpoint', 'datum': meta['datum']})}"
            f"<Point><coordinates>{point.x:.7f},{point.y:.7f}</coordinates></Point></Placemark>"
        )
    parts.append("</Document></kml>")
    return "\n".join(parts)


def _extended(data: dict[str, Any]) -> str:
    cells = "".join(
        f'<Data name="{escape(str(k))}"><value>{escape(str(v))}</value></Data>'
        for k, v in data.items()
    )
    return f"<ExtendedData>{cells}</ExtendedData>"


def _segment_table(plan: PatrolPlan, datum: str) -> pd.DataFrame:
    seg = plan.network.segments
    to_wgs = transformer(plan.network.crs, CRS.from_epsg(4326))
    geoms = seg.geometry.values
    rows = []
    for number, route in enumerate(plan.routes, start=1):
        for order, ((s, forward), covers) in enumerate(
            zip(route.steps, route.covers, strict=True), start=1
        ):
            coords = shapely.get_coordinates(geoms[s])
            a, b = (coords[0], coords[-1]) if forward else (coords[-1], coords[0])
            lon, lat = to_wgs.transform([a[0], b[0]], [a[1], b[1]])
            x, y = _shift(np.asarray(lon), np.asarray(lat), datum)
            rows.append(
                {
                    "route": number,
                    "order": order,
                    "segment": int(s),
                    "name": seg["name"].iloc[s],
                    "length_m": round(float(seg["length"].iloc[s]), 1),
                    "covers": bool(covers),
                    "from_lon": round(float(x[0]), 7),
                    "from_lat": round(float(y[0]), 7),
                    "to_lon": round(float(x[1]), 7),
                    "to_lat": round(float(y[1]), 7),
                    "datum": datum,
                }
            )
    return pd.DataFrame(rows)


@dataclass(frozen=True)
class _StoredRoute:
    # The figures _gpx/_kml read from a route, for a stored one.
    length_m: float
    street_m: float
    deadhead_m: float
    segments: int
    time_s: float
    checkpoints: list[str]


@dataclass(frozen=True)
class _StoredPlan:
    routes: list[_StoredRoute]
    checkpoints: list[Checkpoint]


def stored_route_text(route: dict[str, Any], *, fmt: str, datum: str = "wgs84") -> str:
    """Return a stored route (:mod:`gis.patrol._routes`) as GPX 1.1, KML, GeoJSON or CSV text.

    Raises
    ------
    InputError
        Unknown format or datum.
    """
    if fmt not in EXPORT_FORMATS:
        raise InputError(
            f"unknown format {fmt!r}: use one of {', '.join(EXPORT_FORMATS)}", field="format"
        )
    if datum not in DATUMS:
        raise InputError(f"datum {datum!r} is not one of {', '.join(DATUMS)}", field="datum")
    figures = route["figures"]
    checkpoints = [Checkpoint(c["name"], c["lon"], c["lat"]) for c in route["checkpoints"]]
    plan = _StoredPlan(
        routes=[
            _StoredRoute(
                length_m=figures["length_m"],
                street_m=figures["street_m"],
                deadhead_m=figures["deadhead_m"],
                segments=figures["segments"],
                time_s=figures["time_s"],
                checkpoints=[c.name for c in checkpoints],
            )
        ],
        checkpoints=checkpoints,
    )
    to_wgs = transformer(CRS.from_epsg(4490), CRS.from_epsg(4326))

    def convert(coords: np.ndarray) -> np.ndarray:
        lon, lat = to_wgs.transform(coords[:, 0], coords[:, 1])
        x, y = _shift(np.asarray(lon), np.asarray(lat), datum)
        return np.column_stack([np.round(x, 7), np.round(y, 7)])

    line = shapely.transform(route["line"], convert)
    points = [shapely.transform(shapely.Point(c.lon, c.lat), convert) for c in checkpoints]
    meta = {"unit_code": route["unit_code"], "unit_name": route.get("name"), "datum": datum}
    if fmt == "gpx":
        return _gpx(plan, [line], points, meta)  # type: ignore[arg-type]
    if fmt == "kml":
        return _kml(plan, [line], points, meta)  # type: ignore[arg-type]
    if fmt == "geojson":
        properties = {
            "kind": "route",
            "route": route["id"],
            **_route_properties(plan.routes[0]),
            "unit_code": route["unit_code"],
            "layer": route["layer"],
            "staff_id": route["staff_id"],
            "shift": route["shift"],
            "datum": datum,
        }
        features = [
            {
                "type": "Feature",
                "geometry": shapely.geometry.mapping(line),
                "properties": properties,
            }
        ]
        features += [
            {
                "type": "Feature",
                "geometry": shapely.geometry.mapping(p),
                "properties": {"kind": "checkpoint", "name": c.name, "datum": datum},
            }
            for c, p in zip(checkpoints, points, strict=True)
        ]
        return json.dumps({"type": "FeatureCollection", "features": features}, ensure_ascii=False)
    table = pd.DataFrame(
        [
            {"order": k, "name": name, "length_m": length, "covers": bool(covers)}
            for k, (name, length, covers) in enumerate(route["steps"], start=1)
        ],
        columns=["order", "name", "length_m", "covers"],
    )
    return str(write_csv(table))
