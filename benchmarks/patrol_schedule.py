"""Benchmark the weekly visit schedule (:func:`gis.patrol.plan_week`) against k-means clustering.

On grids of the sample city (its stored streets, households and shops),
five working days, 5 minutes a door: the time of ``plan_week`` (route first,
cluster second, with rebalancing), the spread of the days (largest relative
deviation from the mean day: work = walking time + door time) and the total
walking, against the usual "cluster first" approach — scikit-learn ``KMeans``
(k = days) on the door coordinates, each cluster routed by the same postman
machinery. Prints one JSON object; progress on stderr.
Run with ``.venv/bin/python benchmarks/patrol_schedule.py``.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import logger

from api.bootstrap import open_database
from gis.patrol._schedule import _DayRouter, _fronting, plan_week
from gis.patrol._service import SCHEDULE_MARGIN_M, load_unit, stored_network, unit_places
from gis.settings import Settings

log = logger("schedule-bench")
GRIDS = ("350502001001001", "350502001001002", "350502002001001")


def main() -> None:
    """Run the benchmark and print its JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=int, default=5)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp())
    log("loading the sample city")
    db = open_database(
        Settings(database_url=f"sqlite:///{folder / 'city.sqlite'}", load_sample_city=True),
        create=True,
    )
    results = {code: run(db, code, days=args.days, seed=args.seed) for code in GRIDS}
    print(
        json.dumps(
            {
                "benchmark": "patrol_schedule",
                "python": platform.python_version(),
                "days": args.days,
                "grids": results,
            },
            indent=2,
        )
    )


def run(db: Any, code: str, *, days: int, seed: int) -> dict[str, Any]:
    """Schedule one grid both ways; return the figures."""
    from sklearn.cluster import KMeans

    area = load_unit(db, code=code, layer="governance")
    places = unit_places(db, area)
    network = stored_network(db, area=area, margin_m=SCHEDULE_MARGIN_M)
    log(f"{code}: {len(places)} places, {len(network.segments)} segments")
    started = time.perf_counter()
    week = plan_week(network, places, days=days, area=area.geometry, area_crs=area.crs)
    ours_s = time.perf_counter() - started
    ours = week.work()
    # Cluster first: k-means on the doors (metres), each cluster routed the same way.
    started = time.perf_counter()
    seg_of, _ = _fronting(network, places)
    from pyproj import CRS

    from gis.crs import transformer

    x, y = transformer(CRS.from_epsg(4326), network.crs).transform(
        places["lon"].to_numpy(float), places["lat"].to_numpy(float)
    )
    labels = KMeans(n_clusters=days, n_init=10, random_state=seed).fit_predict(
        np.column_stack([x, y])
    )
    home = network.nodes[week.start_node]
    lon, lat = transformer(network.crs, CRS.from_epsg(4326)).transform(*home)
    router = _DayRouter(network, (float(lon), float(lat)), 300.0, "time")
    kmeans = np.array([router.work(np.flatnonzero(labels == k), seg_of) for k in range(days)])
    kmeans_walk = sum(
        router.route(frozenset(seg_of[labels == k].tolist())).length_m for k in range(days)
    )
    kmeans_s = time.perf_counter() - started

    def spread(work: np.ndarray) -> float:
        return float(np.abs(work - work.mean()).max() / work.mean())

    ours_walk = sum(d.length_m for d in week.days)
    return {
        "places": len(places),
        "segments": len(network.segments),
        "plan_week_s": round(ours_s, 2),
        "kmeans_s": round(kmeans_s, 2),
        "spread": round(spread(ours), 4),
        "kmeans_spread": round(spread(kmeans), 4),
        "walk_m": round(ours_walk, 1),
        "kmeans_walk_m": round(float(kmeans_walk), 1),
        "walk_ratio_to_kmeans": round(ours_walk / float(kmeans_walk), 3),
        "balanced": week.balanced,
    }


if __name__ == "__main__":
    main()
