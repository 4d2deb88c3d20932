"""What hangs on a building follows it; what moved when boundaries changed."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from gis.assign._buildings import RULES, Assignment

__all__ = ["NO_BUILDING", "diff", "inherit"]

#: ``rule`` of a child whose building is not in the assignment.
NO_BUILDING = "no_building"


def inherit(
    assignment: Assignment | pd.DataFrame,
    children: pd.DataFrame,
    *,
    key: str | None = "key",
    parent_key: str = "building_key",
) -> pd.DataFrame:
    """Give addresses, households or places the unit of their building.

    Parameters
    ----------
    assignment : Assignment or DataFrame
        The buildings' assignment (a frame needs ``key``, ``unit``, ``rule``
        and ``cut`` columns, as :attr:`Assignment.frame`).
    children : DataFrame
        One row per address, household or place.
    key : str or None, default "key"
        Column of the children's own keys, checked to be present and
        unique (each child is then assigned exactly once); ``None`` skips it.
    parent_key : str, default "building_key"
        Column naming each child's building.

    Returns
    -------
    DataFrame
        A copy of ``children`` (same index) with ``unit`` (the building's
        unit, ``None`` when the building is unassigned or unknown),
        ``rule`` (the building's rule, or ``"no_building"`` when its key is
        not in the assignment) and ``cut`` (the building is cut by a
        boundary: its children may belong to another unit). Existing
        columns of those names are replaced.

    Raises
    ------
    ValueError
        If a column is missing or a child key is missing or repeated.

    Examples
    --------
    >>> import pandas as pd
    >>> buildings = pd.DataFrame({"key": ["b1", "b2"], "unit": ["g1", None],
    ...     "rule": ["covered", "unassigned"], "cut": [False, False]})
    >>> households = pd.DataFrame({"key": [1, 2, 3], "building_key": ["b1", "b2", "b9"]})
    >>> inherit(buildings, households)
       key building_key  unit         rule    cut
    0    1           b1    g1      covered  False
    1    2           b2  None   unassigned  False
    2    3           b9  None  no_building  False
    """
    buildings = _frame(assignment)
    if parent_key not in children.columns:
        raise ValueError(f"no column {parent_key!r} in the children")
    if key is not None:
        _check_unique(children, key, "children")
    at = _positions(buildings, children[parent_key])
    found = at >= 0
    unit = np.full(len(children), None, dtype=object)
    unit[found] = _objects(buildings["unit"])[at[found]]
    rule = np.full(len(children), NO_BUILDING, dtype=object)
    rule[found] = buildings["rule"].astype(object).to_numpy()[at[found]]
    cut = np.zeros(len(children), dtype=bool)
    cut[found] = buildings["cut"].to_numpy(dtype=bool)[at[found]]
    out = children.copy()
    out["unit"] = pd.Series(unit, index=children.index, dtype=object)
    out["rule"] = pd.Categorical(rule, categories=[*RULES, NO_BUILDING])
    out["cut"] = cut
    return out


def diff(
    before: Assignment | pd.DataFrame,
    after: Assignment | pd.DataFrame,
    *,
    key: str = "key",
) -> pd.DataFrame:
    """List what changed unit between two assignments, e.g. after moving a boundary.

    Parameters
    ----------
    before, after : Assignment or DataFrame
        Two assignments of buildings, or two :func:`inherit` results (a
        frame needs ``key`` and ``unit`` columns; ``rule`` is optional).
    key : str, default "key"
        The key column of frames.

    Returns
    -------
    DataFrame
        One row per key whose unit differs: ``key``, ``from_unit``,
        ``to_unit`` (``None`` for "no unit" and for a key missing from that
        side) and ``rule`` (the rule that placed it after, ``None`` when the
        key is gone). Keys of ``after`` come first, in its order, then keys
        only in ``before``.

    Raises
    ------
    ValueError
        If a frame lacks the columns or repeats a key.

    Examples
    --------
    >>> import pandas as pd
    >>> old = pd.DataFrame({"key": [1, 2, 3], "unit": ["a", "a", "b"]})
    >>> new = pd.DataFrame({"key": [1, 2, 4], "unit": ["a", "b", "b"],
    ...     "rule": ["covered", "largest_overlap", "covered"]})
    >>> diff(old, new)
       key from_unit to_unit             rule
    0    2         a       b  largest_overlap
    1    4      None       b          covered
    2    3         b    None             None
    """
    old = _frame(before, key=key, needs=("unit",))
    new = _frame(after, key=key, needs=("unit",))
    at = _positions(old, new[key], key=key)
    old_unit = _objects(old["unit"])
    from_unit = np.full(len(new), None, dtype=object)
    from_unit[at >= 0] = old_unit[at[at >= 0]]
    to_unit = _objects(new["unit"])
    rules = _objects(new["rule"]) if "rule" in new else np.full(len(new), None, dtype=object)
    changed = np.flatnonzero(from_unit != to_unit)  # None == None: unchanged
    gone = np.flatnonzero(~old[key].isin(new[key]).to_numpy() & (old_unit != None))  # noqa: E711
    none = np.full(len(gone), None, dtype=object)
    keys = pd.concat([new[key].iloc[changed], old[key].iloc[gone]], ignore_index=True)
    return pd.DataFrame(
        {
            "key": keys,
            "from_unit": pd.Series(
                np.concatenate([from_unit[changed], old_unit[gone]]), dtype=object
            ),
            "to_unit": pd.Series(np.concatenate([to_unit[changed], none]), dtype=object),
            "rule": pd.Series(np.concatenate([rules[changed], none]), dtype=object),
        }
    )


def _frame(
    value: Assignment | pd.DataFrame,
    *,
    key: str = "key",
    needs: tuple[str, ...] = ("unit", "rule", "cut"),
) -> pd.DataFrame:
    frame = value.frame if isinstance(value, Assignment) else value
    missing = [c for c in (key, *needs) if c not in frame.columns]
    if missing:
        raise ValueError(f"the assignment has no column(s) {missing}")
    _check_unique(frame, key, "the assignment")
    return frame


def _check_unique(frame: pd.DataFrame, key: str, what: str) -> None:
    if key not in frame.columns:
        raise ValueError(f"no column {key!r} in {what}")
    column = frame[key]
    if column.isna().any():
        raise ValueError(f"{what}: row {int(np.argmax(column.isna().to_numpy()))} has no {key!r}")
    repeated = column[column.duplicated()]
    if len(repeated):
        raise ValueError(f"{what}: {key!r} must be unique; repeated: {repeated.unique()[:5]}")


def _positions(frame: pd.DataFrame, keys: pd.Series, *, key: str = "key") -> Any:
    """Row position in ``frame`` of each key (-1 when absent or missing)."""
    return pd.Index(frame[key]).get_indexer(pd.Index(keys))


def _objects(column: pd.Series) -> Any:
    """Return the column as an object array, every missing value (NaN, NA) as ``None``."""
    values = column.astype(object).to_numpy(dtype=object, copy=True)
    values[pd.isna(values)] = None
    return values
