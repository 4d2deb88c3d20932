"""Evaluation of incident handling per unit and period (治理成效评估).

Pure functions on a :class:`pandas.DataFrame` of incidents, one row per
incident, as :func:`gis.incidents.service.frame` returns it. Columns read:

- ``received_at`` (required): aware time the incident was taken in; it
  decides the period (in China time, where people count days and months);
- the grouping column (``by``): a unit column ``unit:<layer>:<level>``
  (asked for as ``by="<layer>:<level>"``) or any other column such as
  ``category``, ``class_code`` or ``channel``;
- ``status``, ``category``, ``closed_at``, ``deadline_at``, ``lon``/``lat``
  (CGCS2000), ``feedback_score``, ``id``; ``resolved_at`` when present.

Measures, per group and period (:data:`MEASURES`):

- ``incidents``: incidents received; ``open``: not yet closed, rejected or
  merged; ``closed``; ``merged`` (duplicates folded into another one);
- ``median_hours_to_close``: median hours from receipt to closure, over
  the closed ones;
- ``overdue`` and ``overdue_rate``: incidents handled after their deadline,
  or still open past it at ``now``, over those with a deadline (merged and
  rejected ones are not handled, so they count in neither);
- ``repeats`` and ``repeat_rate``: incidents within ``radius_m`` metres of
  an earlier incident (a place reported again, 重复投诉); distances are
  measured in a projected CRS, never in degrees;
- ``feedback_count`` and ``feedback_mean``: residents' scores on closure;
- ``category:<code>``: incidents per category, one column each.

Missing values are ``None``/NaN in the frame and ``null`` in JSON, never 0.
"""

from __future__ import annotations

import math
import tempfile
from collections.abc import Collection, Iterable
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd
from pyproj import Transformer
from scipy.spatial import cKDTree

from gis.crs import local_projected_crs
from gis.errors import InputError
from gis.repository import Database
from gis.times import LOCAL_ZONE, utc_now

__all__ = [
    "CATEGORY_PREFIX",
    "DEFAULT_RADIUS_M",
    "MEASURES",
    "PERIODS",
    "UNASSIGNED",
    "Period",
    "evaluate",
    "group_column",
    "period_labels",
    "to_csv",
    "to_records",
    "to_xlsx",
    "unit_levels",
]

Period = Literal["day", "week", "month", "quarter", "year", "all"]
PERIODS: tuple[str, ...] = ("day", "week", "month", "quarter", "year", "all")

#: The measures of every row, in column order (category counts follow).
MEASURES: tuple[str, ...] = (
    "incidents",
    "open",
    "closed",
    "merged",
    "median_hours_to_close",
    "overdue",
    "overdue_rate",
    "repeats",
    "repeat_rate",
    "feedback_count",
    "feedback_mean",
)
#: The group of incidents that lie in no unit of the layer (review queue, outside).
UNASSIGNED = "unassigned"
CATEGORY_PREFIX = "category:"
_NOT_HANDLED = frozenset({"merged", "rejected"})
_FINISHED = frozenset({"closed", "merged", "rejected"})
DEFAULT_RADIUS_M = 50.0
#: Columns of the incident frame that are not units.
_BASE_COLUMNS = frozenset(
    {
        "id",
        "public_id",
        "channel",
        "category",
        "class_code",
        "status",
        "event_time",
        "received_at",
        "deadline_at",
        "closed_at",
        "resolved_at",
        "lon",
        "lat",
        "feedback_score",
        "review_reason",
        "escalated_to",
        "merged_into",
    }
)
#: Columns that cannot be a group (times, numbers, ids).
_NOT_GROUPS = frozenset(
    {
        "id",
        "public_id",
        "event_time",
        "received_at",
        "deadline_at",
        "closed_at",
        "resolved_at",
        "lon",
        "lat",
        "feedback_score",
    }
)


