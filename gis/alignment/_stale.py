"""Stale references: units of one layer that name grids or communities no longer valid.

A police layer is often kept with the civil grids it was drawn against, by
code (a beat's ``grid_codes``, ``community_code``). When the civil layer
changes — grids renumbered, split, merged or retired — those references go
stale; same-grid work against them would be done on a map that no longer
exists.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import datetime
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from gis.alignment._units import metric_for
from gis.crs import STORAGE_CRS

__all__ = ["REFERENCE_FIELDS", "stale_edges", "stale_references"]

#: Columns or attribute keys of a B unit that name units of layer A or its parents.
REFERENCE_FIELDS = (
    "grid_code",
    "grid_codes",
    "grids",
    "community_code",
    "community_codes",
    "communities",
)


def stale_references(
    b_units: gpd.GeoDataFrame,
    *,
    valid: set[str],
    history: pd.DataFrame | None = None,
    at: datetime | None = None,
) -> list[dict[str, Any]]:
    """List the references of ``b_units`` to codes that are not valid.

    Parameters
    ----------
    b_units : GeoDataFrame
        Units with a ``code`` and references in columns or in an
        ``attributes`` mapping (see :data:`REFERENCE_FIELDS`): a code, a list
        of codes, or codes separated by commas, spaces or semicolons.
    valid : set of str
        The codes valid now (layer A and its parents at the time checked).
    history : DataFrame, optional
        Every version of layer A's units (``code``, ``valid_to``): says when a
        stale code was retired.
    at : datetime, optional
        The time checked, for the message.

    Returns
    -------
    list of dict
        ``b_code``, ``field``, ``code``, ``retired`` (ISO time, or ``None``
        when the code never existed) and ``message``, by B code.

    Examples
    --------
    >>> import geopandas as gpd
    >>> from shapely import box
    >>> beats = gpd.GeoDataFrame({"code": ["b1"], "grid_codes": ["g1, g9"]},
    ...     geometry=[box(0, 0, 1, 1)], crs="EPSG:4490")
    >>> [r["code"] for r in stale_references(beats, valid={"g1", "g2"})]
    ['g9']
    """
    retired = _retired(history)
    out: list[dict[str, Any]] = []
    for _, row in b_units.iterrows():
        b_code = str(row["code"])
        for field, value in _references(row):
            for code in _codes(value):
                if code in valid:
                    continue
                when = retired.get(code)
                if when is not None:
                    message = (
                        f"{b_code} refers to {code} ({field}), retired on {when}: "
                        "it was drawn against an earlier version of the grids"
                    )
                else:
                    message = f"{b_code} refers to {code} ({field}), which does not exist"
                out.append(
                    {
                        "b_code": b_code,
                        "field": field,
                        "code": code,
                        "retired": when,
                        "message": message,
                    }
                )
    out.sort(key=lambda r: (r["b_code"], r["field"], r["code"]))
    return out


def _references(row: pd.Series) -> Iterable[tuple[str, Any]]:
    attributes = row.get("attributes")
    for field in REFERENCE_FIELDS:
        if field in row.index and not _empty(row[field]):
            yield field, row[field]
        elif isinstance(attributes, dict) and not _empty(attributes.get(field)):
            yield field, attributes[field]


def _codes(value: Any) -> list[str]:
    if isinstance(value, list | tuple | set):
        return [str(v).strip() for v in value if not _empty(v) and str(v).strip()]
    return [c for c in re.split(r"[,;\s、，]+", str(value)) if c]


def _empty(value: Any) -> bool:
    if value is None:
        return True
    if isinstance(value, float) and value != value:
        return True
    return isinstance(value, str) and not value.strip()


def _retired(history: pd.DataFrame | None) -> dict[str, str]:
    if history is None or history.empty or "valid_to" not in history:
        return {}
    ends: dict[str, str] = {}
    for code, valid_to in zip(history["code"].astype(str), history["valid_to"], strict=True):
        if valid_to is None or (isinstance(valid_to, float) and valid_to != valid_to):
            continue
        stamp = pd.Timestamp(valid_to)
        if pd.isna(stamp):
            continue
        text = stamp.isoformat()
        if code not in ends or text > ends[code]:
            ends[code] = text
    return ends


def stale_edges(
    b_units: gpd.GeoDataFrame,
    *,
    a_units: gpd.GeoDataFrame,
    history: gpd.GeoDataFrame,
    at: datetime,
    within_m: float = 0.5,
    min_length_m: float = 20.0,
) -> list[dict[str, Any]]:
    """List units of B drawn along edges of A that no longer exist (an earlier version of A).

    Parameters
    ----------
    b_units : GeoDataFrame
        Layer B (e.g. beats), any CRS.
    a_units : GeoDataFrame
        Layer A as valid at ``at`` (e.g. grids).
    history : GeoDataFrame
        Every version of layer A's units with ``code``, ``valid_from``,
        ``valid_to`` (EPSG:4490 or any CRS).
    at : datetime
        The time checked: versions that ended at or before it are earlier ones.
    within_m : float, default 0.5
        How close (m) a B edge must follow an old A edge.
    min_length_m : float, default 20
        Old edges shorter than this are not worth a finding.

    Returns
    -------
    list of dict
        ``b_code``, ``a_code`` (the earlier unit), ``valid_to`` (ISO time the
        version ended), ``length_m`` (of the old edge B follows) and ``message``.

    Examples
    --------
    ::

        before: | g1 | g2 |        now: | g1   | g2 |      beats: | b1 | b2 |

    >>> import geopandas as gpd
    >>> import pandas as pd
    >>> from datetime import datetime, timezone
    >>> from shapely import box
    >>> d = 0.001
    >>> cell = lambda x0, x1: box(118.6 + x0 * d, 24.9, 118.6 + x1 * d, 24.9 + d)
    >>> old, new = pd.Timestamp("2026-01-01T00:00Z"), pd.Timestamp("2026-06-01T00:00Z")
    >>> history = gpd.GeoDataFrame({"code": ["g1", "g2", "g1", "g2"],
    ...     "valid_from": [old, old, new, new], "valid_to": [new, new, None, None]},
    ...     geometry=[cell(0, 1), cell(1, 2), cell(0, 1.5), cell(1.5, 2)], crs="EPSG:4490")
    >>> grids = history[history.valid_to.isna()]
    >>> beats = gpd.GeoDataFrame({"code": ["b1", "b2"]},
    ...     geometry=[cell(0, 1), cell(1, 2)], crs="EPSG:4490")
    >>> [(r["b_code"], r["a_code"]) for r in stale_edges(
    ...     beats, a_units=grids, history=history, at=datetime(2026, 7, 1, tzinfo=timezone.utc))]
    [('b1', 'g1'), ('b1', 'g2'), ('b2', 'g1'), ('b2', 'g2')]
    """
    if history is None or history.empty or "valid_to" not in history:
        return []
    ends = pd.to_datetime(history["valid_to"], utc=True, errors="coerce")
    earlier = history[ends.notna() & (ends <= pd.Timestamp(at))]
    if earlier.empty or a_units.empty or b_units.empty:
        return []
    crs = STORAGE_CRS
    a_geoms = np.asarray(a_units.to_crs(crs).geometry.values, dtype=object)
    b_geoms = np.asarray(b_units.to_crs(crs).geometry.values, dtype=object)
    old_geoms = np.asarray(earlier.to_crs(crs).geometry.values, dtype=object)
    metric = metric_for(a_geoms, b_geoms)
    to_m = metric.project
    # Work in metres: buffers and lengths mean what they say.
    current = shapely.union_all(shapely.boundary(to_m(a_geoms)))
    near_current = shapely.buffer(current, within_m)
    old_edges = shapely.difference(shapely.boundary(to_m(old_geoms)), near_current)
    b_m = to_m(b_geoms)
    b_lines = shapely.boundary(b_m)
    tree = shapely.STRtree(b_lines)
    out: list[dict[str, Any]] = []
    codes = earlier["code"].astype(str).tolist()
    valid_to = ends[earlier.index]
    b_codes = b_units["code"].astype(str).tolist()
    for i, edge in enumerate(old_edges):
        if edge.is_empty or edge.length < min_length_m:
            continue
        for j in tree.query(edge, predicate="dwithin", distance=within_m).tolist():
            followed = shapely.intersection(edge, shapely.buffer(b_lines[j], within_m)).length
            if followed < min_length_m:
                continue
            ended = valid_to.iloc[i].isoformat()
            out.append(
                {
                    "b_code": b_codes[j],
                    "a_code": codes[i],
                    "valid_to": ended,
                    "length_m": round(float(followed), 1),
                    "message": (
                        f"{b_codes[j]} follows {followed:.0f} m of the edge of {codes[i]} "
                        f"as it was until {ended}: drawn against an earlier version"
                    ),
                }
            )
    unique = {(r["b_code"], r["a_code"], r["valid_to"]): r for r in out}
    return sorted(unique.values(), key=lambda r: (r["b_code"], r["a_code"], r["valid_to"]))
