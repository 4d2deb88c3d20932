"""Workload per unit (负载均衡): counts rolled up the hierarchy, targets and balance."""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from gis.assign._buildings import Assignment
from gis.assign._children import _frame, inherit
from gis.layers import LayerSpec

__all__ = ["COUNTS", "DEFAULT_TARGETS", "Target", "Workload", "workload"]

#: What is counted per unit.
COUNTS = ("buildings", "households", "persons", "places")


@dataclass(frozen=True)
class Target:
    """The workload a unit of one level should carry (``None``: no bound).

    Attributes
    ----------
    min_households, max_households : float or None
        Households range; below is ``under``, above is ``over``.
    max_persons : float or None
        Persons above which a unit is ``over`` whatever its households.
    """

    min_households: float | None = None
    max_households: float | None = None
    max_persons: float | None = None


#: Urban practice: a grid carries 300-500 households and at most ~2,500 people;
#: a micro-grid (微网格) ~20-100 households.
DEFAULT_TARGETS: Mapping[str, Target] = {
    "grid": Target(min_households=300, max_households=500, max_persons=2500),
    "micro_grid": Target(min_households=20, max_households=100),
}


@dataclass(frozen=True)
class Workload:
    """Counts per unit and per level, flags against targets, balance between siblings.

    Attributes
    ----------
    units : DataFrame
        One row per unit, in the input order: ``code``, ``level``,
        ``parent_code``, the :data:`COUNTS` (rolled up: a unit counts what
        its descendants count plus what was assigned to it directly),
        ``min_households``, ``max_households``, ``max_persons`` (its
        level's target, NaN without one), ``over`` and ``under``.
    by_level : DataFrame
        One row per level, top down: ``level``, ``units``, the summed
        :data:`COUNTS`, and how many units are ``over`` and ``under``.
    balance : DataFrame
        One row per parent with children: ``parent_code``, ``level`` (of
        the children), ``children``, and ``mean``, ``std`` (population),
        ``cv`` (std / mean, NaN when the mean is 0), ``min``, ``max`` of
        the children's households.
    outside : dict
        What no unit of the frame carries: counts of the :data:`COUNTS`
        assigned to no unit (``None``) or to a code not in the frame.
    """

    units: pd.DataFrame
    by_level: pd.DataFrame
    balance: pd.DataFrame
    outside: dict[str, float] = field(default_factory=dict)

    def restricted_to(self, codes: Collection[str]) -> Workload:
        """Return the workload of ``codes`` only: summaries count those units alone.

        For a caller who may see part of a layer; what lies outside every
        unit is not reported.
        """
        keep = self.units["code"].isin(list(codes))
        units = self.units[keep].reset_index(drop=True)
        names = list(dict.fromkeys(self.by_level["level"]))
        balance = self.balance[self.balance["parent_code"].isin(list(codes))]
        return Workload(
            units=units,
            by_level=_by_level(units, names),
            balance=balance.reset_index(drop=True),
            outside={},
        )


