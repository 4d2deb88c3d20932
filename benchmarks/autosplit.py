"""Benchmark ``gis.edits.auto_split`` against PySAL spopt regionalisation on the same atoms.

Takes the sample city's grid closest to ``--households`` (default 500) with
its buildings and streets (``boundaries/licheng``) and splits it into
``--parts`` (default 6) micro-grids. In the same process and on the same
input:

- ``auto_split`` (best of ``--repeat`` runs after one warm-up): time,
  households per part, largest deviation from the mean, Polsby–Popper per part;
- spopt on **the atoms auto_split partitioned** (the blocks and building
  grounds it returns in ``result.atoms``, rook contiguity from libpysal):
  ``Skater`` (``n_clusters`` = parts, dissimilarity on projected centroids,
  floor = a third of the atoms per part) and ``MaxPHeuristic`` (households
  floor = (1 - tolerance) x mean, the number of regions left to it). Their
  regions are dissolved and measured the same way.

Ratios are spopt time over ours, and our balance / compactness next to theirs.
Prints one JSON object to stdout; progress goes to stderr. Run with
``.venv/bin/python benchmarks/autosplit.py``.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
import warnings
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import shapely

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from _common import best_of, logger

from boundaries import SAMPLE_CITY, SAMPLE_STREETS
from gis.crs import local_projected_crs
from gis.edits import AutoSplitResult, auto_split

TARGET_S = 2.0

log = logger("autosplit-bench")


def main(argv: list[str] | None = None) -> None:
    """Run the benchmark and print its JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--households", type=int, default=500)
    parser.add_argument("--parts", type=int, default=6)
    parser.add_argument("--tolerance", type=float, default=0.10)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument(
        "--maxp-iterations",
        type=int,
        default=10,
        help="spopt MaxPHeuristic construction iterations (its default, 99, takes minutes)",
    )
    args = parser.parse_args(argv)

    grid, buildings, streets = _sample_grid(args.households)
    unit = grid.geometry
    log(
        f"grid {grid['code']}: {int(buildings['households'].sum())} households, "
        f"{len(buildings)} buildings, {len(streets)} streets"
    )

    def ours() -> AutoSplitResult:
        return auto_split(
            unit, buildings, "households", streets, args.parts, tolerance=args.tolerance
        )

    seconds, result = best_of(ours, args.repeat)
    mine = {"seconds": round(seconds, 4), **result.summary()}
    log(f"auto_split: {seconds:.3f} s, max deviation {result.max_deviation:.3f}")

    atoms = result.atoms
    centre = shapely.centroid(unit)
    metric = atoms.to_crs(local_projected_crs(centre.x, centre.y))
    spopt = _spopt(metric, args.parts, args.tolerance, args.maxp_iterations)
    report: dict[str, Any] = {
        "benchmark": "autosplit",
        "grid": grid["code"],
        "households": int(buildings["households"].sum()),
        "buildings": len(buildings),
        "streets": len(streets),
        "parts": args.parts,
        "tolerance": args.tolerance,
        "atoms": len(atoms),
        "target_s": TARGET_S,
        "meets_target": seconds <= TARGET_S,
        "tongge": mine,
        "spopt": spopt,
        "ratios": _ratios(mine, spopt),
        "versions": _versions(),
    }
    print(json.dumps(report, ensure_ascii=False, indent=2))


def _sample_grid(households: int) -> tuple[Any, gpd.GeoDataFrame, gpd.GeoDataFrame]:
    grids = gpd.read_file(SAMPLE_CITY / "governance" / "grid.geojson")
    grid = grids.iloc[int((grids["households"] - households).abs().argmin())]
    buildings = gpd.read_parquet(SAMPLE_CITY / "places" / "buildings.parquet")
    inside = buildings[buildings.representative_point().within(grid.geometry)]
    streets = gpd.read_file(SAMPLE_STREETS)
    return grid, inside.reset_index(drop=True), streets[streets.intersects(grid.geometry)]