def group_column(by: str, columns: Iterable[str], unit_levels: Collection[str] = ()) -> str | None:
    """Return the frame column that ``by`` names.

    ``"<layer>:<level>"`` names the unit column: ``<layer>_<level>`` (as
    :func:`gis.incidents.service.frame` writes it) or ``unit:<layer>:<level>``;
    anything else must be a column of the frame. None: a level of
    ``unit_levels`` (the registry's ``layer:level`` names) that no incident
    of the frame was located in (every one is then unassigned there).

    Raises
    ------
    InputError
        When the frame has no such column (naming the field ``by``).

    Examples
    --------
    >>> group_column("governance:grid", ["id", "governance_grid"])
    'governance_grid'
    >>> group_column("category", ["id", "category"])
    'category'
    """
    available = list(columns)
    candidates = [f"unit:{by}", by.replace(":", "_", 1)] if ":" in by else [by]
    for candidate in candidates:
        if candidate in available and candidate not in _NOT_GROUPS:
            return candidate
    if by in unit_levels:
        return None
    units = sorted(
        set(unit_levels)
        | {
            c.removeprefix("unit:").replace("_", ":", 1)
            for c in available
            if c.startswith("unit:") or (c not in _BASE_COLUMNS and "_" in c)
        }
    )
    choices = ", ".join([*units, "category", "class_code", "channel"])
    raise InputError(f"by: cannot group by {by[:80]!r}: use one of {choices}", field="by")


def unit_levels(db: Database) -> frozenset[str]:
    """Return every ``layer:level`` of the registry (what ``by`` may name besides columns)."""
    from gis.units import list_layers

    return frozenset(f"{s.name}:{level.name}" for s in list_layers(db) for level in s.levels)


def period_labels(times: pd.Series, period: str) -> pd.Series:
    """Return each time's period label in China time.

    Labels sort in time order: ``2026-11-05`` (day), ``2026-W45`` (ISO week),
    ``2026-11`` (month), ``2026-Q4`` (quarter), ``2026`` (year), ``all``.

    Examples
    --------
    >>> times = pd.Series(pd.to_datetime(["2026-12-31T17:00:00Z"]))
    >>> [period_labels(times, p).iloc[0] for p in ("day", "week", "month", "quarter", "year")]
    ['2027-01-01', '2026-W53', '2027-01', '2027-Q1', '2027']
    """
    if period not in PERIODS:
        raise InputError(f"period: {period!r} is not one of {', '.join(PERIODS)}", field="period")
    if period == "all":
        return pd.Series("all", index=times.index, dtype=object)
    local = _as_utc(times).dt.tz_convert(LOCAL_ZONE)
    if period == "day":
        labels = local.dt.strftime("%Y-%m-%d")
    elif period == "week":
        iso = local.dt.isocalendar()
        labels = iso["year"].astype(str) + "-W" + iso["week"].astype(str).str.zfill(2)
    elif period == "month":
        labels = local.dt.strftime("%Y-%m")
    elif period == "quarter":
        labels = local.dt.year.astype(str) + "-Q" + local.dt.quarter.astype(str)
    else:
        labels = local.dt.year.astype(str)
    return labels.astype(object)


