"""Benchmark ``gis.alignment.check_alignment`` against a geopandas overlay + groupby.

Builds the deterministic synthetic layer of :mod:`_synthetic` (5,000 grids
grouped into 500 beats, so aligned by construction), then splits ~2% of the
grids: for each chosen grid on a beat boundary, the part of it within a disc
centred on the boundary is moved into the neighbouring beat. Times, in the
same process and on the same data:

- ``check_alignment(grids, beats)`` (best of ``--repeat`` runs, after one
  warm-up), and :func:`gis.alignment.shares` alone;
- the way an analyst would compute the same shares with geopandas: project
  both layers to EPSG:4549, ``overlay(grids, beats, how="intersection")``,
  then the area share of every piece per grid with a ``groupby``;
- one ``propose_alignment`` run on the split layer (for information).

Prints one JSON object to stdout; progress goes to stderr. Run with
``.venv/bin/python benchmarks/align.py``.
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

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import best_of, logger
from _synthetic import PROJECTED_EPSG, SyntheticLayer, make_layer

from gis.alignment import AlignmentReport, check_alignment, propose_alignment, shares

TARGET_S = 2.0
TOLERANCE_SHARE = 0.001  # check_alignment's defaults, used by the naive check too
TOLERANCE_M2 = 1.0


log = logger("align-bench")


def split_grids(
    layer: SyntheticLayer, fraction: float, *, seed: int
) -> tuple[gpd.GeoDataFrame, gpd.GeoDataFrame, list[str]]:
    """Return grids, beats with ``fraction`` of the grids split, and the split grid codes.

    Each chosen grid shares an edge with another beat; the part of the grid
    within a disc (radius ~0.35 x the grid's width) centred on the middle of
    that edge is moved from its beat into the other. The work is done in
    EPSG:4490 so that the untouched beats keep their exact vertices.

    Parameters
    ----------
    layer : SyntheticLayer
        Children are the grids, parents the beats.
    fraction : float
        Share of the grids to split.
    seed : int
        Seed for choosing the grids.

    Returns
    -------
    grids, beats : GeoDataFrame
        EPSG:4490 frames with a ``code`` column (the grids' ``parent_code``,
        their beat, is dropped: it is not a community).
    split : list of str
        The codes of the split grids.
    """
    rng = np.random.default_rng(seed)
    grids = layer.children[["code", "geometry"]].copy()
    beats = layer.parents[["code", "geometry"]].copy()
    beat_row = {code: i for i, code in enumerate(beats["code"])}
    home = np.array([beat_row[p] for p in layer.children["parent_code"]])
    grid_geoms = np.asarray(grids.geometry.values, dtype=object)
    beat_geoms = np.asarray(beats.geometry.values, dtype=object).copy()
    tree = shapely.STRtree(beat_geoms)
    wanted = round(fraction * len(grids))
    split: list[str] = []
    for g in rng.permutation(len(grids)):
        if len(split) == wanted:
            break
        near = tree.query(grid_geoms[g], predicate="intersects")
        near = near[near != home[g]]
        if not len(near):
            continue
        edges = shapely.intersection(
            shapely.boundary(grid_geoms[g]), shapely.boundary(beat_geoms[near])
        )
        lengths = shapely.length(edges)
        if lengths.max() <= 0:
            continue
        into = int(near[int(np.argmax(lengths))])
        centre = shapely.line_interpolate_point(
            shapely.line_merge(edges[int(np.argmax(lengths))]), 0.5, normalized=True
        )
        radius = 0.35 * np.sqrt(shapely.area(grid_geoms[g]))
        part = shapely.intersection(grid_geoms[g], shapely.buffer(centre, radius))
        beat_geoms[home[g]] = shapely.difference(beat_geoms[home[g]], part)
        beat_geoms[into] = shapely.union(beat_geoms[into], part)
        split.append(str(grids["code"].iloc[g]))
    beats = beats.set_geometry(gpd.GeoSeries(beat_geoms, index=beats.index, crs=beats.crs))
    return grids, beats, sorted(split)


def naive_shares(grids: gpd.GeoDataFrame, beats: gpd.GeoDataFrame) -> pd.DataFrame:
    """Compute the share of every grid in every beat the usual geopandas way.

    Parameters
    ----------
    grids, beats : GeoDataFrame
        The two layers, with a ``code`` column.

    Returns
    -------
    DataFrame
        ``a_code``, ``b_code``, ``area_m2``, ``area_share`` for every piece
        of ``overlay(grids, beats, how="intersection")`` in EPSG:4549.
    """
    a = grids[["code", "geometry"]].to_crs(PROJECTED_EPSG).rename(columns={"code": "a_code"})
    b = beats[["code", "geometry"]].to_crs(PROJECTED_EPSG).rename(columns={"code": "b_code"})
    a["a_area"] = a.area
    pieces = gpd.overlay(a, b, how="intersection", keep_geom_type=True)
    pieces["area_m2"] = pieces.area
    table = pieces.groupby(["a_code", "b_code"], as_index=False).agg(
        area_m2=("area_m2", "sum"), a_area=("a_area", "first")
    )
    table["area_share"] = table["area_m2"] / table["a_area"]
    return table.drop(columns="a_area")


def split_by_naive(table: pd.DataFrame) -> list[str]:
    """Grids with pieces in two or more beats above the tolerances.

    Parameters
    ----------
    table : DataFrame
        From :func:`naive_shares`.

    Returns
    -------
    list of str
        Their codes, sorted.
    """
    significant = table[
        (table["area_m2"] >= TOLERANCE_M2) & (table["area_share"] >= TOLERANCE_SHARE)
    ]
    counts = significant.groupby("a_code").size()
    return sorted(counts[counts >= 2].index)


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
    parser.add_argument("--grids", type=int, default=5_000, help="grids (default 5000)")
    parser.add_argument("--beats", type=int, default=500, help="beats (default 500)")
    parser.add_argument("--split", type=float, default=0.02, help="share of grids split (0.02)")
    parser.add_argument("--repeat", type=int, default=3, help="timed runs, best kept (default 3)")
    parser.add_argument("--seed", type=int, default=20_240_601, help="layer seed")
    parser.add_argument(
        "--naive-repeat", type=int, default=1, help="timed runs of the naive overlay (default 1)"
    )
    parser.add_argument("--no-propose", action="store_true", help="skip propose_alignment")
    args = parser.parse_args(argv)

    log(f"building layer: {args.grids} grids, {args.beats} beats, seed {args.seed}")
    start = time.perf_counter()
    layer = make_layer(args.grids, args.beats, seed=args.seed)
    grids, beats, split = split_grids(layer, args.split, seed=args.seed + 1)
    log(f"built in {time.perf_counter() - start:.1f} s; {len(split)} grids split")

    log("timing tongge check_alignment")
    check_s, report = best_of(lambda: check_alignment(grids, beats), args.repeat)
    assert isinstance(report, AlignmentReport)
    found = sorted(v.codes[0] for v in report.violations if v.kind == "grid_split_across_beats")
    log(f"check: {check_s:.3f} s, {report.counts()}, {report.slivers} slivers")
    log("timing tongge shares")
    shares_s, _ = best_of(lambda: shares(grids, beats), args.repeat)
    unsplit = layer.children[["code", "geometry"]]
    clean_s, clean = best_of(lambda: check_alignment(unsplit, layer.parents), args.repeat)
    log(f"shares: {shares_s:.3f} s; check of the unsplit layer: {clean_s:.3f} s")

    log("timing naive geopandas overlay(intersection) + groupby")
    naive_s, table = best_of(lambda: naive_shares(grids, beats), args.naive_repeat, warmup=False)
    naive_found = split_by_naive(table)
    log(f"naive: {naive_s:.3f} s, {len(naive_found)} split grids")

    propose: dict[str, Any] | None = None
    if not args.no_propose:
        log("running propose_alignment once")
        start = time.perf_counter()
        proposal = propose_alignment(grids, beats)
        propose = {
            "seconds": round(time.perf_counter() - start, 3),
            "aligned": proposal.aligned,
            "moves": len(proposal.moves),
            "unresolved": len(proposal.unresolved),
        }
        log(f"propose: {propose}")

    result = {
        "benchmark": "align",
        "grids": len(grids),
        "beats": len(beats),
        "mean_vertices": round(layer.mean_vertices, 1),
        "grids_split": len(split),
        "tongge_check_s": round(check_s, 4),
        "tongge_shares_s": round(shares_s, 4),
        "tongge_check_aligned_layer_s": round(clean_s, 4),
        "aligned_layer_is_aligned": clean.aligned,
        "violations_by_kind": report.counts(),
        "split_grids_found": len(found),
        "split_grids_match": found == split,
        "slivers": report.slivers,
        "naive_overlay_s": round(naive_s, 4),
        "naive_split_grids_match": naive_found == split,
        "ratio_naive_over_tongge": round(naive_s / check_s, 2),
        "target_s": TARGET_S,
        "meets_target": check_s <= TARGET_S,
        "propose": propose,
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
