"""Vector tiles: the encoder against the reference decoder, tiles against GEOS, jurisdiction."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import mapbox_vector_tile
import numpy as np
import pytest
import shapely
from fastapi.testclient import TestClient
from hypothesis import given, settings
from hypothesis import strategies as st
from pyproj import Transformer

from api.app import create_app
from gis.datum import wgs84_to_gcj02
from gis.repository import Database
from gis.settings import Settings
from gis.streets import import_streets
from gis.tiles import TileLayer, encode_tile, tile_bounds
from gis.tiles._service import BUFFER, EXTENT
from gis.units import import_units
from tests._client import sign_in, signed_in
from tests.fixtures_governance import COMMUNITIES, frame, load_governance

TO_MERCATOR = Transformer.from_crs(4490, 3857, always_xy=True)


def decode(data: bytes) -> dict[str, list[dict[str, Any]]]:
    """Decode a tile with the reference decoder into ``{layer: features}`` (pixels, y down)."""
    layers = mapbox_vector_tile.decode(data, default_options={"y_coord_down": True})
    return {name: layer["features"] for name, layer in layers.items()}


def tile_of(lon: float, lat: float, z: int) -> tuple[int, int]:
    """Return the XYZ tile holding a point."""
    x, y = TO_MERCATOR.transform(lon, lat)
    size = 2 * 20037508.342789244 / (1 << z)
    return int((x + 20037508.342789244) // size), int((20037508.342789244 - y) // size)


def mercator(geometry: shapely.Geometry) -> shapely.Geometry:
    return shapely.transform(geometry, lambda c: np.column_stack(TO_MERCATOR.transform(*c.T)))


# -- the encoder ----------------------------------------------------------------


def test_encoder_round_trips_through_the_reference_decoder() -> None:
    # A square with a hole (drawn counter-clockwise, both rings), a line, two points.
    #
    #   0,0 +--------+ 100,0
    #       |  +--+  |
    #       |  +--+  |        hole 10..20
    #   0,100+--------+
    square = shapely.Polygon(
        [(0, 0), (0, 100), (100, 100), (100, 0)], [[(10, 10), (20, 10), (20, 20), (10, 20)]]
    )
    geometries = np.array(
        [
            square,
            shapely.LineString([(0, 0), (5, 5), (5, 5), (9, 1)]),
            shapely.MultiPoint([(1, 2), (3, 4)]),
            shapely.Point(),  # empty: left out
            shapely.Point(-7, 4100),  # a label point in the buffer beyond the tile's corner
        ],
        dtype=object,
    )
    properties: list[dict[str, Any]] = [
        {"code": "A", "households": 12, "share": 1.5, "delta": -3, "dedicated": True, "x": None},
        {"code": "B"},
        {},
        {"code": "empty"},
        {"code": "P"},
    ]
    features = decode(encode_tile([TileLayer("grid", geometries, properties)]))["grid"]
    polygon = shapely.geometry.shape(features[0]["geometry"])
    assert polygon.equals(square) and len(polygon.interiors) == 1
    assert features[0]["properties"] == {
        "code": "A",
        "households": 12,
        "share": 1.5,
        "delta": -3,
        "dedicated": True,
    }
    assert features[1]["geometry"]["coordinates"] == [[0, 0], [5, 5], [9, 1]]
    assert features[2]["geometry"]["coordinates"] == [[1, 2], [3, 4]]
    assert features[3]["geometry"] == {"type": "Point", "coordinates": [-7, 4100]}
    assert features[3]["properties"] == {"code": "P"} and len(features) == 4


@settings(max_examples=60, deadline=None)
@given(
    seeds=st.lists(
        st.tuples(st.integers(0, 4096), st.integers(0, 4096)), min_size=3, max_size=40, unique=True
    )
)
def test_any_coverage_round_trips_exactly(seeds: list[tuple[int, int]]) -> None:
    # Voronoi cells of random pixels, snapped to whole pixels: a coverage with
    # shared edges, holes when a cell is cut out, multipolygons after clipping.
    cells = shapely.get_parts(shapely.voronoi_polygons(shapely.multipoints(seeds)))
    window = shapely.box(100, 100, 4000, 4000).difference(shapely.box(1500, 1500, 1700, 1700))
    clipped = shapely.set_precision(shapely.intersection(cells, window), 1.0)
    keep = ~shapely.is_empty(clipped) & (shapely.area(clipped) > 0)
    geometries = np.asarray(clipped[keep], dtype=object)
    properties = [{"i": i} for i in range(len(geometries))]
    features = decode(encode_tile([TileLayer("cells", geometries, properties)])).get("cells", [])
    assert len(features) == len(geometries)
    for feature in features:
        drawn = shapely.geometry.shape(feature["geometry"])
        expected = geometries[feature["properties"]["i"]]
        assert drawn.is_valid and drawn.symmetric_difference(expected).area == 0


def test_rings_that_collapse_at_this_zoom_are_left_out() -> None:
    sliver = shapely.Polygon([(0, 0), (10, 0), (10, 0), (0, 0.2)])  # rounds to a line
    big = shapely.box(0, 0, 50, 50)
    data = encode_tile([TileLayer("grid", np.array([sliver, big]), [{"code": "s"}, {"code": "b"}])])
    assert [f["properties"]["code"] for f in decode(data)["grid"]] == ["b"]
    # A whole layer collapsing (a district at zoom 0) is an empty layer, not an error.
    dots = np.array([shapely.box(0, 0, 0.2, 0.2), shapely.box(5, 5, 5.3, 5.3)], dtype=object)
    pixels = np.asarray(shapely.transform(dots, np.rint), dtype=object)
    assert decode(encode_tile([TileLayer("grid", pixels, [{}, {}])])).get("grid", []) == []


# -- the HTTP endpoint on both dialects ------------------------------------------


@pytest.fixture
def client(db: Database) -> Iterator[TestClient]:
    load_governance(db)
    with signed_in(db) as test_client:
        yield test_client


def test_tile_holds_exactly_the_units_meeting_it(client: TestClient) -> None:
    # Zoom 18 (no simplification): the tile at a community corner meets all four.
    z = 18
    x, y = tile_of(118.55, 24.925, z)
    response = client.get(f"/api/v1/tiles/governance/community/{z}/{x}/{y}.mvt")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/vnd.mapbox-vector-tile"
    features = decode(response.content)["community"]
    minx, miny, maxx, maxy = tile_bounds(z, x, y)
    pad = (maxx - minx) * BUFFER / EXTENT
    area = shapely.box(minx - pad, miny - pad, maxx + pad, maxy + pad)
    expected = {c for c, g in COMMUNITIES.items() if mercator(g).intersects(area)}
    assert {f["properties"]["code"] for f in features} == expected == set(COMMUNITIES)
    first = next(f for f in features if f["properties"]["code"] == "350502001001")
    assert first["properties"]["parent_code"] == "350502001"
    assert first["properties"]["name"] == "单元001"
    # The pixels are the unit cut to the tile: compare with GEOS in tile pixels.
    drawn = shapely.geometry.shape(first["geometry"])
    unit = mercator(COMMUNITIES["350502001001"]).intersection(area)
    scale = EXTENT / (maxx - minx)
    expected_pixels = shapely.transform(
        unit, lambda c: np.column_stack([(c[:, 0] - minx) * scale, (maxy - c[:, 1]) * scale])
    )
    assert drawn.symmetric_difference(expected_pixels).area < 4 * drawn.length  # rounding only


def test_tile_far_away_is_empty_and_addresses_are_checked(client: TestClient) -> None:
    world = client.get("/api/v1/tiles/governance/community/0/0/0.mvt")
    assert world.status_code == 200  # the district is a dot at zoom 0
    empty = client.get("/api/v1/tiles/governance/community/10/0/0.mvt")
    assert empty.status_code == 200 and not decode(empty.content).get("community")
    bad = client.get("/api/v1/tiles/governance/community/3/8/0.mvt")
    assert (
        bad.status_code == 400 and bad.json()["field"] == "x" and "0 and 7" in bad.json()["detail"]
    )
    unknown = client.get("/api/v1/tiles/governance/beat/10/0/0.mvt")
    assert unknown.status_code == 404 and "level" in unknown.json()["detail"]
    datum = client.get("/api/v1/tiles/governance/community/10/0/0.mvt?datum=mars")
    assert datum.status_code == 422 and "datum" in datum.text


def test_not_modified_and_changes_show_at_once(client: TestClient, db: Database) -> None:
    z = 18
    x, y = tile_of(118.525, 24.9375, z)
    url = f"/api/v1/tiles/governance/community/{z}/{x}/{y}.mvt"
    first = client.get(url)
    again = client.get(url, headers={"If-None-Match": first.headers["etag"]})
    assert again.status_code == 304
    # Rename the community: the next tile says so (no stale boundaries).
    units = frame(COMMUNITIES)
    units.loc[units["code"] == "350502001001", "name"] = "新名字"
    import_units(
        db, units=units, layer="governance", level="community", source="t", valid_from="2026-02-01"
    )
    for _ in range(100):  # the revision clock looks at most once a second; rebuilds run behind
        changed = client.get(url, headers={"If-None-Match": first.headers["etag"]})
        if changed.status_code == 200:
            break
        client.app.state.locator.cache.wait(timeout=30)  # type: ignore[attr-defined]
        time.sleep(0.1)
    assert changed.status_code == 200
    names = {f["properties"]["name"] for f in decode(changed.content)["community"]}
    assert "新名字" in names


def test_gcj02_tiles_are_shifted_by_the_datum_offset(client: TestClient) -> None:
    z = 18
    x, y = tile_of(118.525, 24.9375, z)
    # In GCJ-02 the same point lies in another tile: fetch that one.
    gx, gy = wgs84_to_gcj02([118.525], [24.9375])
    sx, sy = tile_of(float(gx[0]), float(gy[0]), z)
    assert (sx, sy) != (x, y)
    shifted = decode(
        client.get(f"/api/v1/tiles/governance/community/{z}/{sx}/{sy}.mvt?datum=gcj02").content
    )
    assert {f["properties"]["code"] for f in shifted["community"]} == {"350502001001"}


def test_tiles_need_a_signed_in_caller(db: Database) -> None:
    load_governance(db)
    app = create_app(Settings(database_url=db.url, load_sample_city=False), db=db)
    with TestClient(app) as anonymous:
        assert anonymous.get("/api/v1/tiles/governance/community/10/0/0.mvt").status_code == 401


# -- the sample city: simplification and jurisdiction -----------------------------


def test_simplified_levels_stay_coverages_and_jurisdiction_cuts_tiles(
    city_db: Database,
) -> None:
    app = create_app(Settings(database_url=city_db.url, load_sample_city=False), db=city_db)
    with TestClient(app) as client:
        admin = sign_in(client, city_db)
        service = client.app.state.tiles  # type: ignore[attr-defined]
        index = client.app.state.locator.cache.get().find("governance", "micro_grid")  # type: ignore[attr-defined]
        grid = str(index.parents[0])
        worker = sign_in(client, city_db, role="grid_worker", units=[f"governance:{grid}"])
        z = 14
        lon, lat = shapely.centroid(index.geometries[0]).coords[0]
        x, y = tile_of(lon, lat, z)
        url = f"/api/v1/tiles/governance/micro_grid/{z}/{x}/{y}.mvt"
        everything = decode(client.get(url, headers=admin).content)["micro_grid"]
        own = decode(client.get(url, headers=worker).content)["micro_grid"]
        # Shared edges stay shared after simplification at this zoom.
        source = service._sources[("governance", "micro_grid", "cgcs2000")]
        simplified, _ = source.at_zoom(z)
        assert shapely.coverage_is_valid(simplified)
        # The admin's tile holds every micro-grid meeting it (GEOS on the stored shapes).
        minx, miny, maxx, maxy = tile_bounds(z, x, y)
        tile = shapely.box(minx, miny, maxx, maxy)
        meets = {
            str(code)
            for code, geometry in zip(index.codes, index.geometries, strict=True)
            if mercator(geometry).intersects(tile)
            and mercator(geometry).intersection(tile).area > 1
        }
        codes = {f["properties"]["code"] for f in everything}
        assert meets <= codes and len(codes) > len(own) > 0
        # The grid worker's tile: only micro-grids of their grid.
        assert {f["properties"]["parent_code"] for f in own} == {grid}
        assert any(f["properties"]["households"] > 0 for f in everything)


def test_basemap_places_stay_inside_the_jurisdiction(city_db: Database) -> None:
    app = create_app(Settings(database_url=city_db.url, load_sample_city=False), db=city_db)
    with TestClient(app) as client:
        admin = sign_in(client, city_db)
        index = client.app.state.locator.cache.get().find("governance", "grid")  # type: ignore[attr-defined]
        grid = str(index.codes[0])
        worker = sign_in(client, city_db, role="grid_worker", units=[f"governance:{grid}"])
        lon, lat = shapely.centroid(index.geometries[0]).coords[0]
        x, y = tile_of(lon, lat, 16)
        url = f"/api/v1/tiles/places/16/{x}/{y}.mvt"
        everything = decode(client.get(url, headers=admin).content)
        own = decode(client.get(url, headers=worker).content)
        assert {"buildings", "pois"} <= set(everything) and own.get("buildings")
        assert len(own["buildings"]) < len(everything["buildings"])
        # The grid worker's footprints are the buildings assigned to their grid.
        assigned = client.app.state.places.buildings(layer="governance", code=grid)  # type: ignore[attr-defined]
        assert {f["properties"]["key"] for f in own["buildings"]} <= set(assigned["key"])
        assert "households" not in own["buildings"][0]["properties"]  # no counts of people
        low = client.get(f"/api/v1/tiles/places/12/{x >> 4}/{y >> 4}.mvt", headers=admin)
        assert low.status_code == 200 and low.content == b""


def _streets_file(path: Path, streets: dict[str, tuple[str, list[tuple[float, float]]]]) -> Path:
    features = [
        {
            "type": "Feature",
            "properties": {"key": key, "name": name, "class": "residential"},
            "geometry": {"type": "LineString", "coordinates": coords},
        }
        for key, (name, coords) in streets.items()
    ]
    path.write_text(json.dumps({"type": "FeatureCollection", "features": features}), "utf-8")
    return path


def test_streets_are_in_the_basemap_tiles_and_follow_imports(
    client: TestClient, db: Database, tmp_path: Path
) -> None:
    # Two streets across the corner of four communities, one far away.
    first = {
        "s1": ("中山路", [(118.545, 24.925), (118.555, 24.925)]),
        "s2": ("新华路", [(118.55, 24.92), (118.55, 24.93)]),
        "far": ("远路", [(118.60, 24.95), (118.61, 24.96)]),
    }
    import_streets(db, path=_streets_file(tmp_path / "a.geojson", first))
    z = 16
    x, y = tile_of(118.55, 24.925, z)
    url = f"/api/v1/tiles/places/{z}/{x}/{y}.mvt"
    response = client.get(url)
    assert response.status_code == 200
    names = {f["properties"]["name"] for f in decode(response.content)["streets"]}
    assert names == {"中山路", "新华路"}
    # Below the places zoom: nothing (no basemap detail at district views).
    assert client.get(f"/api/v1/tiles/places/13/{x >> 3}/{y >> 3}.mvt").content == b""
    # A new network replaces the streets: the tiles follow (streets bump the places clock).
    second = {"s3": ("温陵路", [(118.548, 24.924), (118.552, 24.926)])}
    import_streets(db, path=_streets_file(tmp_path / "b.geojson", second), replace=True)
    for _ in range(100):
        names = {
            f["properties"]["name"] for f in decode(client.get(url).content).get("streets", [])
        }
        if names == {"温陵路"}:
            break
        time.sleep(0.1)
    assert names == {"温陵路"}


def test_streets_of_a_grid_worker_stop_at_their_area(
    client: TestClient, db: Database, tmp_path: Path
) -> None:
    streets = {"s1": ("中山路", [(118.545, 24.93), (118.555, 24.93)])}
    import_streets(db, path=_streets_file(tmp_path / "a.geojson", streets))
    worker = sign_in(client, db, role="grid_worker", units=["governance:350502001001"])
    z = 16
    x, y = tile_of(118.55, 24.93, z)
    url = f"/api/v1/tiles/places/{z}/{x}/{y}.mvt"
    everything = decode(client.get(url).content)["streets"]
    own = decode(client.get(url, headers=worker).content)["streets"]
    bounds = tile_bounds(z, x, y)
    # The worker's community ends at lon 118.55: their piece of the street stops there.
    edge = (TO_MERCATOR.transform(118.55, 24.93)[0] - bounds[0]) / (bounds[2] - bounds[0]) * EXTENT

    def xs(features: list[dict[str, Any]]) -> list[float]:
        return [
            p[0] for f in features for p in np.asarray(f["geometry"]["coordinates"]).reshape(-1, 2)
        ]

    assert max(xs(everything)) > edge + 100
    assert max(xs(own)) <= edge + 1


def test_each_unit_is_labelled_in_exactly_one_tile(client: TestClient) -> None:
    # The communities span several tiles at zoom 15: pieces in each, one label point.
    z = 15
    x0, y0 = tile_of(118.50, 24.95, z)
    x1, y1 = tile_of(118.60, 24.90, z)
    labels: list[str] = []
    pieces: set[tuple[int, int, str]] = set()
    for x in range(x0, x1 + 1):
        for y in range(y0, y1 + 1):
            tile = decode(client.get(f"/api/v1/tiles/governance/community/{z}/{x}/{y}.mvt").content)
            labels += [f["properties"]["code"] for f in tile.get("labels", [])]
            pieces |= {(x, y, f["properties"]["code"]) for f in tile.get("community", [])}
            for feature in tile.get("labels", []):
                # The label point lies inside the tile and inside its unit's piece there.
                px, py = feature["geometry"]["coordinates"]
                assert 0 <= px <= EXTENT and 0 <= py <= EXTENT
                assert (x, y, feature["properties"]["code"]) in pieces
    assert sorted(labels) == sorted(COMMUNITIES)
    assert len(pieces) > 2 * len(COMMUNITIES)  # each community is cut into several tiles