def evaluate(
    incidents: pd.DataFrame,
    *,
    by: str = "governance:grid",
    period: str = "month",
    now: datetime | None = None,
    radius_m: float = DEFAULT_RADIUS_M,
    same_category: bool = False,
    unit_levels: Collection[str] = (),
) -> pd.DataFrame:
    """Return the evaluation table: one row per group and period.

    Parameters
    ----------
    incidents : pandas.DataFrame
        One row per incident (see the module docstring for its columns).
    by : str
        ``"<layer>:<level>"`` (e.g. ``"governance:community"``) or a column
        such as ``"category"`` or ``"channel"``.
    period : str
        One of :data:`PERIODS`; periods are counted in China time.
    now : datetime, optional
        The time open incidents are judged overdue against (default: now).
    radius_m : float
        Two incidents this close (metres) are at the same place.
    same_category : bool
        Count a repeat only when the earlier incident had the same category.
    unit_levels : collection of str
        The registry's ``layer:level`` names (:func:`unit_levels`): a known
        level no incident was located in is all unassigned, not an error.

    Returns
    -------
    pandas.DataFrame
        Columns: the group (``unit`` for a unit column, else the column's
        name), ``period``, :data:`MEASURES`, then ``category:<code>`` counts.
        Sorted by group and period; incidents outside every unit of the
        layer are grouped as :data:`UNASSIGNED`.

    Raises
    ------
    InputError
        Unknown ``by`` or ``period``, a negative radius, or a frame without
        ``received_at``.
    """
    if not (math.isfinite(radius_m) and radius_m >= 0):
        raise InputError(f"radius_m: {radius_m!r} must be a distance ≥ 0", field="radius_m")
    if "received_at" not in incidents.columns:
        raise InputError("incidents: the frame has no received_at column", field="incidents")
    column = group_column(by, incidents.columns, unit_levels)
    name = "unit" if ":" in by else str(column)
    labels = period_labels(incidents["received_at"], period)
    now = now or utc_now()
    work = _measures(incidents, now=pd.Timestamp(now), radius_m=radius_m, same=same_category)
    groups = incidents[column] if column is not None else pd.Series(None, index=incidents.index)
    work[name] = groups.astype(object).where(groups.notna(), UNASSIGNED)
    work[name] = work[name].map(str)
    work["period"] = labels.to_numpy()
    keys = [name, "period"]
    grouped = work.groupby(keys, sort=True, dropna=False)
    table = grouped.agg(
        incidents=("one", "sum"),
        open=("is_open", "sum"),
        closed=("is_closed", "sum"),
        merged=("is_merged", "sum"),
        median_hours_to_close=("hours_to_close", "median"),
        overdue=("is_overdue", "sum"),
        with_deadline=("has_deadline", "sum"),
        repeats=("is_repeat", "sum"),
        feedback_count=("has_feedback", "sum"),
        feedback_mean=("feedback", "mean"),
    )
    table["overdue_rate"] = _ratio(table["overdue"], table["with_deadline"])
    table["repeat_rate"] = _ratio(table["repeats"], table["incidents"])
    categories = _category_counts(incidents, work, keys)
    table = table.join(categories).reset_index()
    counts = [c for c in table.columns if c.startswith(CATEGORY_PREFIX)]
    table[counts] = table[counts].fillna(0).astype("int64")
    for count in ("incidents", "open", "closed", "merged", "overdue", "repeats", "feedback_count"):
        table[count] = table[count].astype("int64")
    return table[[*keys, *MEASURES, *counts]]


def _measures(
    incidents: pd.DataFrame, *, now: pd.Timestamp, radius_m: float, same: bool
) -> pd.DataFrame:
    # One row per incident with the 0/1 flags and values the groups aggregate.
    n = len(incidents)
    status = _column(incidents, "status", None).astype(object)
    received = _as_utc(incidents["received_at"])
    closed_at = _as_utc(_column(incidents, "closed_at", pd.NaT))
    deadline = _as_utc(_column(incidents, "deadline_at", pd.NaT))
    handled_at = closed_at
    if "resolved_at" in incidents.columns:
        handled_at = _as_utc(incidents["resolved_at"]).fillna(closed_at)
    is_closed = (status == "closed").to_numpy()
    not_handled = status.isin(_NOT_HANDLED).to_numpy()
    has_deadline = deadline.notna().to_numpy() & ~not_handled
    late = (handled_at > deadline).fillna(False).to_numpy(dtype=bool)
    still_open = (handled_at.isna() & (deadline < now)).fillna(False).to_numpy(dtype=bool)
    feedback = pd.to_numeric(_column(incidents, "feedback_score", np.nan), errors="coerce")
    hours = (closed_at - received).dt.total_seconds() / 3600.0
    return pd.DataFrame(
        {
            "one": np.ones(n, dtype=np.int64),
            "is_open": (~status.isin(_FINISHED)).to_numpy(dtype=np.int64),
            "is_closed": is_closed.astype(np.int64),
            "is_merged": (status == "merged").to_numpy(dtype=np.int64),
            "hours_to_close": hours.where(is_closed).to_numpy(dtype=float),
            "has_deadline": has_deadline.astype(np.int64),
            "is_overdue": (has_deadline & (late | still_open)).astype(np.int64),
            "is_repeat": _repeats(incidents, received, radius_m, same).astype(np.int64),
            "has_feedback": feedback.notna().to_numpy(dtype=np.int64),
            "feedback": feedback.to_numpy(dtype=float),
        },
        index=incidents.index,
    )