def _spopt(
    atoms: gpd.GeoDataFrame, parts: int, tolerance: float, maxp_iterations: int
) -> dict[str, Any]:
    import libpysal
    import spopt
    from spopt.region import MaxPHeuristic, Skater

    frame = atoms.copy()
    xy = shapely.get_coordinates(shapely.centroid(frame.geometry.values))
    frame["x"], frame["y"] = xy[:, 0], xy[:, 1]
    frame["households"] = frame["households"].astype(float)
    mean = frame["households"].sum() / parts
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        start = time.perf_counter()
        weights = libpysal.weights.Rook.from_dataframe(frame, use_index=False)
        weights_s = time.perf_counter() - start
        out: dict[str, Any] = {
            "version": spopt.__version__,
            "weights_s": round(weights_s, 4),
            "maxp_iterations_construction": maxp_iterations,
        }

        def skater() -> np.ndarray:
            model = Skater(
                frame,
                weights,
                ["x", "y"],
                n_clusters=parts,
                floor=max(1, len(frame) // (3 * parts)),
                islands="ignore",
            )
            model.solve()
            return np.asarray(model.labels_)

        def maxp() -> np.ndarray:
            model = MaxPHeuristic(
                frame,
                weights,
                ["x", "y"],
                "households",
                (1 - tolerance) * mean,
                top_n=2,
                max_iterations_construction=maxp_iterations,
            )
            np.random.seed(0)  # spopt draws from numpy's global generator
            model.solve()
            return np.asarray(model.labels_)

        for name, solve in (("skater", skater), ("maxp", maxp)):
            log(f"spopt {name}...")
            seconds, labels = best_of(solve, 1, warmup=False)
            out[name] = {"seconds": round(seconds, 4), **_measure(frame, labels)}
            log(f"spopt {name}: {seconds:.3f} s")
    return out


def _measure(frame: gpd.GeoDataFrame, labels: np.ndarray) -> dict[str, Any]:
    regions = sorted(set(labels.tolist()))
    households = np.array([frame["households"].to_numpy()[labels == r].sum() for r in regions])
    geoms = [shapely.coverage_union_all(frame.geometry.values[labels == r]) for r in regions]
    area, perimeter = shapely.area(geoms), shapely.length(geoms)
    pp = 4 * np.pi * area / perimeter**2
    mean = households.sum() / len(regions)
    deviation = np.abs(households / mean - 1)
    return {
        "regions": len(regions),
        "households": [int(h) for h in households],
        "max_deviation": round(float(deviation.max()), 4),
        "polsby_popper_mean": round(float(pp.mean()), 4),
        "polsby_popper_min": round(float(pp.min()), 4),
        "contiguous": all(len(shapely.get_parts(g)) == 1 for g in geoms),
    }


def _ratios(mine: dict[str, Any], spopt: dict[str, Any]) -> dict[str, Any]:
    ratios: dict[str, Any] = {}
    for name in ("skater", "maxp"):
        theirs = spopt[name]
        ratios[name] = {
            "time_spopt_over_tongge": round(theirs["seconds"] / mine["seconds"], 2),
            "max_deviation_tongge_over_spopt": round(
                mine["max_deviation"] / theirs["max_deviation"], 3
            )
            if theirs["max_deviation"]
            else None,
            "pp_mean_tongge_over_spopt": round(
                mine["polsby_popper_mean"] / theirs["polsby_popper_mean"], 3
            ),
            "pp_min_tongge_over_spopt": round(
                mine["polsby_popper_min"] / theirs["polsby_popper_min"], 3
            ),
        }
    return ratios


def _versions() -> dict[str, str]:
    return {
        "python": platform.python_version(),
        "shapely": shapely.__version__,
        "geos": shapely.geos_version_string,
        "geopandas": gpd.__version__,
        "numpy": np.__version__,
    }


if __name__ == "__main__":
    main()
