"""Benchmark ``gis.gridindex.GridIndex`` against shapely, geopandas and (optionally) PostGIS.

On the synthetic layer of :mod:`_synthetic` (5,000 Voronoi units of ~80
vertices, EPSG:4490), with 1 M uniformly random points plus 100 k points
exactly on edges (interpolated) and vertices, measures in the same process:

- tongge: numba compile time (cold, in a subprocess with an empty cache, and
  the cached load here), index build time and peak memory, and lookup
  throughput on one core and with numba's default threads (best of
  ``--repeat`` runs after a warm-up), for row positions and for codes;
- ``shapely.STRtree.query(points, predicate="intersects")`` and
  ``geopandas.sjoin(predicate="intersects")`` on the same points;
- optionally a PostGIS ``ST_Covers`` join with a GiST index (skipped when
  the database is unreachable or with ``--no-postgis``).

Correctness: every tongge answer is compared with the GEOS reference, the
smallest code among the units for which ``shapely.covers(unit, point)``
holds (envelope candidates from the STRtree); ``mismatches`` must be 0.

Prints one JSON object to stdout; progress goes to stderr.
Run with ``.venv/bin/python benchmarks/geocode.py``.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path
from typing import Any

import geopandas as gpd
import numba
import numpy as np
import shapely
from numpy.typing import NDArray

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import best_of, logger
from _synthetic import make_layer, random_points

from gis.gridindex import GridIndex

ROOT = Path(__file__).resolve().parents[1]
POSTGRES_URL = "postgresql://postgres@127.0.0.1:5432/tongge_dev"
TARGET_POINTS_PER_S = 10e6  # single core
TARGET_RATIO_STRTREE = 20.0
TARGET_BUILD_S = 10.0
TARGET_BUILD_MB = 256.0
COMPILE_SNIPPET = """
import time
start = time.perf_counter()
import numpy as np, shapely
from gis.gridindex import GridIndex
index = GridIndex.from_geometries([shapely.box(0, 0, 1, 1)], ["a"])
index.lookup_index(np.zeros(3), np.zeros(3), parallel=False)
index.lookup_index(np.zeros(3), np.zeros(3), parallel=True)
print(time.perf_counter() - start)
"""
BUILD_RSS_SNIPPET = """
import gc, sys
import geopandas as gpd
from gis.gridindex import GridIndex

def kib(key):
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(key):
                return int(line.split()[1])

units = gpd.read_parquet(sys.argv[1])
GridIndex.from_frame(units.iloc[:2])  # load the compiled kernels first
gc.collect()
with open("/proc/self/clear_refs", "w") as refs:
    refs.write("5")  # reset the high-water mark to the current RSS
