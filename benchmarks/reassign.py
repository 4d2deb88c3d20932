"""Re-assignment after a one-grid change on the sample city, against re-assigning everything.

Loads the sample city (26,000 buildings over 2,230 micro-grids) into a
temporary SpatiaLite file, moves a 30 m strip of grid ``350502004011003`` into
``350502004011002`` (the change the consistency issue describes) and imports
it with ``cascade="new"``. Times, in the same process, warm (numba compiled):

- ``reassign_s``: the import's places step alone: the buildings whose
  micro-grid changes, found around the changed ground only (target ≤ 1 s);
- ``plan_s``: the whole dry-run import (read, node, validate, cascade, places);
- ``apply_s``: the real import (the same plus the write transaction);
- ``full_assign_s``: assigning every building again with
  :func:`gis.places.assign_places` (what a system without a diff would do);
- ``geopandas_sjoin_s``: a geopandas ``sjoin`` of every building's
  representative point with the new micro-grids (the usual tool).

Prints one JSON object; progress to stderr.
Run: ``python benchmarks/reassign.py``.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time
from pathlib import Path

import geopandas as gpd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import logger  # noqa: E402

from api.bootstrap import open_database  # noqa: E402
from gis.places import assign_places  # noqa: E402
from gis.settings import Settings  # noqa: E402
from gis.times import utc_now  # noqa: E402
from gis.units import import_units, units_page  # noqa: E402

GIVER, TAKER = "350502004011003", "350502004011002"
TARGET_S = 1.0
log = logger("reassign-bench")


def main() -> int:
    """Run the benchmark and print the JSON result."""
    folder = Path(tempfile.mkdtemp(prefix="tongge-reassign-"))
    log("loading the sample city (about a minute)")
    db = open_database(
        Settings(database_url=f"sqlite:///{folder / 'city.sqlite'}", load_sample_city=True),
        create=True,
    )
    grids, _ = units_page(db, layer="governance", level="grid", limit=10_000)
    grids = grids[["code", "name", "parent_code", "kind", "attributes", "geometry"]].copy()
    grids = grids.reset_index(drop=True)
    a = grids.index[grids["code"] == GIVER][0]
    b = grids.index[grids["code"] == TAKER][0]
    strip = grids.geometry[a].intersection(grids.geometry[b].buffer(30 / 111_320))
    grids.loc[a, "geometry"] = grids.geometry[a].difference(strip)
    grids.loc[b, "geometry"] = grids.geometry[b].union(strip)
    edited = gpd.GeoDataFrame(grids, geometry="geometry", crs=4490)

    phases: dict[str, float] = {}

    def step(name: str) -> None:
        phases[name] = time.perf_counter()

    def plan() -> tuple[float, float, int]:
        phases.clear()
        start = time.perf_counter()
        result = import_units(
            db,
            units=edited,
            layer="governance",
            level="grid",
            source="benchmark",
            cascade="new",
            dry_run=True,
            step=step,
        )
        end = time.perf_counter()
        return end - start, end - phases["places"], len(result.moves)

    log("warming up (numba, caches)")
    plan()
    runs = [plan() for _ in range(3)]
    plan_s = min(r[0] for r in runs)
    reassign_s = min(r[1] for r in runs)
    moved = runs[-1][2]
    log(f"plan {plan_s:.2f} s, re-assignment {reassign_s:.3f} s, {moved} buildings move")

    log("full re-assignment of every building")
    start = time.perf_counter()
    everything = assign_places(db, layer="governance", level="micro_grid")
    full_s = time.perf_counter() - start

    log("geopandas sjoin of every building with the micro-grids")
    with db.reader() as repo:
        buildings = repo.places.buildings_frame()
    micro, _ = units_page(db, layer="governance", level="micro_grid", limit=100_000)
    start = time.perf_counter()
    points = buildings.set_geometry(buildings.geometry.representative_point())
    joined = gpd.sjoin(points[["key", "geometry"]], micro[["code", "geometry"]], predicate="within")
    sjoin_s = time.perf_counter() - start

    log("applying it")
    start = time.perf_counter()
    applied = import_units(
        db,
        units=edited,
        layer="governance",
        level="grid",
        source="benchmark",
        cascade="new",
        valid_from=utc_now(),
    )
    apply_s = time.perf_counter() - start
    print(
        json.dumps(
            {
                "benchmark": "reassign",
                "buildings": len(buildings),
                "micro_grids": len(micro),
                "moved_buildings": moved,
                "reassign_s": round(reassign_s, 3),
                "plan_s": round(plan_s, 3),
                "apply_s": round(apply_s, 3),
                "applied_versions": applied.versions,
                "full_assign_s": round(full_s, 3),
                "full_assigned": len(everything.frame),
                "geopandas_sjoin_s": round(sjoin_s, 3),
                "sjoin_matched": len(joined),
                "ratio_full_over_reassign": round(full_s / reassign_s, 1),
                "ratio_sjoin_over_reassign": round(sjoin_s / reassign_s, 1),
                "target_s": TARGET_S,
                "meets_target": reassign_s <= TARGET_S,
                "machine": {"cpus": os.cpu_count(), "python": sys.version.split()[0]},
            }
        )
    )
    db.dispose()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
