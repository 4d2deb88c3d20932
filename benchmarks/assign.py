"""Benchmark ``gis.assign.assign_buildings`` against a geopandas largest-overlap join.

Builds the deterministic synthetic layer of :mod:`_synthetic` (5,000 units)
and 200,000 building footprints over it: rotated rectangles 8-40 m a side,
95% placed wholly inside a unit and 5% centred within 4 m of a unit boundary
(so cut by it, unevenly). Then times, in the same process and on the same data (EPSG:4490):

- ``assign_buildings(buildings, units)``, :class:`~gis.gridindex.GridIndex`
  build included (best of ``--repeat`` runs after one warm-up; the cold
  first call and a run reusing a prebuilt index are reported too);
- the usual geopandas way: project both to metres (EPSG:4549),
  ``sjoin(predicate="intersects")``, the intersection area of every pair,
  and the largest per building (ties: smallest code).

``agreement`` compares the two units of every building: both rules pick the
unit covering a footprint, and the largest overlap otherwise; they can only
differ where two pieces are equal within the projection's rounding (ties).

Prints one JSON object to stdout; progress goes to stderr. With
``--profile`` (or automatically when tongge misses the target) a cProfile
summary of one run is written to stderr.

Run with ``.venv/bin/python benchmarks/assign.py``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from numpy.typing import NDArray

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import best_of, logger, profile_summary
from _synthetic import PROJECTED_EPSG, STORAGE_EPSG, SyntheticLayer, make_layer

from gis.assign import Assignment, assign_buildings
from gis.gridindex import GridIndex

TARGET_S = 3.0
_CORNERS = np.array([[-0.5, -0.5], [0.5, -0.5], [0.5, 0.5], [-0.5, 0.5], [-0.5, -0.5]])


log = logger("assign-bench")


def rectangles(centres: NDArray[np.float64], rng: np.random.Generator) -> NDArray[np.object_]:
    """Return rotated rectangles 8-40 m a side centred on ``centres`` (metres).

    Parameters
    ----------
    centres : ndarray of shape (n, 2)
        Centres.
    rng : numpy.random.Generator
        Source of sides and angles.

    Returns
    -------
    ndarray of Polygon
        The rectangles.
    """
    n = len(centres)
    width, height = rng.uniform(8.0, 40.0, n), rng.uniform(8.0, 40.0, n)
    angle = rng.uniform(0.0, np.pi, n)
    x = _CORNERS[None, :, 0] * width[:, None]
    y = _CORNERS[None, :, 1] * height[:, None]
    cos, sin = np.cos(angle)[:, None], np.sin(angle)[:, None]
    xy = np.stack([centres[:, :1] + cos * x - sin * y, centres[:, 1:] + sin * x + cos * y], axis=2)
    return np.asarray(shapely.polygons(xy), dtype=object)


def make_buildings(
    layer: SyntheticLayer, count: int, *, crossing: float, seed: int
) -> tuple[gpd.GeoDataFrame, int]:
    """Place footprints over the layer: most inside a unit, a share across a boundary.

    Parameters
    ----------
    layer : SyntheticLayer
        The units.
    count : int
        Number of buildings.
    crossing : float
        Share of buildings centred within 4 m of a unit boundary.
    seed : int
        Seed of the generator.

    Returns
    -------
    buildings : GeoDataFrame
        ``key`` and footprints, EPSG:4490, in random order.
    crossing_count : int
        How many were centred near a boundary.
    """
    rng = np.random.default_rng(seed)
    rings = shapely.get_exterior_ring(np.asarray(layer.children_m.geometry.values))
    coords, ring = shapely.get_coordinates(rings, return_index=True)
    same = np.flatnonzero(ring[:-1] == ring[1:])
    segments = shapely.linestrings(np.stack([coords[same], coords[same + 1]], axis=1))
    tree = shapely.STRtree(segments)
    across = round(count * crossing)
    lo = np.asarray(layer.box_m[:2]) + 50.0
    hi = np.asarray(layer.box_m[2:]) - 50.0
    kept: list[NDArray[np.object_]] = []
    need = count - across
    while need > 0:  # rejection: keep rectangles that meet no boundary
        batch = rectangles(rng.uniform(lo, hi, size=(int(need * 1.15) + 16, 2)), rng)
        hit = np.zeros(len(batch), dtype=bool)
        hit[tree.query(batch, predicate="intersects")[0]] = True
        batch = batch[~hit][:need]
        kept.append(batch)
        need -= len(batch)
    on = shapely.line_interpolate_point(
        rings[rng.integers(0, len(rings), across)], rng.uniform(0.0, 1.0, across), normalized=True
    )
    # Off-centre: a rectangle centred on a straight boundary is halved exactly,
    # and "largest" between two equal halves is a coin toss of rounding.
    shift = rng.uniform(-4.0, 4.0, size=(across, 2))
    kept.append(rectangles(shapely.get_coordinates(on) + shift, rng))
    geoms = np.concatenate(kept)[rng.permutation(count)]
    frame = gpd.GeoDataFrame({"key": np.arange(count)}, geometry=geoms, crs=PROJECTED_EPSG)
    return frame.to_crs(STORAGE_EPSG), across


def geopandas_largest_overlap(buildings: gpd.GeoDataFrame, units: gpd.GeoDataFrame) -> pd.Series:
    """Assign each building to the unit it overlaps most, the usual geopandas way.

    Parameters
    ----------
    buildings, units : GeoDataFrame
        ``key`` / ``code`` frames.

    Returns
    -------
    Series
        The unit code per building key (missing when it overlaps none).
    """
    left = buildings[["key", "geometry"]].to_crs(PROJECTED_EPSG)
    right = units[["code", "geometry"]].to_crs(PROJECTED_EPSG)
    pairs = gpd.sjoin(left, right, predicate="intersects", how="inner")
    other = right.geometry.loc[pairs["index_right"]]
    pieces = pairs.geometry.intersection(other, align=False)
    pairs = pd.DataFrame({"key": pairs["key"], "code": pairs["code"], "area": pieces.area})
    pairs = pairs[pairs["area"] > 0].sort_values(
        ["key", "area", "code"], ascending=[True, False, True]
    )
    best = pairs.drop_duplicates("key")
    return best.set_index("key")["code"].reindex(buildings["key"])


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and print the JSON result.

    Parameters
    ----------
    argv : list of str, optional
        Command-line arguments (default: ``sys.argv[1:]``).

    Returns
    -------
    int
        The process exit status (0).
    """
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--buildings", type=int, default=200_000, help="footprints (200000)")
    parser.add_argument("--units", type=int, default=5_000, help="units (default 5000)")
    parser.add_argument("--parents", type=int, default=250, help="parent units (default 250)")
    parser.add_argument("--crossing", type=float, default=0.05, help="share across boundaries")
    parser.add_argument("--repeat", type=int, default=3, help="timed runs, best kept (default 3)")
    parser.add_argument("--seed", type=int, default=20_240_601, help="layer seed")
    parser.add_argument("--skip-geopandas", action="store_true", help="time tongge only")
    parser.add_argument("--profile", action="store_true", help="cProfile summary to stderr")
    args = parser.parse_args(argv)

    log(f"building layer: {args.units} units, seed {args.seed}")
    layer = make_layer(args.units, args.parents, seed=args.seed)
    units = layer.children
    log(f"placing {args.buildings} buildings, {args.crossing:.0%} across boundaries")
    buildings, across = make_buildings(
        layer, args.buildings, crossing=args.crossing, seed=args.seed + 1
    )

    def run() -> Assignment:
        return assign_buildings(buildings, units)

    start = time.perf_counter()
    run()
    first_s = time.perf_counter() - start
    log(f"first call (cold, compiled code loaded from cache): {first_s:.3f} s")
    tongge_s, assignment = best_of(run, args.repeat, warmup=False)
    counts = assignment.counts()
    log(f"tongge: {tongge_s:.3f} s, {counts}")
    index_s, index = best_of(lambda: GridIndex.from_frame(units), args.repeat, warmup=False)
    reused_s, _ = best_of(
        lambda: assign_buildings(buildings, units, index=index), args.repeat, warmup=False
    )
    log(f"index build {index_s:.3f} s; assignment with a prebuilt index {reused_s:.3f} s")

    result: dict[str, Any] = {
        "benchmark": "assign",
        "buildings": len(buildings),
        "units": len(units),
        "placed_across_boundaries": across,
        "tongge_s": round(tongge_s, 4),
        "tongge_first_call_s": round(first_s, 4),
        "tongge_prebuilt_index_s": round(reused_s, 4),
        "index_build_s": round(index_s, 4),
        "counts": counts,
    }
    if not args.skip_geopandas:
        log("timing geopandas: to_crs + sjoin(intersects) + intersection area, largest")
        gpd_s, theirs = best_of(
            lambda: geopandas_largest_overlap(buildings, units), 1, warmup=False
        )
        ours = assignment.frame["unit"].to_numpy(dtype=object)
        other = theirs.to_numpy(dtype=object)
        differ = np.flatnonzero(
            [a != b and not (a is None and pd.isna(b)) for a, b in zip(ours, other, strict=True)]
        )
        log(f"geopandas: {gpd_s:.3f} s, {len(differ)} buildings assigned differently")
        result.update(
            {
                "geopandas_s": round(gpd_s, 4),
                "ratio_geopandas_over_tongge": round(gpd_s / tongge_s, 2),
                "agreement": {
                    "differing": len(differ),
                    "examples": [
                        {
                            "key": int(buildings["key"].iloc[k]),
                            "tongge": ours[k],
                            "geopandas": other[k],
                        }
                        for k in differ[:5]
                    ],
                },
            }
        )
    meets = tongge_s <= TARGET_S
    if args.profile or not meets:
        log("profile of one run:\n" + profile_summary(run))
    result.update(
        {
            "target_s": TARGET_S,
            "meets_target": meets,
            "repeat": args.repeat,
            "seed": args.seed,
            "machine": {
                "cpus": os.cpu_count(),
                "python": platform.python_version(),
                "shapely": shapely.__version__,
                "geos": shapely.geos_version_string,
                "geopandas": gpd.__version__,
            },
        }
    )
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