before = kib("VmRSS:")
GridIndex.from_frame(units)
print((kib("VmHWM:") - before) / 1024)
"""


log = logger("geocode-bench")


def edge_points(
    geoms: NDArray[np.object_], count: int, seed: int
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Return points exactly on unit boundaries: a quarter vertices, the rest interpolated.

    Interpolated points lie a few ulps off the edge's line, on either side,
    which is where a non-robust predicate would disagree with GEOS.

    Parameters
    ----------
    geoms : ndarray of Polygon or MultiPolygon
        The units.
    count : int
        Number of points.
    seed : int
        Seed of the generator.

    Returns
    -------
    x, y : ndarray
        Coordinates.
    """
    rng = np.random.default_rng(seed)
    rings = shapely.get_rings(shapely.get_parts(geoms))
    coords, ring = shapely.get_coordinates(rings, return_index=True)
    starts = np.flatnonzero(ring[:-1] == ring[1:])
    edge = rng.choice(starts, size=count)
    t = rng.uniform(0.0, 1.0, count)
    t[: count // 4] = 0.0
    xy = coords[edge] + t[:, None] * (coords[edge + 1] - coords[edge])
    return xy[:, 0].copy(), xy[:, 1].copy()


def min_code_rows(
    pairs: NDArray[np.int64], codes: NDArray[np.object_], count: int
) -> NDArray[np.int64]:
    """Reduce (point, unit) pairs to the unit of smallest code per point (-1: none).

    Parameters
    ----------
    pairs : ndarray of shape (2, n)
        Point and unit indices, as returned by ``STRtree.query``.
    codes : ndarray of str
        Unit codes.
    count : int
        Number of points.

    Returns
    -------
    ndarray of int64
        Unit row per point.
    """
    rank = np.empty(len(codes), dtype=np.int64)
    rank[np.argsort(codes.astype(str), kind="stable")] = np.arange(len(codes))
    best = np.full(count, len(codes), dtype=np.int64)
    np.minimum.at(best, pairs[0], rank[pairs[1]])
    by_rank = np.argsort(rank)
    return np.where(best < len(codes), by_rank[np.minimum(best, len(codes) - 1)], -1)


def geos_reference(
    tree: shapely.STRtree,
    geoms: NDArray[np.object_],
    codes: NDArray[np.object_],
    points: NDArray[np.object_],
) -> NDArray[np.int64]:
    """GEOS answer per point: smallest code among units with ``shapely.covers(unit, point)``.

    Parameters
    ----------
    tree : shapely.STRtree
        Over ``geoms``.
    geoms : ndarray of geometries
        The units.
    codes : ndarray of str
        Their codes.
    points : ndarray of Point
        The query points.

    Returns
    -------
    ndarray of int64
        Unit row per point, -1 where none covers it.
    """
    p, g = tree.query(points)  # envelope candidates
    hit = shapely.covers(geoms[g], points[p])
    return min_code_rows(np.vstack([p[hit], g[hit]]), codes, len(points))


def cold_compile_seconds() -> float | None:
    """Time the first build and lookups in a fresh process with an empty numba cache.

    Returns
    -------
    float or None
        Seconds (imports included), None if the subprocess failed.
    """
    with tempfile.TemporaryDirectory() as cache:
        env = {**os.environ, "NUMBA_CACHE_DIR": cache}
        done = subprocess.run(
            [sys.executable, "-c", COMPILE_SNIPPET],
            env=env,
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=False,
        )
    if done.returncode != 0:
        log(f"cold compile run failed: {done.stderr.strip().splitlines()[-1:]}")
        return None
    return float(done.stdout.strip().splitlines()[-1])


def build_rss_mb(units: gpd.GeoDataFrame) -> float | None:
    """Peak resident-set growth of one build, in a fresh process (Linux only).

    In this process, memory freed by the layer generation would be reused
    by the build and hide it; a fresh process reads the units from a
    GeoParquet file, loads the compiled kernels, resets its high-water mark
    through ``/proc/self/clear_refs`` and builds once.

    Parameters
    ----------
    units : GeoDataFrame
        The units, with a ``code`` column.

    Returns
    -------
    float or None
        Megabytes (MiB), None where ``/proc`` is unavailable or the run failed.
    """
    if not Path("/proc/self/clear_refs").exists():
        return None
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "units.parquet"
        units.to_parquet(path)
        done = subprocess.run(
            [sys.executable, "-c", BUILD_RSS_SNIPPET, str(path)],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=False,
        )
    if done.returncode != 0:
        log(f"RSS measurement failed: {done.stderr.strip().splitlines()[-1:]}")
        return None
    return float(done.stdout.strip().splitlines()[-1])


def measure_build(units: gpd.GeoDataFrame, repeat: int) -> tuple[GridIndex, float, float]:
    """Build the index: best time of ``repeat`` builds, then the tracemalloc peak of one.

    Parameters
    ----------
    units : GeoDataFrame
        The units, with a ``code`` column.
    repeat : int
        Timed builds.

    Returns
    -------
    index : GridIndex
        The index.
    seconds : float
        Best build time.
    traced_mb : float
        Peak of the memory numpy and numba allocate during a build (both
        report to tracemalloc), in MB.
    """
    seconds, index = best_of(lambda: GridIndex.from_frame(units, code="code"), repeat)
    tracemalloc.start()
    GridIndex.from_frame(units, code="code")
    traced_mb = tracemalloc.get_traced_memory()[1] / 1e6
    tracemalloc.stop()
    return index, seconds, traced_mb


def postgis_join(
    url: str, units: gpd.GeoDataFrame, x: NDArray[np.float64], y: NDArray[np.float64]
) -> dict[str, Any]:
    """Time a PostGIS ``ST_Covers`` join of the points with GiST-indexed units.

    Everything lives in temporary tables of one session, so nothing is left
    in the database. Only the join query is timed (not the loading).

    Parameters
    ----------
    url : str
        libpq connection URL.
    units : GeoDataFrame
        The units (EPSG:4490), with ``code``.
    x, y : ndarray
        Point coordinates.

    Returns
    -------
    dict
        ``{"postgis_join_s": ..., "postgis_version": ..., "rows": ...}``, or
        ``{"postgis_skipped": reason}``.
    """
    try:
        import psycopg
    except ImportError as error:  # pragma: no cover - psycopg is a dependency
        return {"postgis_skipped": f"psycopg unavailable: {error}"}
    try:
        # Autocommit: an index built in the transaction that wrote the table
        # may be unusable by that transaction (broken HOT chains).
        conn = psycopg.connect(url, connect_timeout=5, autocommit=True)
    except Exception as error:
        return {"postgis_skipped": f"unreachable: {str(error).splitlines()[0]}"}
    with conn:
        version = conn.execute("SELECT postgis_lib_version()").fetchone()
        conn.execute("CREATE TEMP TABLE bench_units (row int, code text, geom geometry)")
        ewkb = shapely.to_wkb(
            shapely.set_srid(np.asarray(units.geometry.values), 4490), hex=True, include_srid=True
        )
        with conn.cursor().copy("COPY bench_units (row, code, geom) FROM STDIN") as copy:
            for row, (code, hex_wkb) in enumerate(zip(units["code"], ewkb, strict=True)):
                copy.write_row((row, code, hex_wkb))
        conn.execute("CREATE TEMP TABLE bench_xy (id int, x float8, y float8)")
        text = io.StringIO()
        # %.17g round-trips: PostgreSQL parses back the same doubles.
        np.savetxt(text, np.column_stack([np.arange(len(x)), x, y]), fmt=["%d", "%.17g", "%.17g"])
        with conn.cursor().copy("COPY bench_xy (id, x, y) FROM STDIN") as copy:
            copy.write(text.getvalue().replace(" ", "\t"))
        conn.execute(
            "CREATE TEMP TABLE bench_points AS "
            "SELECT id, ST_SetSRID(ST_MakePoint(x, y), 4490) AS geom FROM bench_xy"
        )
        conn.execute("CREATE INDEX ON bench_units USING gist (geom)")
        conn.execute("ANALYZE bench_units")
        conn.execute("ANALYZE bench_points")
        start = time.perf_counter()
        rows = conn.execute(
            "SELECT p.id, min(u.code) FROM bench_points p "
            "LEFT JOIN bench_units u ON ST_Covers(u.geom, p.geom) GROUP BY p.id ORDER BY p.id"
        ).fetchall()
        seconds = time.perf_counter() - start
    conn.close()
    codes = np.array([code for _, code in rows], dtype=object)
    return {
        "postgis_join_s": round(seconds, 3),
        "postgis_version": version[0] if version else None,
        "postgis_codes": codes,
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
        The process exit status (0, or 1 when a lookup disagrees with GEOS).
    """
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--units", type=int, default=5_000, help="units (default 5000)")
    parser.add_argument("--points", type=int, default=1_000_000, help="random points")
    parser.add_argument("--edge-points", type=int, default=100_000, help="points on edges")
    parser.add_argument("--repeat", type=int, default=5, help="timed runs, best kept (default 5)")
    parser.add_argument("--seed", type=int, default=20_240_601, help="layer seed")
    parser.add_argument("--postgres-url", default=POSTGRES_URL, help="PostGIS database")
    parser.add_argument("--no-postgis", action="store_true", help="skip the PostGIS join")
    parser.add_argument(
        "--no-cold-compile", action="store_true", help="skip the cold numba compile subprocess"
    )
    args = parser.parse_args(argv)

    log(f"building layer: {args.units} units, seed {args.seed}")
    layer = make_layer(args.units, max(1, args.units // 20), seed=args.seed)
    units = layer.children[["code", "geometry"]].reset_index(drop=True)
    geoms = np.asarray(units.geometry.values, dtype=object)
    codes = units["code"].to_numpy(dtype=object)
    vertices = int(shapely.get_num_coordinates(geoms).sum())
    log(f"{len(units)} units, {vertices} vertices (mean {layer.mean_vertices:.1f})")

    random = random_points(layer, args.points, seed=args.seed + 1)
    ex, ey = edge_points(geoms, args.edge_points, args.seed + 2)
    x = np.concatenate([random.geometry.x.to_numpy(), ex])
    y = np.concatenate([random.geometry.y.to_numpy(), ey])
    n = len(x)

    compile_cold = None if args.no_cold_compile else cold_compile_seconds()
    log(f"cold numba compile (fresh process, empty cache): {compile_cold} s")
    start = time.perf_counter()
    GridIndex.from_geometries(geoms[:2], codes[:2]).lookup_index(x[:3], y[:3], parallel=False)
    GridIndex.from_geometries(geoms[:2], codes[:2]).lookup_index(x[:3], y[:3], parallel=True)
    compile_here = time.perf_counter() - start
    log(f"first build+lookups here (numba cache load or compile): {compile_here:.2f} s")

    index, build_s, build_traced_mb = measure_build(units, args.repeat)
    build_rss = build_rss_mb(units)
    log(f"build {build_s:.3f} s, traced peak {build_traced_mb:.0f} MB, RSS growth {build_rss} MiB")
    log(f"index: {index.stats}")

    single_s, rows = best_of(lambda: index.lookup_index(x, y, parallel=False), args.repeat)
    default_s, rows_default = best_of(lambda: index.lookup_index(x, y), args.repeat)
    codes_s, found = best_of(lambda: index.lookup(x, y, parallel=False), args.repeat)
    log(f"lookup: single core {n / single_s / 1e6:.1f} M/s, default {n / default_s / 1e6:.1f} M/s")
    random_s, _ = best_of(
        lambda: index.lookup_index(x[: args.points], y[: args.points], parallel=False), args.repeat
    )
    edges_s, _ = best_of(
        lambda: index.lookup_index(x[args.points :], y[args.points :], parallel=False), args.repeat
    )

    start = time.perf_counter()
    points = shapely.points(x, y)
    points_s = time.perf_counter() - start
    start = time.perf_counter()
    tree = shapely.STRtree(geoms)
    tree_build_s = time.perf_counter() - start
    log("timing STRtree.query(points, predicate='intersects')")
    start = time.perf_counter()
    pairs = tree.query(points, predicate="intersects")
    strtree_s = time.perf_counter() - start
    log(f"STRtree query {strtree_s:.2f} s")

    frame = gpd.GeoDataFrame({"id": np.arange(n)}, geometry=points, crs=units.crs)
    log("timing geopandas sjoin(predicate='intersects')")
    start = time.perf_counter()
    joined = gpd.sjoin(frame, units, how="left", predicate="intersects")
    sjoin_s = time.perf_counter() - start
    log(f"sjoin {sjoin_s:.2f} s ({len(joined)} rows)")

    log("GEOS reference: shapely.covers on envelope candidates")
    start = time.perf_counter()
    reference = geos_reference(tree, geoms, codes, points)
    reference_s = time.perf_counter() - start
    intersects_rows = min_code_rows(pairs, codes, n)
    mismatches = int(np.count_nonzero(rows != reference))
    result: dict[str, Any] = {
        "benchmark": "geocode",
        "units": len(units),
        "vertices": vertices,
        "mean_vertices": round(layer.mean_vertices, 1),
        "points": n,
        "random_points": args.points,
        "edge_points": args.edge_points,
        "points_covered": int(np.count_nonzero(reference >= 0)),
        "mismatches": mismatches,
        "mismatches_on_edge_points": int(
            np.count_nonzero(rows[args.points :] != reference[args.points :])
        ),
        "mismatches_parallel_vs_single": int(np.count_nonzero(rows_default != rows)),
        "reference_intersects_vs_covers_disagreements": int(
            np.count_nonzero(intersects_rows != reference)
        ),
        "codes_match_rows": bool(
            np.array_equal(found == None, rows < 0)  # noqa: E711
            and np.array_equal(found[rows >= 0], codes[rows[rows >= 0]])
        ),
        "tongge_build_s": round(build_s, 3),
        "tongge_build_peak_traced_mb": round(build_traced_mb, 1),
        "tongge_build_peak_rss_mib": None if build_rss is None else round(build_rss, 1),
        "tongge_index": {
            key: (round(value, 2) if isinstance(value, float) else value)
            for key, value in index.stats.items()
        },
        "numba_compile_cold_s": None if compile_cold is None else round(compile_cold, 2),
        "numba_first_call_here_s": round(compile_here, 2),
        "numba_threads": numba.get_num_threads(),
        "tongge_single_core_s": round(single_s, 4),
        "tongge_single_core_points_per_s": round(n / single_s),
        "tongge_random_points_per_s": round(args.points / random_s),
        "tongge_edge_points_per_s": round(args.edge_points / edges_s),
        "tongge_default_s": round(default_s, 4),
        "tongge_default_points_per_s": round(n / default_s),
        "tongge_lookup_codes_single_core_s": round(codes_s, 4),
        "shapely_points_s": round(points_s, 3),
        "shapely_strtree_build_s": round(tree_build_s, 3),
        "shapely_strtree_query_s": round(strtree_s, 3),
        "geopandas_sjoin_s": round(sjoin_s, 3),
        "geos_reference_covers_s": round(reference_s, 3),
        "ratio_strtree_over_tongge_single": round(strtree_s / single_s, 1),
        "ratio_strtree_over_tongge_default": round(strtree_s / default_s, 1),
        "ratio_sjoin_over_tongge_single": round(sjoin_s / single_s, 1),
    }
    if not args.no_postgis:
        log(f"PostGIS join ({args.postgres_url})")
        pg = postgis_join(args.postgres_url, units, x, y)
        pg_codes = pg.pop("postgis_codes", None)
        result.update(pg)
        if pg_codes is not None:
            ref_codes = np.where(reference >= 0, codes[np.maximum(reference, 0)], None)
            result["postgis_mismatches_vs_geos"] = int(np.count_nonzero(pg_codes != ref_codes))
            result["ratio_postgis_over_tongge_single"] = round(pg["postgis_join_s"] / single_s, 1)
        log(f"PostGIS: {pg}")
    result["targets"] = {
        "single_core_points_per_s": TARGET_POINTS_PER_S,
        "ratio_strtree": TARGET_RATIO_STRTREE,
        "build_s": TARGET_BUILD_S,
        "build_mb": TARGET_BUILD_MB,
    }
    peak_mb = max(build_traced_mb, build_rss or 0.0)
    result["meets_targets"] = bool(
        mismatches == 0
        and n / single_s >= TARGET_POINTS_PER_S
        and strtree_s / single_s >= TARGET_RATIO_STRTREE
        and build_s <= TARGET_BUILD_S
        and peak_mb <= TARGET_BUILD_MB
    )
    result["repeat"] = args.repeat
    result["seed"] = args.seed
    result["machine"] = {
        "cpus": os.cpu_count(),
        "cpu": platform.processor() or platform.machine(),
        "python": platform.python_version(),
        "numba": numba.__version__,
        "numpy": np.__version__,
        "shapely": shapely.__version__,
        "geos": shapely.geos_version_string,
        "geopandas": gpd.__version__,
    }
    print(json.dumps(result))
    return 0 if mismatches == 0 else 1


if __name__ == "__main__":
    raise SystemExit(main())