def workload(
    assignment: Assignment | pd.DataFrame,
    households: pd.DataFrame,
    units: pd.DataFrame,
    *,
    levels: Sequence[str] | LayerSpec,
    targets: Mapping[str, Target] = DEFAULT_TARGETS,
    places: pd.DataFrame | None = None,
    building_key: str = "building_key",
    persons: str | None = "persons",
    code: str = "code",
    parent_code: str = "parent_code",
    level: str = "level",
) -> Workload:
    """Count buildings, households, persons and places per unit, up the hierarchy.

    Parameters
    ----------
    assignment : Assignment or DataFrame
        Buildings assigned to units (usually of the lowest level).
    households : DataFrame
        One row per household, with ``building_key`` and ``persons``.
    units : DataFrame
        The units of every level, stacked: ``code``, ``parent_code`` and
        ``level`` columns (geometry is not used).
    levels : sequence of str or LayerSpec
        The level names from the top down (e.g. ``GOVERNANCE``); counts are
        rolled up from the bottom level to the top (a parent is on a higher level).
    targets : mapping of level name to Target, default DEFAULT_TARGETS
        Levels without a target get no ``over``/``under`` flag.
    places : DataFrame, optional
        Places (实有单位: shops, offices, schools...) with ``building_key``;
        without it ``places`` is missing (``<NA>``). An optional
        ``point_unit`` column gives the unit of places in no building.
    building_key : str, default "building_key"
        Column of households and places naming their building.
    persons : str or None, default "persons"
        Column of household sizes; ``None`` when unknown (``persons`` is
        then missing, ``<NA>``, and ``max_persons`` never flags).
    code, parent_code, level : str
        Columns of ``units``.

    Returns
    -------
    Workload
        Per unit, per level and per parent.

    Raises
    ------
    ValueError
        If a column is missing, a unit code is missing or repeated, or a
        unit's level is not one of ``levels``.

    Examples
    --------
    A community ``c`` with grids ``c1`` (2 households, 5 people) and ``c2``
    (1 household, 3 people)::

        c: +----c1----+----c2----+
           | b1   b2  |    b3    |
           +----------+----------+

    >>> import pandas as pd
    >>> units = pd.DataFrame({"code": ["c", "c1", "c2"], "parent_code": [None, "c", "c"],
    ...     "level": ["community", "grid", "grid"]})
    >>> buildings = pd.DataFrame({"key": ["b1", "b2", "b3"], "unit": ["c1", "c1", "c2"],
    ...     "rule": "covered", "cut": False})
    >>> households = pd.DataFrame({"building_key": ["b1", "b2", "b3"], "persons": [2, 3, 3]})
    >>> w = workload(buildings, households, units, levels=["community", "grid"],
    ...     targets={"grid": Target(min_households=2, max_households=5)})
    >>> w.units[["code", "buildings", "households", "persons", "over", "under"]]
      code  buildings  households  persons   over  under
    0    c          3           3        8  False  False
    1   c1          2           2        5  False  False
    2   c2          1           1        3  False   True
    >>> w.balance.round(3).to_dict("records")
    [{'parent_code': 'c', 'level': 'grid', 'children': 2, 'mean': 1.5, 'std': 0.5, \
'cv': 0.333, 'min': 1.0, 'max': 2.0}]
    """
    names = [lv.name for lv in levels.levels] if isinstance(levels, LayerSpec) else list(levels)
    frame = _unit_frame(units, code, parent_code, level, names)
    buildings = _frame(assignment)

    direct = pd.DataFrame(index=pd.Index(frame["code"], name="code"))
    direct["buildings"] = _count(buildings["unit"], frame["code"])
    homes = inherit(buildings, households, key=None, parent_key=building_key)
    direct["households"] = _count(homes["unit"], frame["code"])
    if persons is None:
        direct["persons"] = np.nan
    else:
        if persons not in households.columns:
            raise ValueError(f"no column {persons!r} in the households (or pass persons=None)")
        sizes = pd.to_numeric(households[persons], errors="raise")
        direct["persons"] = _count(homes["unit"], frame["code"], weights=sizes)
    if places is None:
        direct["places"] = np.nan
    else:
        spots = inherit(buildings, places, key=None, parent_key=building_key)
        if "point_unit" in places.columns:
            # Places outside any building (alarm posts, kiosks) count where they stand.
            spots["unit"] = spots["unit"].where(spots["unit"].notna(), places["point_unit"])
        direct["places"] = _count(spots["unit"], frame["code"])

    outside = {
        "buildings": _outside(buildings["unit"], frame["code"]),
        "households": _outside(homes["unit"], frame["code"]),
        "persons": (
            np.nan
            if persons is None
            else _outside(homes["unit"], frame["code"], pd.to_numeric(households[persons]))
        ),
        "places": np.nan if places is None else _outside(spots["unit"], frame["code"]),
    }

    totals = _roll_up(direct, frame, names)
    table = frame.reset_index(drop=True).copy()
    for column in COUNTS:
        table[column] = pd.array(np.round(totals[column].to_numpy()), dtype="Int64")
    _flag(table, targets)
    return Workload(
        units=table,
        by_level=_by_level(table, names),
        balance=_balance(table),
        outside=outside,
    )


