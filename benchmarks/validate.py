"""Benchmark ``gis.validate.validate_units`` against a naive geopandas overlay check.

Builds a deterministic synthetic two-level layer (see :mod:`_synthetic`), then
times, in the same process and on the same data:

- ``validate_units(children, parents=parents)`` on the clean layer and on a
  copy with injected overlaps/gaps (best of ``--repeat`` runs, after one
  warm-up);
- the way an analyst would check the same with geopandas: a self
  ``sjoin(predicate="intersects")`` with the intersection area of every pair
  (overlaps) plus ``overlay(parents, children, how="difference")`` (gaps and
  parent coverage), in a metre CRS;
- :func:`shapely.coverage_is_valid` alone, as a lower bound.

Prints one JSON object to stdout; progress goes to stderr. With ``--profile``
(or automatically when tongge misses the target) a cProfile summary of one
clean run is written to stderr.

Run with ``.venv/bin/python benchmarks/validate.py``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from collections import Counter
from pathlib import Path

import geopandas as gpd
import numpy as np
import shapely

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import best_of, logger, profile_summary
from _synthetic import PROJECTED_EPSG, inject_faults, make_layer

from gis.validate import ValidationReport, validate_units

TARGET_S = 2.0
OVERLAP_MIN_M2 = 1.0  # same default as tongge's Tolerances.sliver_area_m2


log = logger("validate-bench")


def naive_overlay_check(children: gpd.GeoDataFrame, parents: gpd.GeoDataFrame) -> dict[str, int]:
    """Check overlaps and gaps the usual geopandas way.

    Projects both levels to EPSG:4549, self-joins the children with
    ``sjoin(predicate="intersects")`` and measures the intersection of every
    pair, then takes ``overlay(parents, children, how="difference")`` for the
    ground of each parent not covered by children.

    Parameters
    ----------
    children, parents : GeoDataFrame
        The two levels, with a ``code`` column.

    Returns
    -------
    dict
        ``{"overlap_pairs": ..., "uncovered_parts": ...}``: pairs overlapping
        by more than 1 m², and uncovered parts larger than 1 m².
    """
    kids = children[["code", "geometry"]].to_crs(PROJECTED_EPSG).reset_index(drop=True)
    tops = parents[["code", "geometry"]].to_crs(PROJECTED_EPSG).reset_index(drop=True)
    pairs = gpd.sjoin(kids, kids, predicate="intersects", how="inner")
    pairs = pairs[pairs.index < pairs["index_right"]]
    left = kids.geometry.loc[pairs.index].reset_index(drop=True)
    right = kids.geometry.loc[pairs["index_right"].to_numpy()].reset_index(drop=True)
    overlap_area = left.intersection(right).area
    uncovered = gpd.overlay(tops, kids, how="difference", keep_geom_type=True)
    uncovered_parts = uncovered.explode(index_parts=False)
    return {
        "overlap_pairs": int((overlap_area > OVERLAP_MIN_M2).sum()),
        "uncovered_parts": int((uncovered_parts.area > OVERLAP_MIN_M2).sum()),
    }


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
    parser.add_argument("--units", type=int, default=5_000, help="child units (default 5000)")
    parser.add_argument("--parents", type=int, default=250, help="parent units (default 250)")
    parser.add_argument("--repeat", type=int, default=3, help="timed runs, best kept (default 3)")
    parser.add_argument("--seed", type=int, default=20_240_601, help="layer seed")
    parser.add_argument("--faults", type=int, default=20, help="injected overlaps+gaps")
    parser.add_argument(
        "--naive-repeat",
        type=int,
        default=1,
        help="timed runs of the naive check (default 1, no warm-up)",
    )
    parser.add_argument(
        "--profile",
        action="store_true",
        help="print a cProfile summary of one clean tongge run to stderr",
    )
    args = parser.parse_args(argv)

    log(f"building layer: {args.units} units, {args.parents} parents, seed {args.seed}")
    start = time.perf_counter()
    layer = make_layer(args.units, args.parents, seed=args.seed)
    faulty, fault_rows = inject_faults(layer, args.faults, seed=args.seed + 1)
    children, parents = layer.children, layer.parents
    log(f"built in {time.perf_counter() - start:.1f} s, mean vertices {layer.mean_vertices:.1f}")

    def clean() -> ValidationReport:
        return validate_units(children, parents=parents)

    def broken() -> ValidationReport:
        return validate_units(faulty, parents=parents)

    log("timing tongge validate_units (clean)")
    clean_s, clean_report = best_of(clean, args.repeat)
    log(
        f"clean: {clean_s:.3f} s, {len(clean_report.problems)} problems, "
        f"{len(clean_report.warnings)} warnings"
    )
    log("timing tongge validate_units (faulty)")
    faulty_s, faulty_report = best_of(broken, args.repeat)
    by_rule = Counter(p.rule for p in faulty_report.problems)
    log(f"faulty: {faulty_s:.3f} s, {len(faulty_report.problems)} problems {dict(by_rule)}")

    geoms = np.asarray(children.geometry.values, dtype=object)
    log("timing shapely.coverage_is_valid")
    coverage_s, coverage_ok = best_of(lambda: shapely.coverage_is_valid(geoms), args.repeat)

    log("timing naive geopandas sjoin + intersection + overlay(difference)")
    naive_s, naive_clean = best_of(
        lambda: naive_overlay_check(children, parents), args.naive_repeat, warmup=False
    )
    log(f"naive: {naive_s:.3f} s, clean layer {naive_clean}")
    naive_faulty = naive_overlay_check(faulty, parents)
    log(f"naive on faulty layer: {naive_faulty}")

    meets = clean_s <= TARGET_S
    if args.profile or not meets:
        log("profile of one clean validate_units run:\n" + profile_summary(clean))

    result = {
        "benchmark": "validate",
        "units": len(children),
        "parents": len(parents),
        "mean_vertices": round(layer.mean_vertices, 1),
        "tongge_clean_s": round(clean_s, 4),
        "tongge_faulty_s": round(faulty_s, 4),
        "problems_found_clean": len(clean_report.problems),
        "faults_injected": len(fault_rows),
        "problems_found_faulty": len(faulty_report.problems),
        "problems_by_rule_faulty": dict(sorted(by_rule.items())),
        "naive_overlay_s": round(naive_s, 4),
        "naive_found_faulty": naive_faulty,
        "ratio_naive_over_tongge": round(naive_s / clean_s, 2),
        "shapely_coverage_is_valid_s": round(coverage_s, 4),
        "coverage_is_valid": bool(coverage_ok),
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
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
