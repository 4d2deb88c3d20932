"""Edit operations on the sample city: core operations, preview and apply, percentiles.

Loads the sample city (2,225 micro-grids, 26,000 buildings) into a temporary
SpatiaLite file and times, in the same process:

- ``split_ms`` / ``transfer_ms``: the core operations on the in-memory layer
  (snap, node the faces on the 1e-7° grid, check parents and buildings,
  cascade to micro-grids), p50/p95 over random grids;
- ``naive_ms``: the same split as a plain ``shapely`` difference of the
  unit with a buffered line (what a desktop GIS does without topology:
  no noding, no children, no checks) — the ``ratio`` is ours over it;
- ``preview_ms``: ``gis.edits.service.edit(dry_run=True)`` (the import
  pipeline's dry run, moves, workload, alignment) — target p95 ≤ 100 ms;
- ``apply_ms``: the same, written (target ≤ 1 s).

Prints one JSON object; progress to stderr.
Run: ``python benchmarks/edit.py [--count 20] [--apply 3]``.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import shapely

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import logger  # noqa: E402

from api.bootstrap import open_database  # noqa: E402
from gis.edits import EditOptions, split, transfer  # noqa: E402
from gis.edits.service import edit, load_state  # noqa: E402
from gis.errors import EditRefusedError  # noqa: E402
from gis.settings import Settings  # noqa: E402

log = logger("edit-bench")
_DEG = 111_320.0


def main() -> int:
    """Run the benchmark and print the JSON result."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--count", type=int, default=20, help="random grids per operation")
    parser.add_argument("--apply", type=int, default=3, help="edits written")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="tongge-edit-"))
    log("loading the sample city (about a minute)")
    db = open_database(
        Settings(database_url=f"sqlite:///{folder / 'city.sqlite'}", load_sample_city=True),
        create=True,
    )
    state = load_state(db, layer="governance")
    grids = state.frame("grid")
    rng = np.random.default_rng(args.seed)
    picks = rng.choice(len(grids), size=args.count, replace=False)
    options = EditOptions(force=True)
    timings: dict[str, list[float]] = {"split": [], "transfer": [], "naive": [], "preview": []}
    refused = 0
    lines = []
    for i in picks:
        geometry = grids.geometry.values[i]
        centre = shapely.point_on_surface(geometry)
        minx, miny, maxx, maxy = geometry.bounds
        reach = max(maxx - minx, maxy - miny)
        cut = shapely.LineString([(centre.x - reach, centre.y), (centre.x + reach, centre.y)])
        lines.append((str(grids["code"].iloc[i]), cut))
        start = time.perf_counter()
        try:
            split(
                state, level="grid", unit=str(grids["code"].iloc[i]), geometry=cut, options=options
            )
        except EditRefusedError:
            refused += 1
        timings["split"].append(time.perf_counter() - start)
        start = time.perf_counter()
        shapely.difference(geometry, shapely.buffer(cut, 1e-9))
        timings["naive"].append(time.perf_counter() - start)
        blob = shapely.buffer(shapely.Point(maxx, centre.y), 20 / _DEG)
        near = grids.iloc[grids.sindex.query(blob, predicate="intersects")]
        others = [str(c) for c in near["code"] if c != grids["code"].iloc[i]]
        if others:
            start = time.perf_counter()
            try:
                transfer(state, level="grid", geometry=blob, to=others[0], options=options)
            except EditRefusedError:
                refused += 1
            timings["transfer"].append(time.perf_counter() - start)
    log("previews through the service")
    for code, cut in lines[: max(3, args.count // 4)]:
        start = time.perf_counter()
        try:
            edit(
                db,
                layer="governance",
                op="split",
                level="grid",
                units=[code],
                geometry=cut,
                options=options,
                dry_run=True,
            )
        except EditRefusedError:
            refused += 1
        timings["preview"].append(time.perf_counter() - start)
    applied = []
    for code, cut in lines[: args.apply]:
        start = time.perf_counter()
        try:
            edit(
                db,
                layer="governance",
                op="split",
                level="grid",
                units=[code],
                geometry=cut,
                options=options,
            )
        except EditRefusedError:
            refused += 1
        applied.append(time.perf_counter() - start)
    timings["apply"] = applied

    def stats(values: list[float]) -> dict[str, float]:
        ms = np.asarray(values) * 1000
        if not len(ms):
            return {}
        return {
            "p50": round(float(np.percentile(ms, 50)), 2),
            "p95": round(float(np.percentile(ms, 95)), 2),
            "n": len(ms),
        }

    result = {
        "units": {"grids": len(grids), "micro_grids": len(state.frame("micro_grid"))},
        **{f"{k}_ms": stats(v) for k, v in timings.items()},
        "ratio_split_vs_naive_p50": round(
            float(np.percentile(timings["split"], 50) / np.percentile(timings["naive"], 50)), 1
        ),
        "refused": refused,
        "targets": {"preview_p95_ms": 100, "apply_ms": 1000},
    }
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