def _unit_frame(
    units: pd.DataFrame, code: str, parent_code: str, level: str, names: list[str]
) -> pd.DataFrame:
    for column in (code, parent_code, level):
        if column not in units.columns:
            raise ValueError(f"no column {column!r} in the units")
    if units[code].isna().any():
        raise ValueError("a unit has no code")
    codes = units[code].astype(str).to_numpy(dtype=object)
    if pd.Series(codes).duplicated().any():
        raise ValueError("unit codes must be unique")
    parents = np.array([None if pd.isna(p) else str(p) for p in units[parent_code]], dtype=object)
    lv = units[level].astype(object).to_numpy()
    unknown = sorted({str(v) for v in lv} - set(names))
    if unknown:
        raise ValueError(f"units of unknown level(s) {unknown}; levels are {names}")
    return pd.DataFrame(
        {"code": codes, "level": lv.astype(str), "parent_code": parents}, dtype=object
    )


def _count(unit: pd.Series, codes: pd.Series, weights: pd.Series | None = None) -> np.ndarray:
    """Sum (or count) per code of ``codes``; rows of other codes are ignored."""
    at = pd.Index(codes).get_indexer(pd.Index(unit.astype(object)))
    keep = at >= 0
    values = np.ones(len(unit)) if weights is None else weights.to_numpy(dtype=float)
    return np.bincount(at[keep], weights=np.nan_to_num(values[keep]), minlength=len(codes))


def _outside(unit: pd.Series, codes: pd.Series, weights: pd.Series | None = None) -> float:
    at = pd.Index(codes).get_indexer(pd.Index(unit.astype(object)))
    values = np.ones(len(unit)) if weights is None else weights.to_numpy(dtype=float)
    return float(np.nansum(values[at < 0]))


def _roll_up(direct: pd.DataFrame, frame: pd.DataFrame, names: list[str]) -> pd.DataFrame:
    """Add each level's totals to the parents', from the bottom level up."""
    totals = direct.copy()
    parent_at = pd.Index(frame["code"]).get_indexer(pd.Index(frame["parent_code"]))
    values = totals.to_numpy(dtype=float, copy=True)
    for name in reversed(names[1:]):
        rows = np.flatnonzero((frame["level"].to_numpy() == name) & (parent_at >= 0))
        # Missing counts (persons or places unknown) stay missing all the way up.
        np.add.at(values, parent_at[rows], values[rows])
    return pd.DataFrame(values, index=totals.index, columns=totals.columns)


def _flag(table: pd.DataFrame, targets: Mapping[str, Target]) -> None:
    """Add each unit's target and its ``over``/``under`` flags (NaN bounds never flag)."""

    def bound(attr: str) -> np.ndarray:
        values = {name: getattr(target, attr) for name, target in targets.items()}
        return np.array(
            [np.nan if values.get(lv) is None else float(values[lv]) for lv in table["level"]],
            dtype=float,
        )

    low, high, most = bound("min_households"), bound("max_households"), bound("max_persons")
    households = table["households"].to_numpy(dtype=float, na_value=np.nan)
    persons = table["persons"].to_numpy(dtype=float, na_value=np.nan)
    table["min_households"] = low
    table["max_households"] = high
    table["max_persons"] = most
    table["over"] = (households > high) | (persons > most)
    table["under"] = households < low


def _by_level(table: pd.DataFrame, names: list[str]) -> pd.DataFrame:
    grouped = table.groupby("level", sort=False)
    sums = grouped[list(COUNTS)].sum(min_count=1)
    out = pd.DataFrame(index=pd.Index(names, name="level"))
    out["units"] = grouped.size().reindex(names).fillna(0).astype(int)
    for column in COUNTS:
        out[column] = sums[column].reindex(names).astype("Int64")
    out["over"] = grouped["over"].sum().reindex(names).fillna(0).astype(int)
    out["under"] = grouped["under"].sum().reindex(names).fillna(0).astype(int)
    return out.reset_index()


def _balance(table: pd.DataFrame) -> pd.DataFrame:
    children = table[table["parent_code"].notna()].copy()
    children["households"] = children["households"].astype(float)
    grouped = children.groupby(["parent_code", "level"], sort=True)["households"]
    stats = grouped.agg(["count", "mean", "min", "max"])
    stats["std"] = grouped.std(ddof=0)
    # A parent whose children have no households has no meaningful spread.
    stats["cv"] = stats["std"] / stats["mean"].where(stats["mean"] > 0)
    stats = stats.rename(columns={"count": "children"}).reset_index()
    return stats[["parent_code", "level", "children", "mean", "std", "cv", "min", "max"]]
