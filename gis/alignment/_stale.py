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
import pandas as pd

__all__ = ["REFERENCE_FIELDS", "stale_references"]

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
