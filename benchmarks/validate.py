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
- :func:`shapely.coverage_is_valid` alone, as a lower bound;
- the import path on a copy whose shared edges are not noded
  (``--unnoded-share`` of the units, default 1 %, scattered over the layer,
  carry extra vertices on their edges, as after ``difference`` / ``union``
  edits): :func:`gis.coverage.node_level`, then ``validate_units``
  of the noded level (``tongge_unnoded_with_noding_s``), the target
  including noding.

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

from gis.coverage import node_level
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


def unnode(children: gpd.GeoDataFrame, share: float, seed: int) -> gpd.GeoDataFrame:
    """Give ``share`` of the units extra vertices on their edges (neighbours lack them)."""
    rng = np.random.default_rng(seed)
    chosen = rng.choice(len(children), size=max(1, int(len(children) * share)), replace=False)
    copy = children.copy()
    geometries = np.asarray(copy.geometry.values, dtype=object)
    lengths = shapely.length(geometries[chosen]) / np.maximum(
        shapely.get_num_coordinates(geometries[chosen]), 1
    )
    geometries[chosen] = shapely.segmentize(geometries[chosen], lengths / 2)
    copy["geometry"] = gpd.GeoSeries(geometries, index=copy.index, crs=copy.crs)
    return copy


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
        "--unnoded-share",
        type=float,
        default=0.01,
        help="share of units given vertices their neighbours lack (default 0.01)",
    )
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

    unnoded = unnode(children, args.unnoded_share, args.seed + 2)

    def import_path() -> tuple[ValidationReport, int]:
        # As an import does it: node first, then validate the noded level
        # (GEOS' fast coverage path); noding moved no ground, so no fallback.
        noded, fixes = node_level(unnoded)
        return validate_units(noded, parents=parents, noded=True), len(fixes)

    log(f"timing noding + validate ({args.unnoded_share:.0%} of units not noded)")
    noding_s, (unnoded_report, noded) = best_of(import_path, args.repeat)
    noded_warnings = int(
        not shapely.coverage_is_valid(np.asarray(node_level(unnoded)[0].geometry.values))
    )
    log(f"unnoded: {noding_s:.3f} s, {noded} units noded, valid coverage: {not noded_warnings}")

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

    meets = clean_s <= TARGET_S and noding_s <= TARGET_S
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
        "tongge_unnoded_with_noding_s": round(noding_s, 4),
        "noded_is_valid_coverage": not noded_warnings,
        "problems_after_noding": len(unnoded_report.problems),
        "units_noded": noded,
        "unnoded_share": args.unnoded_share,
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
