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
- one ``propose_alignment`` run on the split layer (for information);
- noise handling: the beats moved by a smooth random
  displacement of ``--noise-rms`` metres (a sum of low-frequency sinusoids
  applied to every vertex, so shared vertices stay shared), as a layer
  digitised separately would be; ``check_alignment`` must still find exactly
  the split grids and list the rest as boundary noise (target <= 2 s), and
  the strict check (``NO_NOISE``) shows what the noise would otherwise be.

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

from gis.alignment import (
    NO_NOISE,
    AlignmentReport,
    check_alignment,
    propose_alignment,
    shares,
)

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


def smooth_displacement(
    frame: gpd.GeoDataFrame, rms_m: float, *, seed: int, waves: int = 4
) -> gpd.GeoDataFrame:
    """Move every vertex of an EPSG:4490 frame by a smooth random field of ``rms_m`` metres rms.

    Parameters
    ----------
    frame : GeoDataFrame
        Polygons in EPSG:4490.
    rms_m : float
        Vector rms of the displacement, in metres.
    seed : int
        Seed of the wavelengths (0.4-2.5 km), directions and phases.
    waves : int, default 4
        Sinusoids summed per component.

    Returns
    -------
    GeoDataFrame
        The frame with moved geometries: vertices shared by two polygons move
        identically, so a valid coverage stays one.
    """
    rng = np.random.default_rng(seed)
    lon0, lat0 = frame.geometry.total_bounds[:2]
    per_lon = 111_320.0 * np.cos(np.radians(lat0))
    per_lat = 110_574.0
    lengths = rng.uniform(400.0, 2_500.0, waves)
    angles = rng.uniform(0.0, 2 * np.pi, waves)
    k = (2 * np.pi / lengths)[:, None] * np.column_stack([np.cos(angles), np.sin(angles)])
    phases = rng.uniform(0.0, 2 * np.pi, (waves, 2))
    amplitude = rms_m / np.sqrt(waves)

    def move(xy: np.ndarray) -> np.ndarray:
        phase = ((xy[:, 0] - lon0) * per_lon)[:, None] * k[:, 0] + (
            (xy[:, 1] - lat0) * per_lat
        )[:, None] * k[:, 1]
        dx = amplitude * np.sin(phase + phases[:, 0]).sum(axis=1)
        dy = amplitude * np.sin(phase + phases[:, 1]).sum(axis=1)
        return np.column_stack([xy[:, 0] + dx / per_lon, xy[:, 1] + dy / per_lat])

    moved = shapely.transform(np.asarray(frame.geometry.values, dtype=object), move)
    return frame.set_geometry(gpd.GeoSeries(moved, index=frame.index, crs=frame.crs))


def _polygons(geoms: np.ndarray) -> list[shapely.Geometry]:
    out = []
    for geom in geoms:
        parts = [p for p in shapely.get_parts(geom) if shapely.get_type_id(p) in (3, 6)]
        out.append(parts[0] if len(parts) == 1 else shapely.union_all(parts))
    return out


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
    parser.add_argument(
        "--noise-rms", type=float, default=3.0, help="digitising noise of the beats, m rms (3)"
    )
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

    log(f"timing check_alignment with {args.noise_rms} m rms boundary noise")
    # The split beats digitised again. Where a disc was cut out, a beat's
    # rings touch at a point; moved, they cross: make_valid mends those.
    noisy = smooth_displacement(beats, args.noise_rms, seed=args.seed + 2)
    noisy = noisy.set_geometry(
        gpd.GeoSeries(_polygons(shapely.make_valid(noisy.geometry.values)), crs=noisy.crs)
    )
    noisy_s, noisy_report = best_of(lambda: check_alignment(grids, noisy), args.repeat)
    assert isinstance(noisy_report, AlignmentReport)
    noisy_found = sorted(
        v.codes[0] for v in noisy_report.violations if v.kind == "grid_split_across_beats"
    )
    strict = check_alignment(grids, noisy, noise=NO_NOISE)
    log(
        f"noisy check: {noisy_s:.3f} s, {noisy_report.counts()}, "
        f"{len(noisy_report.noise)} noise pieces; strict: {strict.counts()}"
    )

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
        "noise": {
            "rms_m": args.noise_rms,
            "tongge_check_s": round(noisy_s, 4),
            "meets_target": noisy_s <= TARGET_S,
            "violations_by_kind": noisy_report.counts(),
            "split_grids_match": noisy_found == split,
            "noise_pieces": len(noisy_report.noise),
            "noise_max_width_m": round(max((n.width_m for n in noisy_report.noise), default=0), 2),
            "strict_violations_by_kind": strict.counts(),
        },
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