def _repeats(
    incidents: pd.DataFrame, received: pd.Series, radius_m: float, same: bool
) -> np.ndarray:
    # An incident repeats a place when an earlier one (received earlier, or at
    # the same time with a smaller id) lies within radius_m.
    n = len(incidents)
    flags = np.zeros(n, dtype=bool)
    if n < 2 or "lon" not in incidents.columns or "lat" not in incidents.columns:
        return flags
    lon = pd.to_numeric(incidents["lon"], errors="coerce").to_numpy(dtype=float)
    lat = pd.to_numeric(incidents["lat"], errors="coerce").to_numpy(dtype=float)
    located = np.flatnonzero(np.isfinite(lon) & np.isfinite(lat))
    if len(located) < 2:
        return flags
    crs = local_projected_crs(float(np.median(lon[located])), float(np.median(lat[located])))
    project = Transformer.from_crs("EPSG:4490", crs, always_xy=True)
    x, y = project.transform(lon[located], lat[located])
    pairs = cKDTree(np.column_stack([x, y])).query_pairs(r=radius_m, output_type="ndarray")
    if len(pairs) == 0:
        return flags
    first, second = located[pairs[:, 0]], located[pairs[:, 1]]
    if same:
        category = _column(incidents, "category", None).astype(object).to_numpy()
        keep = category[first] == category[second]
        first, second = first[keep], second[keep]
    # Order by (received_at, id): the later of each pair is the repeat.
    order = np.lexsort(
        (
            pd.to_numeric(_column(incidents, "id", np.arange(n)), errors="coerce").to_numpy(),
            received.to_numpy(dtype="datetime64[ns]").astype("int64"),
        )
    )
    rank = np.empty(n, dtype=np.int64)
    rank[order] = np.arange(n)
    later = np.where(rank[first] > rank[second], first, second)
    flags[later] = True
    return flags


def _category_counts(incidents: pd.DataFrame, work: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    if "category" not in incidents.columns:
        return pd.DataFrame(index=work.groupby(keys).size().index)
    frame = work[keys].copy()
    frame["_category"] = incidents["category"].astype(object).fillna("unknown").map(str)
    counts = frame.groupby([*keys, "_category"]).size().unstack("_category", fill_value=0)
    counts = counts.reindex(sorted(counts.columns), axis=1)
    counts.columns = [f"{CATEGORY_PREFIX}{c}" for c in counts.columns]
    return counts


def _column(frame: pd.DataFrame, name: str, default: Any) -> pd.Series:
    if name in frame.columns:
        return frame[name]
    return pd.Series([default] * len(frame), index=frame.index, dtype=object)


def _as_utc(values: pd.Series) -> pd.Series:
    # Aware times in any zone (or naive UTC, as databases hand them) → UTC.
    times = pd.to_datetime(values, utc=True, errors="raise")
    return times


def _ratio(part: pd.Series, whole: pd.Series) -> pd.Series:
    return (part / whole.where(whole > 0)).astype(float)


def to_records(table: pd.DataFrame) -> list[dict[str, Any]]:
    """Return the rows as JSON-ready dicts, category counts in a ``categories`` mapping.

    NaN becomes ``None`` (``null``): a rate with nothing to divide is unknown,
    not zero.

    Examples
    --------
    >>> frame = pd.DataFrame({"unit": ["a"], "period": ["all"], "overdue_rate": [float("nan")],
    ...                       "category:0101": [2]})
    >>> to_records(frame)
    [{'unit': 'a', 'period': 'all', 'overdue_rate': None, 'categories': {'0101': 2}}]
    """
    records = []
    for row in table.to_dict(orient="records"):
        record: dict[str, Any] = {}
        categories: dict[str, int] = {}
        for key, value in row.items():
            value = _plain(value)
            if str(key).startswith(CATEGORY_PREFIX):
                categories[str(key).removeprefix(CATEGORY_PREFIX)] = value
            else:
                record[str(key)] = value
        record["categories"] = categories
        records.append(record)
    return records


def _plain(value: Any) -> Any:
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def to_csv(table: pd.DataFrame, target: str | Path | None = None) -> str | None:
    """Write the table as spreadsheet-safe UTF-8 CSV (with BOM); ``None``: return the text."""
    from gis.files import write_csv

    return write_csv(table, target)


def to_xlsx(table: pd.DataFrame, target: str | Path | None = None) -> bytes | None:
    """Write the table as an Excel workbook (sheet ``evaluation``); ``None``: return its bytes."""
    from gis.files import write_xlsx

    if target is not None:
        write_xlsx(table, target, sheet="evaluation")
        return None
    with tempfile.TemporaryDirectory(prefix="tongge-evaluation-") as folder:
        path = Path(folder) / "evaluation.xlsx"
        write_xlsx(table, path, sheet="evaluation")
        return path.read_bytes()
