"""Folium maps of units and validation problems, for people rather than parsers.

Leaflet shows WGS84 on its web-Mercator tiles; CGCS2000 agrees with WGS84 to
centimetres, so stored coordinates are drawn as they are. No tiles are
fetched here: the map is HTML, and the browser loads tiles only if online.
"""

from __future__ import annotations

from collections.abc import Iterable

import folium
import geopandas as gpd
import shapely

from gis.crs import STORAGE_CRS
from gis.maps._offline import offline_map
from gis.validate import Problem, ValidationReport

__all__ = ["problems_map", "units_map"]

_RULE_COLOURS = {
    "overlap": "#d7191c",
    "gap": "#2c7bb6",
    "outside_parent": "#fdae61",
    "parent_not_covered": "#7b3294",
    "invalid_geometry": "#000000",
}


def units_map(
    units: gpd.GeoDataFrame,
    *,
    label: str = "code",
    m: folium.Map | None = None,
    name: str = "units",
    colour: str = "#3388ff",
) -> folium.Map:
    """Draw units as outlines with their code (and name) as tooltip.

    Examples
    --------
    >>> from shapely import box
    >>> frame = gpd.GeoDataFrame({"code": ["1"]}, geometry=[box(118.5, 24.9, 118.6, 25.0)],
    ...                          crs=4490)
    >>> type(units_map(frame)).__name__
    'Map'
    """
    frame = units.to_crs(STORAGE_CRS)
    fields = [c for c in (label, "name", "level", "parent_code") if c in frame]
    frame = frame[[*fields, frame.geometry.name]]
    target = m or _base_map(frame.total_bounds)
    folium.GeoJson(
        frame.to_json(),
        name=name,
        style_function=lambda _f: {"color": colour, "weight": 1, "fillOpacity": 0.05},
        tooltip=folium.GeoJsonTooltip(fields=fields),
    ).add_to(target)
    return target


def problems_map(
    report: ValidationReport,
    *,
    units: gpd.GeoDataFrame | None = None,
    include_warnings: bool = True,
) -> folium.Map:
    """Draw the problems (and warnings) of a report, over the units when given."""
    items: list[Problem] = list(report.problems)
    if include_warnings:
        items += report.warnings
    located = [p for p in items if p.geometry is not None or p.lon is not None]
    bounds = _bounds(located, units)
    m = _base_map(bounds)
    if units is not None and len(units):
        units_map(units, m=m, name="units 单元", colour="#555555")
    for problem in located:
        colour = _RULE_COLOURS.get(problem.rule, "#e66101")
        text = f"<b>{problem.rule}</b> {' '.join(problem.codes)}<br>{problem.message}"
        if problem.geometry is not None and shapely.get_dimensions(problem.geometry) == 2:
            folium.GeoJson(
                shapely.geometry.mapping(problem.geometry),
                style_function=lambda _f, c=colour: {"color": c, "weight": 3, "fillOpacity": 0.5},
                tooltip=text,
            ).add_to(m)
        if problem.lon is not None and problem.lat is not None:
            folium.CircleMarker(
                (problem.lat, problem.lon), radius=6, color=colour, fill=True, tooltip=text
            ).add_to(m)
    folium.LayerControl().add_to(m)
    return m


def _base_map(bounds: Iterable[float]) -> folium.Map:
    minx, miny, maxx, maxy = bounds
    m = offline_map(control_scale=True)
    m.fit_bounds([(miny, minx), (maxy, maxx)])
    return m


def _bounds(problems: list[Problem], units: gpd.GeoDataFrame | None) -> tuple[float, ...]:
    if units is not None and len(units):
        return tuple(units.to_crs(STORAGE_CRS).total_bounds)
    points = [
        shapely.Point(p.lon, p.lat) for p in problems if p.lon is not None and p.lat is not None
    ]
    if not points:
        return (73.0, 18.0, 135.0, 54.0)  # China
    return tuple(shapely.bounds(shapely.multipoints(points)))
