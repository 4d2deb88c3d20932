"""The unit frame: the GeoDataFrame shape every grid operation takes.

Columns: ``code`` (str), ``name`` (str), ``parent_code`` (str or None),
``kind`` (``comprehensive`` 综合 or ``dedicated`` 专属), ``attributes``
(dict of the remaining properties) and ``geometry``; a CRS is required.
"""

from __future__ import annotations

from dataclasses import dataclass

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

__all__ = ["KINDS", "MultipartMerge", "merge_multipart_units"]

KINDS = ("comprehensive", "dedicated")


@dataclass(frozen=True)
class MultipartMerge:
    """A code whose features were joined into one multi-part unit."""

    code: str
    parts: int


def merge_multipart_units(frame: gpd.GeoDataFrame) -> tuple[gpd.GeoDataFrame, list[MultipartMerge]]:
    """Join features that are the parts of one unit into a single MultiPolygon.

    Many files store a unit in several parts as several features with the
    same code (Chicago's beat 3100 is three islands). Features sharing a code
    are joined only when *every* other property is equal and the parts are
    pairwise disjoint (not even touching); anything else is left alone and
    validation reports it as ``duplicate_code``. Each join is returned so it
    can be reported: nothing is merged silently.

    Examples
    --------
    >>> from shapely import box
    >>> f = gpd.GeoDataFrame({"code": ["a", "a", "b"]},
    ...     geometry=[box(0, 0, 1, 1), box(5, 5, 6, 6), box(1, 0, 2, 1)], crs=4549)
    >>> merged, joins = merge_multipart_units(f)
    >>> merged.code.tolist(), merged.geom_type.tolist(), joins
    (['a', 'b'], ['MultiPolygon', 'Polygon'], [MultipartMerge(code='a', parts=2)])
    """
    if "code" not in frame or frame.empty:
        return frame, []
    codes = frame["code"]
    values = codes.to_numpy(dtype=object)
    present = values[~pd.isna(values)]
    if len(set(present)) == len(present):  # the usual case, without a pass of pandas
        return frame, []
    repeated = codes[codes.notna() & codes.duplicated(keep=False)]
    if repeated.empty:
        return frame, []
    others = [c for c in frame.columns if c not in ("code", frame.geometry.name)]
    drop: list[object] = []
    replace: dict[object, shapely.Geometry] = {}
    joins: list[MultipartMerge] = []
    for code, rows in frame.loc[repeated.index].groupby("code", sort=True).groups.items():
        group = frame.loc[rows]
        if not _same_properties(group, others) or not _pairwise_disjoint(group.geometry.values):
            continue
        parts = [p for g in group.geometry.values for p in shapely.get_parts(g)]
        first = group.index[0]
        replace[first] = shapely.multipolygons(parts)
        drop.extend(group.index[1:])
        joins.append(MultipartMerge(code=str(code), parts=len(group)))
    if not joins:
        return frame, []
    merged = frame.copy()
    for index, geometry in replace.items():
        merged.loc[index, merged.geometry.name] = geometry
    return merged.drop(index=drop), joins


def _same_properties(group: pd.DataFrame, columns: list[str]) -> bool:
    for column in columns:
        values = group[column]
        if values.isna().all():
            continue
        if values.isna().any() or values.astype(str).nunique() > 1:
            return False
    return True


def _pairwise_disjoint(geometries: np.ndarray) -> bool:
    types = shapely.get_type_id(geometries)
    if np.any(~np.isin(types, (3, 6))) or not np.all(shapely.is_valid(geometries)):
        return False
    tree = shapely.STRtree(geometries)
    left, right = tree.query(geometries, predicate="intersects")
    return bool(np.all(left == right))
