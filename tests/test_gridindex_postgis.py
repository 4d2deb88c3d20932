"""GridIndex against PostGIS ``ST_Covers`` on the real Chicago beats: 1 M points, 0 mismatches."""

from __future__ import annotations

import io
from pathlib import Path

import geopandas as gpd
import numpy as np
import psycopg
import pytest
import shapely

from gis.gridindex import GridIndex
from gis.repository import Database
from gis.unitframe import merge_multipart_units

POINTS = 1_000_000
ON_EDGES = 100_000


def _beats(chicago: Path) -> gpd.GeoDataFrame:
    beats = gpd.read_file(chicago / "police_beats.geojson").rename(columns={"BEAT_NUM": "code"})
    merged, _ = merge_multipart_units(beats[["code", "DISTRICT", "geometry"]])
    return merged.reset_index(drop=True)


def _points(beats: gpd.GeoDataFrame) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(2026)
    minx, miny, maxx, maxy = beats.total_bounds
    x = rng.uniform(minx - 0.01, maxx + 0.01, POINTS)
    y = rng.uniform(miny - 0.01, maxy + 0.01, POINTS)
    # Boundary cases: exact vertices, and points interpolated along real edges
    # (which floating point puts a hair off the line: GEOS decides exactly).
    rings = shapely.get_rings(shapely.get_parts(beats.geometry.values))
    coords, ring_of = shapely.get_coordinates(rings, return_index=True)
    same_ring = ring_of[:-1] == ring_of[1:]
    starts = np.flatnonzero(same_ring)[rng.integers(0, same_ring.sum(), ON_EDGES)]
    t = rng.uniform(0, 1, ON_EDGES)
    t[: ON_EDGES // 2] = 0.0
    edge = coords[starts] + (coords[starts + 1] - coords[starts]) * t[:, None]
    return np.concatenate([x, edge[:, 0]]), np.concatenate([y, edge[:, 1]])


@pytest.mark.slow
def test_grid_index_equals_postgis_st_covers_on_chicago(
    chicago: Path, postgres_database: Database
) -> None:
    beats = _beats(chicago)
    x, y = _points(beats)
    ours = GridIndex.from_frame(beats, code="code").lookup(x, y)
    url = postgres_database.engine.url.set(drivername="postgresql").render_as_string(
        hide_password=False
    )
    with psycopg.connect(url) as connection, connection.cursor() as cursor:
        cursor.execute("CREATE TEMP TABLE beats (code text, geom geometry(MultiPolygon, 4326))")
        with cursor.copy("COPY beats (code, geom) FROM STDIN") as copy:
            for code, geometry in zip(beats["code"], beats.geometry.values, strict=True):
                multi = (
                    shapely.MultiPolygon([geometry])
                    if geometry.geom_type == "Polygon"
                    else geometry
                )
                copy.write_row((code, f"SRID=4326;{shapely.to_wkt(multi, rounding_precision=-1)}"))
        cursor.execute("CREATE INDEX ON beats USING gist (geom)")
        cursor.execute("CREATE TEMP TABLE points (id integer, x float8, y float8)")
        buffer = io.StringIO()
        for i, (px, py) in enumerate(zip(x.tolist(), y.tolist(), strict=True)):
            buffer.write(f"{i}\t{px!r}\t{py!r}\n")
        with cursor.copy("COPY points (id, x, y) FROM STDIN") as copy:
            copy.write(buffer.getvalue())
        cursor.execute("ANALYZE beats")
        cursor.execute(
            "SELECT p.id, min(b.code) FROM points p JOIN beats b "
            "ON ST_Covers(b.geom, ST_SetSRID(ST_MakePoint(p.x, p.y), 4326)) GROUP BY p.id"
        )
        theirs = np.full(len(x), None, dtype=object)
        for point_id, code in cursor.fetchall():
            theirs[point_id] = code
    mismatches = np.flatnonzero(ours != theirs)
    assert len(mismatches) == 0, [(x[i], y[i], ours[i], theirs[i]) for i in mismatches[:10]]
    assert (theirs != None).sum() > 0.4 * POINTS  # noqa: E711 - elementwise on an object array
