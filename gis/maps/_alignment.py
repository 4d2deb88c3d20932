"""A folium map of an alignment report: both layers and every violation."""

from __future__ import annotations

import folium
import geopandas as gpd
import shapely

from gis.alignment._check import AlignmentReport
from gis.crs import STORAGE_CRS
from gis.maps._offline import offline_map
from gis.maps._units import units_map

__all__ = ["alignment_map"]

KIND_COLOURS = {
    "grid_split_across_beats": "#d7191c",
    "grid_outside_beats": "#2c7bb6",
    "beat_not_union_of_grids": "#fdae61",
    "beat_crosses_community": "#7b3294",
    "station_cuts_community": "#008837",
}


def alignment_map(
    report: AlignmentReport,
    a_units: gpd.GeoDataFrame,
    b_units: gpd.GeoDataFrame,
    *,
    a_name: str = "grids 网格",
    b_name: str = "beats 警务责任区",
) -> folium.Map:
    """Draw the violations of a report over both layers.

    A units are thin grey outlines, B units thicker blue ones; each violation
    is its faulty ground filled in the colour of its kind, with a marker at
    its location, and a tooltip giving the kind, codes and message. Each kind
    is a layer that can be switched off. No tiles are fetched here.

    Parameters
    ----------
    report : AlignmentReport
        From :func:`check_alignment` (or ``Proposal.report``).
    a_units, b_units : GeoDataFrame
        The two layers, any CRS.
    a_name, b_name : str
        Layer names in the map's layer control.

    Returns
    -------
    folium.Map
        Save it with ``.save("alignment.html")``.

    Examples
    --------
    >>> import geopandas as gpd
    >>> from shapely import box
    >>> grids = gpd.GeoDataFrame({"code": ["g1", "g2"]}, crs="EPSG:4490",
    ...     geometry=[box(118.600, 24.900, 118.601, 24.901), box(118.601, 24.900, 118.602, 24.901)])
    >>> beats = gpd.GeoDataFrame({"code": ["b1", "b2"]}, crs="EPSG:4490",
    ...     geometry=[box(118.600, 24.900, 118.6017, 24.901),
    ...               box(118.6017, 24.900, 118.602, 24.901)])
    >>> from gis.alignment import check_alignment
    >>> m = alignment_map(check_alignment(grids, beats), grids, beats)
    >>> type(m).__name__, "grid_split_across_beats" in m.get_root().render()
    ('Map', True)
    """
    a_frame = a_units.to_crs(STORAGE_CRS)
    b_frame = b_units.to_crs(STORAGE_CRS)
    minx, miny, maxx, maxy = shapely.total_bounds(
        [*a_frame.geometry.values, *b_frame.geometry.values]
    )
    m = offline_map(control_scale=True)
    m.fit_bounds([(miny, minx), (maxy, maxx)])
    units_map(a_frame, m=m, name=a_name, colour="#777777")
    folium.GeoJson(
        b_frame[["code", b_frame.geometry.name]].to_json(),
        name=b_name,
        style_function=lambda _f: {"color": "#2b5fad", "weight": 3, "fillOpacity": 0.0},
        tooltip=folium.GeoJsonTooltip(fields=["code"]),
    ).add_to(m)
    groups: dict[str, folium.FeatureGroup] = {}
    for violation in report.violations:
        colour = KIND_COLOURS.get(violation.kind, "#e66101")
        if violation.kind not in groups:
            count = report.counts()[violation.kind]
            groups[violation.kind] = folium.FeatureGroup(name=f"{violation.kind} ({count})")
            groups[violation.kind].add_to(m)
        group = groups[violation.kind]
        text = f"<b>{violation.kind}</b> {' '.join(violation.codes)}<br>{violation.message}"
        if violation.geometry is not None and not violation.geometry.is_empty:
            folium.GeoJson(
                shapely.geometry.mapping(violation.geometry),
                style_function=lambda _f, c=colour: {"color": c, "weight": 2, "fillOpacity": 0.5},
                tooltip=text,
            ).add_to(group)
        if violation.lon is not None and violation.lat is not None:
            folium.CircleMarker(
                (violation.lat, violation.lon), radius=6, color=colour, fill=True, tooltip=text
            ).add_to(group)
    folium.LayerControl().add_to(m)
    return m
