"""Vector tiles of the sample city: ours against PostGIS ``ST_AsMVT`` in the same run.

Loads the sample city (2,225 micro-grids) into a temporary SpatiaLite file and
times, for every micro-grid tile of the district at zooms 13-16:

- ``first_tile_s``: the very first tile after start-up (builds the level's
  web-mercator copy, the simplification of that zoom and the households);
- ``cold``: each tile encoded from the prepared coverage (tile cache empty):
  p50/p95/max in ms (target p95 ≤ 50 ms);
- ``cached``: the same tiles again from the cache (target p95 ≤ 5 ms);
- ``district_view_s``: every tile of a full-district view at zoom 13, cold;
- ``postgis``: the same tiles cut by PostGIS ``ST_AsMVTGeom``/``ST_AsMVT`` on a
  GiST-indexed table (no simplification: PostGIS 3.3 has no coverage
  simplification), with ``ratio_postgis_over_ours`` per percentile.

Prints one JSON object; progress to stderr.
Run: ``python benchmarks/tiles.py [--postgres-url URL]``.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import shapely

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import logger  # noqa: E402

from api.bootstrap import open_database  # noqa: E402
from gis.locate import LocateService  # noqa: E402
from gis.places import UnitPlaces  # noqa: E402
from gis.revisions import RevisionClock  # noqa: E402
from gis.settings import Settings  # noqa: E402
from gis.tiles import TileService  # noqa: E402

POSTGRES_URL = "postgresql://postgres@127.0.0.1:5432/tongge_test"
LAYER, LEVEL = "governance", "micro_grid"
log = logger("tiles-bench")


def tiles_covering(bounds: tuple[float, float, float, float], z: int) -> list[tuple[int, int, int]]:
    """XYZ tiles covering lon/lat bounds at zoom ``z``."""

    def tile(lon: float, lat: float) -> tuple[int, int]:
        n = 1 << z
        x = int((lon + 180) / 360 * n)
        y = int((1 - math.asinh(math.tan(math.radians(lat))) / math.pi) / 2 * n)
        return x, y

    x0, y0 = tile(bounds[0], bounds[3])
    x1, y1 = tile(bounds[2], bounds[1])
    return [(z, x, y) for x in range(x0, x1 + 1) for y in range(y0, y1 + 1)]


def percentiles(seconds: list[float]) -> dict[str, float]:
    ms = np.asarray(seconds) * 1000
    return {
        "n": len(ms),
        "p50_ms": round(float(np.percentile(ms, 50)), 2),
        "p95_ms": round(float(np.percentile(ms, 95)), 2),
        "max_ms": round(float(ms.max()), 2),
    }


def postgis_tiles(url: str, units: Any, tiles: list[tuple[int, int, int]]) -> dict[str, Any]:
    """Time ``ST_AsMVT`` over a GiST-indexed temporary copy of the units."""
    try:
        import psycopg
    except ImportError as error:  # pragma: no cover - psycopg is a dependency
        return {"skipped": f"psycopg unavailable: {error}"}
    try:
        conn = psycopg.connect(url, connect_timeout=5, autocommit=True)
    except Exception as error:
        return {"skipped": f"unreachable: {str(error).splitlines()[0]}"}
    with conn:
        conn.execute(
            "CREATE TEMP TABLE bench_tiles (code text, name text, parent_code text, geom geometry)"
        )
        merc = units.to_crs(3857)
        ewkb = shapely.to_wkb(
            shapely.set_srid(np.asarray(merc.geometry.values), 3857), hex=True, include_srid=True
        )
        with conn.cursor().copy("COPY bench_tiles FROM STDIN") as copy:
            for code, name, parent, hex_wkb in zip(
                merc["code"], merc["name"], merc["parent_code"], ewkb, strict=True
            ):
                copy.write_row((code, name, parent, hex_wkb))
        conn.execute("CREATE INDEX ON bench_tiles USING gist (geom)")
        conn.execute("ANALYZE bench_tiles")
        sql = """
            WITH bounds AS (SELECT ST_TileEnvelope(%s, %s, %s) AS box),
            mvt AS (
                SELECT code, name, parent_code,
                       ST_AsMVTGeom(geom, bounds.box, 4096, 64, true) AS geom
                FROM bench_tiles, bounds
                WHERE geom && ST_Expand(
                    bounds.box, (ST_XMax(bounds.box) - ST_XMin(bounds.box)) * 64 / 4096
                )
            )
            SELECT ST_AsMVT(mvt.*, 'micro_grid', 4096, 'geom') FROM mvt
        """
        times = []
        for z, x, y in tiles:
            start = time.perf_counter()
            conn.execute(sql, (z, x, y)).fetchone()
            times.append(time.perf_counter() - start)
        version = conn.execute("SELECT postgis_lib_version()").fetchone()
    return {"postgis_version": version[0] if version else None, **percentiles(times)}


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and print the JSON result."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--postgres-url", default=POSTGRES_URL, help="PostGIS database")
    parser.add_argument("--no-postgis", action="store_true", help="skip the PostGIS comparison")
    args = parser.parse_args(argv)

    folder = Path(tempfile.mkdtemp(prefix="tongge-tiles-"))
    log("loading the sample city (about a minute)")
    db = open_database(
        Settings(database_url=f"sqlite:///{folder / 'city.sqlite'}", load_sample_city=True),
        create=True,
    )
    clock = RevisionClock(db, refresh_seconds=60)
    locator = LocateService(db, clock=clock)
    places = UnitPlaces(db, clock=clock, indexes=locator.cache)
    service = TileService(locator.cache, households=places.households_per_unit, clock=clock)
    level = locator.cache.get().find(LAYER, LEVEL)
    assert level is not None
    bounds = tuple(shapely.total_bounds(level.geometries))
    by_zoom = {z: tiles_covering(bounds, z) for z in (13, 14, 15, 16)}

    log("first tile after start-up")
    start = time.perf_counter()
    service.tile(layer=LAYER, level=LEVEL, z=13, x=by_zoom[13][0][1], y=by_zoom[13][0][2])
    first = time.perf_counter() - start

    start = time.perf_counter()
    for z, x, y in by_zoom[13]:
        service.tile(layer=LAYER, level=LEVEL, z=z, x=x, y=y)
    district_view = time.perf_counter() - start

    every = [t for tiles in by_zoom.values() for t in tiles]
    log(f"{len(every)} tiles at zooms 13-16: warming each zoom's simplification")
    for z, tiles in by_zoom.items():
        service.tile(layer=LAYER, level=LEVEL, z=z, x=tiles[0][1], y=tiles[0][2])
    service._tiles.clear()  # cold: encoded from the prepared coverage
    cold, sizes = [], []
    for z, x, y in every:
        start = time.perf_counter()
        data, _ = service.tile(layer=LAYER, level=LEVEL, z=z, x=x, y=y)
        cold.append(time.perf_counter() - start)
        sizes.append(len(data))
    cached = []
    for z, x, y in every:
        start = time.perf_counter()
        service.tile(layer=LAYER, level=LEVEL, z=z, x=x, y=y)
        cached.append(time.perf_counter() - start)

    result: dict[str, Any] = {
        "units": len(level.codes),
        "tiles": len(every),
        "first_tile_s": round(first, 3),
        "district_view_tiles": len(by_zoom[13]),
        "district_view_s": round(district_view, 3),
        "cold": percentiles(cold),
        "cached": percentiles(cached),
        "mean_tile_kb": round(float(np.mean(sizes)) / 1024, 1),
        "targets": {"cold_p95_ms": 50, "cached_p95_ms": 5},
    }
    if not args.no_postgis:
        from gis.units import units_page

        log("PostGIS ST_AsMVT on the same tiles")
        units, _ = units_page(db, layer=LAYER, level=LEVEL, limit=100_000)
        postgis = postgis_tiles(args.postgres_url, units, every)
        result["postgis"] = postgis
        if "p95_ms" in postgis:
            result["ratio_postgis_over_ours"] = {
                key: round(postgis[key] / max(result["cold"][key], 1e-6), 2)
                for key in ("p50_ms", "p95_ms")
            }
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
