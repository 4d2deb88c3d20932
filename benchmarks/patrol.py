"""Benchmark patrol planning (:func:`gis.patrol.plan_patrol`) against networkx ``eulerize``.

Two units of about 500 street segments, each planned on its own streets
(connected, so networkx's ``eulerize`` applies to the same graph):

- ``monaco``: the walking streets of the Monte-Carlo ward of
  ``../shared/data/monaco/monaco.osm.pbf`` (pyrosm), clipped to the ward;
- ``grid``: a synthetic street grid (16 x 16 junctions, 100 m blocks with
  +-20 m jitter, 5 % of the blocks missing), deterministic by ``--seed``.

For each: the best planning time of ``--repeat`` runs (after a warm-up),
the tour length against the street length, the lower bound, the exact
optimum (matching over all pairs of odd nodes, however long it takes) and the
tour of networkx ``eulerize`` + ``eulerian_circuit`` (which pairs odd nodes
by hop count, not metres) and its time. libpysal's Tempe streets are added
when libpysal is installed. Prints one JSON object; progress on stderr.
Run with ``.venv/bin/python benchmarks/patrol.py``.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path
from typing import Any

import geopandas as gpd
import networkx as nx
import numpy as np
import shapely
from pyproj import CRS

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import best_of, logger

from gis.patrol import StreetNetwork, _postman, network_from_frame, plan_patrol, read_network

TARGET_S = 2.0
MONACO = Path(__file__).resolve().parents[2] / "shared" / "data" / "monaco" / "monaco.osm.pbf"
WARD = "Monte-Carlo"

log = logger("patrol-bench")


def main() -> None:
    """Run the benchmark and print its JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    cases: dict[str, StreetNetwork] = {}
    if MONACO.exists():
        log(f"reading {MONACO.name} ({WARD})")
        cases["monaco"] = monaco_ward()
    cases["grid"] = synthetic_grid(args.seed)
    try:
        import libpysal

        log("reading libpysal's Tempe geodanet streets")
        cases["tempe"] = read_network(libpysal.examples.get_path("streets.shp"), mode="walk")
    except ImportError:  # pragma: no cover - libpysal is optional
        log("libpysal not installed: no Tempe case")
    results = {name: run(network, repeat=args.repeat) for name, network in cases.items()}
    print(
        json.dumps(
            {
                "benchmark": "patrol",
                "target_s": TARGET_S,
                "python": platform.python_version(),
                "networkx": nx.__version__,
                "cases": results,
            },
            indent=2,
        )
    )


def monaco_ward() -> StreetNetwork:
    """Return the walking streets inside the ward (largest connected part)."""
    import pyrosm

    wards = pyrosm.OSM(str(MONACO)).get_boundaries()
    ward = wards[wards["name"] == WARD].geometry.iloc[0]
    around = read_network(MONACO, mode="walk", area=ward)
    unit = gpd.GeoSeries([ward], crs="EPSG:4326").to_crs(around.crs).iloc[0]
    mids = shapely.line_interpolate_point(around.segments.geometry.values, 0.5, normalized=True)
    inside = around.segments[shapely.covers(unit, mids)]
    return network_from_frame(inside, crs=around.crs, node_crossings=False)


def synthetic_grid(seed: int, *, size: int = 16, block: float = 100.0) -> StreetNetwork:
    """Return a jittered street grid with a few blocks missing."""
    rng = np.random.default_rng(seed)
    xy = np.stack(np.meshgrid(np.arange(size), np.arange(size)), axis=-1) * block
    xy = xy + rng.uniform(-20, 20, xy.shape) + (500_000, 2_750_000)
    lines = []
    for i in range(size):
        for j in range(size):
            for di, dj in ((1, 0), (0, 1)):
                if i + di < size and j + dj < size and rng.random() > 0.05:
                    lines.append(shapely.LineString([xy[i, j], xy[i + di, j + dj]]))
    crs = CRS.from_epsg(4549)
    frame = gpd.GeoDataFrame(geometry=lines, crs=crs)
    return network_from_frame(frame, crs=crs)


def run(network: StreetNetwork, *, repeat: int) -> dict[str, Any]:
    """Plan, time, and compare with networkx eulerize."""
    segments = len(network.segments)
    log(f"{segments} segments: planning")
    seconds, plan = best_of(lambda: plan_patrol(network), repeat)
    seg = network.segments
    odd = int((np.bincount(np.concatenate([seg["u"], seg["v"]])) % 2).sum())
    log(f"{odd} odd nodes: the exact matching on all pairs (no limit)")
    limit = _postman.EXACT_MATCHING
    _postman.EXACT_MATCHING = 1_000_000
    try:
        start = time.perf_counter()
        exact = plan_patrol(network)
        exact_s = time.perf_counter() - start
    finally:
        _postman.EXACT_MATCHING = limit
    log("networkx eulerize + eulerian_circuit")
    start = time.perf_counter()
    euler_length = eulerize_length(network)
    euler_s = time.perf_counter() - start
    street = plan.street_length_m
    return {
        "segments": segments,
        "odd_nodes": odd,
        "street_length_m": round(street, 1),
        "plan_s": round(seconds, 3),
        "within_target": seconds <= TARGET_S,
        "tour_m": round(plan.length_m, 1),
        "lower_bound_m": round(plan.lower_bound_m, 1),
        "method": plan.method,
        "exact": plan.exact,
        "exact_tour_m": round(exact.length_m, 1),
        "exact_s": round(exact_s, 3),
        "eulerize_tour_m": round(euler_length, 1),
        "eulerize_s": round(euler_s, 3),
        "ratio_tour_to_streets": round(plan.length_m / street, 4),
        "ratio_eulerize_to_streets": round(euler_length / street, 4),
        "ratio_tour_to_eulerize": round(plan.length_m / euler_length, 4),
        "ratio_tour_to_lower_bound": round(plan.length_m / plan.lower_bound_m, 4),
        "ratio_tour_to_exact": round(plan.length_m / exact.length_m, 6),
        "ratio_exact_to_streets": round(exact.length_m / street, 4),
    }


def eulerize_length(network: StreetNetwork) -> float:
    """Tour length of networkx ``eulerize`` + ``eulerian_circuit`` on the network."""
    seg = network.segments
    graph = nx.MultiGraph()
    shortest: dict[tuple[int, int], float] = {}
    for u, v, w in zip(seg["u"].tolist(), seg["v"].tolist(), seg["length"].tolist(), strict=True):
        graph.add_edge(u, v, weight=w)
        for key in ((u, v), (v, u)):
            shortest[key] = min(shortest.get(key, np.inf), w)
    euler = nx.eulerize(graph)
    total = 0.0
    for u, v, key in nx.eulerian_circuit(euler, keys=True):
        total += euler[u][v][key].get("weight", shortest[(u, v)])
    return total


if __name__ == "__main__":
    main()
