"""Geometries shared between threads: prepared safely (GEOS prepared polygons are not thread-safe).

The API answers requests on a pool of threads and builds some caches in
background threads, all reading the same unit geometries. Before
:mod:`gis._prepared`, the building assignment prepared the shared unit
geometries in place and asked polygon predicates of them from two threads at
once (the background build of the stored side and a preview): GEOS crashed the
process (a segmentation fault seen in CI).
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from boundaries import SAMPLE_CITY
from gis._prepared import prepare_for_points, prepared_copies
from gis.assign import assign_buildings

BUILDINGS = SAMPLE_CITY / "places" / "buildings.parquet"


def level_file(layer: str, level: str) -> Path:
    return SAMPLE_CITY / layer / f"{level}.geojson"


def test_threads_assigning_over_the_same_units_agree_and_do_not_crash() -> None:
    units = gpd.read_file(level_file("governance", "micro_grid"))[["code", "geometry"]]
    buildings = gpd.read_parquet(BUILDINGS)[["key", "geometry"]].to_crs(units.crs)
    # The same unit frame (so the same geometry objects) for every thread, as
    # the edit service's state cache hands it out.
    alone = assign_buildings(buildings, units).frame
    parts = np.array_split(np.arange(len(buildings)), 8)
    with ThreadPoolExecutor(max_workers=4) as pool:
        answers = list(
            pool.map(lambda rows: assign_buildings(buildings.iloc[rows], units).frame, parts * 3)
        )
    together = pd.concat(answers[: len(parts)])
    assert together["unit"].tolist() == alone["unit"].tolist()
    assert together["rule"].tolist() == alone["rule"].tolist()
    for repeat in range(1, 3):
        again = pd.concat(answers[repeat * len(parts) : (repeat + 1) * len(parts)])
        assert again["unit"].tolist() == alone["unit"].tolist()
    # Nothing of the caller's was prepared in place.
    assert not shapely.is_prepared(units.geometry.values).any()


def test_prepared_copies_are_exact_and_leave_the_originals_alone() -> None:
    units = np.asarray(gpd.read_file(level_file("governance", "grid")).geometry.values)
    copies = prepared_copies(units)
    assert shapely.equals_identical(copies, units).all()
    assert shapely.is_prepared(copies).all() and not shapely.is_prepared(units).any()


def test_points_asked_of_shared_prepared_units_from_threads_agree() -> None:
    units = np.asarray(gpd.read_file(level_file("governance", "grid")).geometry.values)
    shared = prepare_for_points(np.array(units, dtype=object))
    rng = np.random.default_rng(7)
    minx, miny, maxx, maxy = shapely.total_bounds(units)
    x, y = rng.uniform(minx, maxx, 4_000), rng.uniform(miny, maxy, 4_000)
    expected = [np.flatnonzero(shapely.intersects_xy(u, x, y)) for u in units]

    def ask(i: int) -> np.ndarray:
        return np.flatnonzero(shapely.intersects_xy(shared[i], x, y))

    with ThreadPoolExecutor(max_workers=4) as pool:
        got = list(pool.map(ask, range(len(units))))
    assert all(np.array_equal(a, b) for a, b in zip(got, expected, strict=True))
