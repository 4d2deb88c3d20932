"""Incidents on an offline folium map: points by status over a choropleth of the evaluation."""

from __future__ import annotations

import math
from collections.abc import Mapping

import folium
import geopandas as gpd
import pandas as pd

from gis.crs import STORAGE_CRS
from gis.maps._offline import offline_map

__all__ = ["incidents_map"]

#: Point colours: overdue first, then the review queue, open, closed.
_COLOURS = {"overdue": "#c0392b", "review": "#7f8c8d", "open": "#e67e22", "closed": "#27ae60"}
_RAMP = ("#fee8c8", "#fdbb84", "#e34a33", "#b30000")
_FINISHED = frozenset({"resolved", "closed", "rejected", "merged"})


def incidents_map(
    incidents: pd.DataFrame,
    *,
    units: gpd.GeoDataFrame | None = None,
    values: Mapping[str, float | None] | None = None,
    measure: str = "incidents",
    now: pd.Timestamp | None = None,
) -> folium.Map:
    """Draw incidents as points coloured by state, over units shaded by ``values``.

    Parameters
    ----------
    incidents : pandas.DataFrame
        ``lon``, ``lat`` (CGCS2000), ``status``, ``category``, ``public_id``
        and ``deadline_at`` (as :func:`gis.incidents.service.frame` gives).
    units : geopandas.GeoDataFrame, optional
        Units with a ``code`` column, drawn as outlines (shaded with ``values``).
    values : mapping, optional
        ``code -> value`` of the evaluation (e.g. incidents, overdue rate).
    measure : str
        What ``values`` are, for the tooltip.
    now : pandas.Timestamp, optional
        When an open incident past its deadline counts as overdue (default now).

    Examples
    --------
    >>> frame = pd.DataFrame({"lon": [118.58], "lat": [24.91], "status": ["dispatched"],
    ...                       "category": ["0101"], "public_id": ["x"],
    ...                       "deadline_at": [pd.Timestamp("2000-01-01", tz="UTC")]})
    >>> html = incidents_map(frame).get_root().render()
    >>> "#c0392b" in html and "http://" not in html.replace("http://www.w3.org", "")
    True
    """
    now = now or pd.Timestamp.now(tz="UTC")
    located = incidents[incidents["lon"].notna() & incidents["lat"].notna()]
    bounds = _bounds(located, units)
    m = offline_map(control_scale=True)
    m.fit_bounds([(bounds[1], bounds[0]), (bounds[3], bounds[2])])
    if units is not None and len(units):
        _choropleth(units, values or {}, measure).add_to(m)
    group = folium.FeatureGroup(name="incidents 事件")
    for row in located.itertuples(index=False):
        state = _state(row, now)
        folium.CircleMarker(
            (float(row.lat), float(row.lon)),
            radius=5,
            color="#ffffff",
            weight=1,
            fill=True,
            fill_color=_COLOURS[state],
            fill_opacity=0.9,
            tooltip=f"{row.public_id} {row.category} {row.status} ({state})",
        ).add_to(group)
    group.add_to(m)
    folium.LayerControl().add_to(m)
    return m


def _state(row: object, now: pd.Timestamp) -> str:
    status = getattr(row, "status", "")
    if status in _FINISHED:
        return "closed"
    if status == "review":
        return "review"
    deadline = getattr(row, "deadline_at", None)
    if deadline is not None and not pd.isna(deadline) and pd.Timestamp(deadline) < now:
        return "overdue"
    return "open"


def _choropleth(
    units: gpd.GeoDataFrame, values: Mapping[str, float | None], measure: str
) -> folium.GeoJson:
    frame = units.to_crs(STORAGE_CRS)[["code", units.geometry.name]].copy()
    frame["value"] = [values.get(str(code)) for code in frame["code"]]
    finite = [v for v in frame["value"] if v is not None and math.isfinite(v)]
    top = max(finite) if finite else 1.0

    def style(feature: dict[str, object]) -> dict[str, object]:
        value = feature["properties"]["value"]  # type: ignore[index]
        if value is None or top <= 0:
            return {"color": "#555555", "weight": 1, "fillOpacity": 0.0}
        shade = _RAMP[min(len(_RAMP) - 1, int(len(_RAMP) * float(value) / top))]
        return {"color": "#555555", "weight": 1, "fillColor": shade, "fillOpacity": 0.6}

    frame["value"] = frame["value"].astype(object)
    return folium.GeoJson(
        frame.to_json(),
        name=f"{measure} 评估",
        style_function=style,
        tooltip=folium.GeoJsonTooltip(fields=["code", "value"], aliases=["unit", measure]),
    )


def _bounds(located: pd.DataFrame, units: gpd.GeoDataFrame | None) -> tuple[float, ...]:
    if units is not None and len(units):
        return tuple(float(v) for v in units.to_crs(STORAGE_CRS).total_bounds)
    if len(located):
        return (
            float(located["lon"].min()) - 0.005,
            float(located["lat"].min()) - 0.005,
            float(located["lon"].max()) + 0.005,
            float(located["lat"].max()) + 0.005,
        )
    return (73.0, 18.0, 135.0, 54.0)  # China
