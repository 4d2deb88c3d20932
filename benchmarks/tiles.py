"""Vector tiles of the sample and a synthetic city: ours against PostGIS ``ST_AsMVT``.

Loads the sample city (2,230 micro-grids) and a synthetic city of 5,000
micro-grids (``_synthetic.make_layer``: Voronoi cells of ~80 vertices in a
30 km square, 250 grids) into temporary SpatiaLite files and times, for the
micro-grid tiles of each at zooms 13-16 (an even sample of at most
``--max-tiles-per-zoom`` per zoom):

- ``first_tile_s``: the very first tile after start-up (builds the level's
  web-mercator copy, the simplification of that zoom and the households);
- ``cold``: each tile encoded from the prepared coverage (tile cache empty):
  p50/p95/max in ms (target p95 ≤ 50 ms);
- ``cached``: the same tiles again from the cache (target p95 ≤ 5 ms);
- ``district_view_s``: every tile of a full-district view at zoom 13, cold;
- ``postgis``: the same tiles cut by PostGIS ``ST_AsMVTGeom``/``ST_AsMVT`` on a
  GiST-indexed table (no simplification: PostGIS 3.3 has no coverage
  simplification), with ``ratio_postgis_over_ours`` per percentile.

Our tiles also carry the ``labels`` layer (one point per unit); the PostGIS
query encodes the polygons only. Prints one JSON object (``sample_city``,
``synthetic_city``); progress to stderr.
Run: ``python benchmarks/tiles.py [--postgres-url URL] [--units 5000]``.
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


def synthetic_city(folder: Path, units: int, seed: int) -> Any:
    """Load the synthetic city (``units`` micro-grids in units/20 grids) into SpatiaLite."""
    from _synthetic import make_layer

    from gis.layers import LayerSpec, LevelSpec
    from gis.units import import_units

    layer = make_layer(units, max(1, units // 20), seed=seed)
    db = open_database(
        Settings(database_url=f"sqlite:///{folder / 'synthetic.sqlite'}", load_sample_city=False),
        create=True,
    )
    spec = LayerSpec("synthetic", levels=(LevelSpec("grid"), LevelSpec("micro_grid")))
    with db.transaction() as repo:
        repo.ensure_layer(spec)
    for level, frame in (("grid", layer.parents), ("micro_grid", layer.children)):
        frame = frame.copy()
        frame["name"] = [f"合成{code[-6:]}" for code in frame["code"]]
        if "parent_code" not in frame:
            frame["parent_code"] = None
        frame["kind"] = "comprehensive"
        frame["attributes"] = [{} for _ in range(len(frame))]
        import_units(
            db,
            units=frame,
            layer="synthetic",
            level=level,
            source="benchmark",
            valid_from="2026-01-01",
        )
    return db


def measure(
    db: Any, layer: str, level: str, *, postgres_url: str | None, max_tiles: int
) -> dict[str, Any]:
    """Time one level's tiles: first tile, district view, cold, cached, and PostGIS."""
    clock = RevisionClock(db, refresh_seconds=60)
    locator = LocateService(db, clock=clock)
    places = UnitPlaces(db, clock=clock, indexes=locator.cache)
    service = TileService(locator.cache, households=places.households_per_unit, clock=clock)
    found = locator.cache.get().find(layer, level)
    assert found is not None
    bounds = tuple(shapely.total_bounds(found.geometries))
    by_zoom = {}
    for z in (13, 14, 15, 16):
        tiles = tiles_covering(bounds, z)
        # An even sample of a big city's tiles (same tiles for ours and PostGIS).
        step = max(1, math.ceil(len(tiles) / max_tiles))
        by_zoom[z] = tiles[::step]

    log(f"{layer}/{level}: first tile after start-up")
    start = time.perf_counter()
    service.tile(layer=layer, level=level, z=13, x=by_zoom[13][0][1], y=by_zoom[13][0][2])
    first = time.perf_counter() - start

    start = time.perf_counter()
    for z, x, y in by_zoom[13]:
        service.tile(layer=layer, level=level, z=z, x=x, y=y)
    district_view = time.perf_counter() - start

    every = [t for tiles in by_zoom.values() for t in tiles]
    log(f"{len(every)} tiles at zooms 13-16: warming each zoom's simplification")
    for z, tiles in by_zoom.items():
        service.tile(layer=layer, level=level, z=z, x=tiles[0][1], y=tiles[0][2])
    service._tiles.clear()  # cold: encoded from the prepared coverage
    cold, sizes = [], []
    for z, x, y in every:
        start = time.perf_counter()
        data, _ = service.tile(layer=layer, level=level, z=z, x=x, y=y)
        cold.append(time.perf_counter() - start)
        sizes.append(len(data))
    cached = []
    for z, x, y in every:
        start = time.perf_counter()
        service.tile(layer=layer, level=level, z=z, x=x, y=y)
        cached.append(time.perf_counter() - start)

    result: dict[str, Any] = {
        "layer": layer,
        "level": level,
        "units": len(found.codes),
        "mean_vertices": round(float(np.mean(shapely.get_num_coordinates(found.geometries))), 1),
        "tiles": len(every),
        "tiles_per_zoom": {str(z): len(t) for z, t in by_zoom.items()},
        "first_tile_s": round(first, 3),
        "district_view_tiles": len(by_zoom[13]),
        "district_view_s": round(district_view, 3),
        "cold": percentiles(cold),
        "cached": percentiles(cached),
        "mean_tile_kb": round(float(np.mean(sizes)) / 1024, 1),
    }
    if postgres_url is not None:
        from gis.units import units_page

        log(f"{layer}/{level}: PostGIS ST_AsMVT on the same tiles")
        units, _ = units_page(db, layer=layer, level=level, limit=100_000)
        postgis = postgis_tiles(postgres_url, units, every)
        result["postgis"] = postgis
        if "p95_ms" in postgis:
            result["ratio_postgis_over_ours"] = {
                key: round(postgis[key] / max(result["cold"][key], 1e-6), 2)
                for key in ("p50_ms", "p95_ms")
            }
    return result


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and print the JSON result."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--postgres-url", default=POSTGRES_URL, help="PostGIS database")
    parser.add_argument("--no-postgis", action="store_true", help="skip the PostGIS comparison")
    parser.add_argument("--units", type=int, default=5_000, help="synthetic city's micro-grids")
    parser.add_argument("--seed", type=int, default=20_240_601, help="synthetic city's seed")
    parser.add_argument(
        "--max-tiles-per-zoom", type=int, default=400, help="even sample of each zoom's tiles"
    )
    parser.add_argument("--no-synthetic", action="store_true", help="the sample city only")
    args = parser.parse_args(argv)
    postgres_url = None if args.no_postgis else args.postgres_url

    folder = Path(tempfile.mkdtemp(prefix="tongge-tiles-"))
    log("loading the sample city (about a minute)")
    db = open_database(
        Settings(database_url=f"sqlite:///{folder / 'city.sqlite'}", load_sample_city=True),
        create=True,
    )
    cities: dict[str, Any] = {
        "sample_city": measure(
            db, LAYER, LEVEL, postgres_url=postgres_url, max_tiles=args.max_tiles_per_zoom
        )
    }
    if not args.no_synthetic:
        log(f"building the synthetic city ({args.units} micro-grids)")
        synthetic = synthetic_city(folder, args.units, args.seed)
        cities["synthetic_city"] = measure(
            synthetic,
            "synthetic",
            "micro_grid",
            postgres_url=postgres_url,
            max_tiles=args.max_tiles_per_zoom,
        )
    result = {**cities, "targets": {"cold_p95_ms": 50, "cached_p95_ms": 5}}
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
