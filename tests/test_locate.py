"""Locating incidents in every layer at once, on the sample city and on both dialects."""

from __future__ import annotations

import io
import itertools
import json
import math
import shutil
from collections.abc import Iterator
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely
from fastapi.testclient import TestClient
from shapely import box

from api.bootstrap import open_database
from boundaries import SAMPLE_CITY
from gis import datum
from gis.access import SYSTEM
from gis.access.accounts import create_api_key
from gis.errors import InputError, NotFoundError
from gis.layers import POLICE
from gis.locate import LocateService
from gis.repository import Database
from gis.settings import Settings
from gis.units import import_units
from tests._client import signed_in
from tests.fixtures_governance import frame, load_governance

MICRO = SAMPLE_CITY / "governance" / "micro_grid.geojson"


@pytest.fixture(scope="module")
def city(tmp_path_factory: pytest.TempPathFactory, sample_city_file: Path) -> Iterator[Database]:
    """Yield an embedded database with the sample city (a copy of the one loaded per run)."""
    path = tmp_path_factory.mktemp("city") / "city.sqlite"
    shutil.copyfile(sample_city_file, path)
    db = open_database(Settings(database_url=f"sqlite:///{path}", load_sample_city=True))
    yield db
    db.dispose()


@pytest.fixture(scope="module")
def locator(city: Database) -> LocateService:
    return LocateService(city, refresh_seconds=0)


@pytest.fixture(scope="module")
def micro() -> gpd.GeoDataFrame:
    return gpd.read_file(MICRO)


def test_point_gets_a_unit_at_every_level_of_every_layer(
    locator: LocateService, micro: gpd.GeoDataFrame
) -> None:
    unit = micro.iloc[100]
    point = unit.geometry.representative_point()
    answer = locator.locate(point.x, point.y, crs="cgcs2000").to_dict()
    assert answer["status"] == "ok"
    governance = {u["level"]: u["code"] for u in answer["layers"]["governance"]["units"]}
    grid = unit["parent_code"]
    assert governance == {
        "county": "350502",
        "street": grid[:9],
        "community": grid[:12],
        "grid": grid,
        "micro_grid": unit["code"],
    }
    police = {u["level"]: u["code"] for u in answer["layers"]["police"]["units"]}
    assert set(police) == {"station", "beat"} and police["beat"].startswith(police["station"])
    assert answer["layers"]["governance"]["boundary_distance_m"] > 0
    assert answer["responsible"] == []
    assert answer["input"] == {
        "x": point.x,
        "y": point.y,
        "crs": "EPSG:4490",
        "accuracy_m": None,
        "at": None,
    }


def test_same_place_in_gcj02_bd09_and_wgs84_lands_in_the_same_units(
    locator: LocateService, micro: gpd.GeoDataFrame
) -> None:
    rng = np.random.default_rng(7)
    minx, miny, maxx, maxy = micro.total_bounds
    lon = rng.uniform(minx, maxx, 3000)
    lat = rng.uniform(miny, maxy, 3000)
    wgs = locator.locate_many(lon, lat, crs="wgs84")
    inside = wgs["status"] == "ok"
    assert inside.sum() >= 1000
    for convert, name in ((datum.wgs84_to_gcj02, "gcj02"), (datum.wgs84_to_bd09, "bd09")):
        shifted = locator.locate_many(*convert(lon, lat), crs=name)
        pd.testing.assert_frame_equal(
            shifted.drop(columns=["lon", "lat"]), wgs.drop(columns=["lon", "lat"])
        )
        assert np.abs(shifted["lon"] - wgs["lon"]).max() < 1e-8
    # Ignoring the datum would put many of them in another micro-grid.
    wrong = locator.locate_many(*datum.wgs84_to_gcj02(lon, lat), crs="wgs84")
    assert (wrong["governance_micro_grid"] != wgs["governance_micro_grid"]).mean() > 0.5


def test_outside_gives_the_nearest_unit_and_distance(locator: LocateService) -> None:
    answer = locator.locate(118.70, 24.80, crs="wgs84").to_dict()
    assert answer["status"] == "outside"
    layer = answer["layers"]["governance"]
    assert layer["status"] == "outside"
    assert layer["nearest"]["code"].startswith("350502")
    assert 1_000 < layer["nearest"]["distance_m"] < 30_000
    assert all(u["code"] is None for u in layer["units"])


def test_shared_vertex_goes_to_the_smallest_code(
    locator: LocateService, micro: gpd.GeoDataFrame
) -> None:
    first, second = micro.geometry.iloc[0], None
    for candidate in micro.geometry.iloc[1:]:
        if shapely.touches(first, candidate):
            second = candidate
            break
    assert second is not None
    shared = shapely.get_coordinates(shapely.intersection(first.boundary, second.boundary))[0]
    owners = micro[micro.covers(shapely.Point(shared))]["code"]
    answer = locator.locate(float(shared[0]), float(shared[1])).to_dict()
    got = {u["level"]: u["code"] for u in answer["layers"]["governance"]["units"]}
    assert got["micro_grid"] == min(owners)


def test_accuracy_circle_shares_and_ambiguity(
    locator: LocateService, micro: gpd.GeoDataFrame
) -> None:
    unit = micro.iloc[50]
    centre = unit.geometry.representative_point()
    inside = locator.locate(centre.x, centre.y, accuracy_m=1).to_dict()
    level = inside["layers"]["governance"]["units"][-1]
    assert level["status"] == "ok" and level["code"] == unit["code"]
    assert level["candidates"][0]["share"] == pytest.approx(1.0)
    # On the midpoint of an edge shared by two micro-grids the circle splits ~50/50
    # (of its longest straight segment: the shared edge may bend halfway).
    neighbour = next(
        g
        for g in micro.geometry
        if g is not unit.geometry and shapely.intersection(unit.geometry, g).length > 0
    )
    edge = shapely.intersection(unit.geometry.boundary, neighbour.boundary)
    segments = [
        pq
        for part in shapely.get_parts(shapely.line_merge(edge))
        for pq in itertools.pairwise(shapely.get_coordinates(part).tolist())
    ]
    p, q = max(segments, key=lambda pq: math.dist(*pq))
    middle = shapely.Point((p[0] + q[0]) / 2, (p[1] + q[1]) / 2)
    split = locator.locate(middle.x, middle.y, accuracy_m=5).to_dict()
    level = split["layers"]["governance"]["units"][-1]
    assert level["status"] == "ambiguous" and split["status"] == "ambiguous"
    shares = [c["share"] for c in level["candidates"]]
    assert shares[0] - shares[1] < 0.10 and sum(shares) == pytest.approx(1.0, abs=0.01)


def test_bad_input_is_refused(locator: LocateService) -> None:
    with pytest.raises(InputError, match="not usable"):
        locator.locate(float("nan"), 24.9)
    with pytest.raises(InputError, match="latitude"):
        locator.locate(118.5, 95.0, crs="wgs84")
    with pytest.raises(InputError, match="unknown CRS"):
        locator.locate(118.5, 24.9, crs="mars")
    with pytest.raises(InputError, match="accuracy_m"):
        locator.locate(118.5, 24.9, accuracy_m=-1)


def test_versions_and_live_boundary_changes(db: Database) -> None:
    load_governance(db, when="2026-01-01")
    service = LocateService(db, refresh_seconds=0)
    point = (118.545, 24.94)  # in street 001 until the boundary moves west in July
    before = service.locate(*point).to_dict()
    assert before["layers"]["governance"]["units"][1]["code"] == "350502001"
    west = box(118.50, 24.90, 118.54, 24.95)
    east = box(118.54, 24.90, 118.60, 24.95)
    import_units(
        db,
        units=frame({"350502001": west, "350502002": east}),
        layer="governance",
        level="street",
        source="redraw",
        valid_from="2026-07-01",
        cascade="new",  # the communities follow the new street edge
    )
    after = service.locate(*point, at="2026-08-01").to_dict()
    assert after["layers"]["governance"]["units"][1]["code"] == "350502002"
    history = service.locate(*point, at="2026-03-01").to_dict()
    assert history["layers"]["governance"]["units"][1]["code"] == "350502001"


@pytest.fixture(scope="module")
def client(city: Database) -> Iterator[TestClient]:
    settings = Settings(
        database_url=city.url,
        load_sample_city=False,
        max_upload_bytes=200_000,
        index_refresh_seconds=0,
    )
    with signed_in(city, settings=settings) as test_client:
        yield test_client


def test_geocode_endpoint(client: TestClient, micro: gpd.GeoDataFrame) -> None:
    point = micro.iloc[10].geometry.representative_point()
    gx, gy = datum.wgs84_to_gcj02([point.x], [point.y])
    response = client.post(
        "/api/v1/geocode",
        json={
            "x": float(gx[0]),
            "y": float(gy[0]),
            "crs": "gcj02",
            "accuracy_m": 3,
            "at": "2026-06-01T08:00:00+08:00",
        },
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["input"]["crs"] == "gcj02" and body["input"]["x"] == float(gx[0])
    assert body["layers"]["governance"]["units"][-1]["code"] == micro.iloc[10]["code"]
    minimal = client.post("/api/v1/geocode", json={"x": point.x, "y": point.y})
    assert minimal.json()["status"] == "ok"


@pytest.mark.parametrize(
    ("body", "status"),
    [
        ({"x": "abc", "y": 24.9}, 422),
        ({"y": 24.9}, 422),
        ({"x": 118.5, "y": 95, "crs": "wgs84"}, 400),
        ({"x": 118.5, "y": 24.9, "crs": "mars"}, 400),
        ({"x": 118.5, "y": 24.9, "accuracy_m": -5}, 422),
        ({"x": 118.5, "y": 24.9, "at": "soon"}, 400),
        ({"x": 118.5, "y": 24.9, "colour": "red"}, 422),
    ],
)
def test_geocode_bad_input_is_4xx_problem_json(client: TestClient, body: dict, status: int) -> None:
    response = client.post("/api/v1/geocode", json=body)
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")


def test_geocode_nan_is_refused(client: TestClient) -> None:
    response = client.post(
        "/api/v1/geocode",
        content=b'{"x": NaN, "y": 24.9}',
        headers={"content-type": "application/json"},
    )
    assert response.status_code == 422


def test_batch_csv_round_trip(client: TestClient, micro: gpd.GeoDataFrame) -> None:
    points = micro.geometry.representative_point().iloc[:50]
    table = pd.DataFrame({"id": range(50), "lon": points.x, "lat": points.y})
    table["lon"] = table["lon"].astype(object)
    table.loc[3, "lon"] = "oops"
    upload = table.to_csv(index=False).encode()
    response = client.post(
        "/api/v1/geocode/batch",
        params={"x": "lon", "y": "lat"},
        files={"file": ("events.csv", upload, "text/csv")},
    )
    assert response.status_code == 200, response.text
    result = pd.read_csv(io.BytesIO(response.content), dtype={"governance_micro_grid": str})
    assert len(result) == 50 and result.loc[3, "status"] == "invalid"
    good = result.drop(index=3)
    assert (good["governance_micro_grid"] == micro["code"].iloc[:50].drop(index=3).values).all()


def test_batch_geojson_and_parquet(
    client: TestClient, micro: gpd.GeoDataFrame, tmp_path: Path
) -> None:
    points = gpd.GeoDataFrame(
        {"id": range(20)}, geometry=micro.geometry.representative_point().iloc[:20], crs=4490
    )
    path = tmp_path / "events.geojson"
    points.to_file(path)
    response = client.post(
        "/api/v1/geocode/batch", files={"file": ("events.geojson", path.read_bytes())}
    )
    assert response.status_code == 200, response.text
    features = json.loads(response.content)["features"]
    assert [f["properties"]["governance_micro_grid"] for f in features] == list(micro["code"][:20])
    table = pd.DataFrame({"x": points.geometry.x, "y": points.geometry.y})
    table.to_parquet(tmp_path / "events.parquet")
    response = client.post(
        "/api/v1/geocode/batch",
        params={"x": "x", "y": "y"},
        files={"file": ("events.parquet", (tmp_path / "events.parquet").read_bytes())},
    )
    assert response.status_code == 200, response.text
    assert list(pd.read_parquet(io.BytesIO(response.content))["status"]) == ["ok"] * 20


@pytest.mark.parametrize(
    ("name", "content", "params", "status"),
    [
        ("empty.csv", b"", {"x": "lon", "y": "lat"}, 400),
        ("bad.csv", b'lon,lat\n"118.5,24.9\n1,2,3,4\n', {"x": "lon", "y": "lat"}, 400),
        ("events.csv", b"a,b\n1,2\n", {"x": "lon", "y": "lat"}, 400),
        ("events.xlsx", b"PK", {}, 400),
        ("big.csv", b"lon,lat\n" + b"118.5,24.9\n" * 30_000, {"x": "lon", "y": "lat"}, 413),
        ("events.csv", b"lon,lat\n118.5,24.9\n", {"x": "lon", "y": "lat", "crs": "mars"}, 400),
    ],
)
def test_batch_bad_uploads(
    client: TestClient, name: str, content: bytes, params: dict, status: int
) -> None:
    response = client.post("/api/v1/geocode/batch", params=params, files={"file": (name, content)})
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    assert client.get("/health").status_code == 200


def test_cli_locate_answers_from_the_sample_city_after_init(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from typer.testing import CliRunner

    from api.cli import app
    from gis.settings import get_settings

    monkeypatch.setenv("TONGGE_DATABASE_URL", f"sqlite:///{tmp_path / 'fresh.sqlite'}")
    monkeypatch.setenv("TONGGE_LOAD_SAMPLE_CITY", "true")
    get_settings.cache_clear()
    try:
        runner = CliRunner()
        # Only `tongge init` creates the database (with the sample city).
        assert runner.invoke(app, ["init"]).exit_code == 0
        result = runner.invoke(
            app, ["locate", "118.58", "24.91", "--crs", "wgs84", "--format", "json"]
        )
        assert result.exit_code == 0, result.output
        answer = json.loads(result.stdout)
        assert answer["status"] == "ok"
        assert answer["layers"]["governance"]["units"][0]["code"] == "350502"
        text = runner.invoke(app, ["locate", "118.58", "24.91", "--crs", "wgs84"])
        assert text.exit_code == 0 and "micro_grid" in text.stdout
        bad = runner.invoke(app, ["locate", "118.58", "95", "--crs", "wgs84"])
        assert bad.exit_code == 2 and "latitude" in bad.stderr
        # Bulk: a CSV streamed in chunks of 7 rows.
        points = gpd.read_file(MICRO).geometry.representative_point().iloc[:30]
        source = tmp_path / "events.csv"
        pd.DataFrame({"lng": points.x, "lat": points.y}).to_csv(source, index=False)
        done = runner.invoke(
            app,
            [
                "geocode",
                str(source),
                "-o",
                str(tmp_path / "out.csv"),
                "--x",
                "lng",
                "--y",
                "lat",
                "--chunk-rows",
                "7",
            ],
        )
        assert done.exit_code == 0, done.output
        out = pd.read_csv(tmp_path / "out.csv", dtype=str)
        assert len(out) == 30 and (out["status"] == "ok").all()
        missing = runner.invoke(
            app,
            ["geocode", str(source), "-o", str(tmp_path / "o.csv"), "--x", "nope", "--y", "lat"],
        )
        assert missing.exit_code == 2 and "no x column 'nope'" in missing.stderr
    finally:
        get_settings.cache_clear()


def test_locate_names_one_person_per_role_most_local_first(db: Database) -> None:
    from gis.staff import add_staff, end_staff, list_staff

    load_governance(db)
    with db.transaction() as repo:
        repo.ensure_layer(POLICE)
    import_units(
        db,
        units=frame({"P1": box(118.50, 24.90, 118.60, 24.95)}, parent=None),
        layer="police",
        level="station",
        source="t",
        valid_from="2026-01-01",
    )
    service = LocateService(db, refresh_seconds=0)
    assert service.locate(118.52, 24.94).to_dict()["responsible"] == []
    worker = add_staff(
        db,
        layer="governance",
        unit_code="350502001001",
        role="grid_worker",
        name="张三",
        phone="0595-1234567",
    )
    add_staff(db, layer="governance", unit_code="350502001", role="grid_worker", name="李四")
    add_staff(db, layer="governance", unit_code="350502001", role="cadre", name="王五")
    add_staff(db, layer="police", unit_code="P1", role="community_police", name="赵六")
    people = service.locate(118.52, 24.94).to_dict()["responsible"]
    assert [(p["role"], p["name"]) for p in people] == [
        ("grid_worker", "张三"),
        ("community_police", "赵六"),
        ("cadre", "王五"),
    ]
    end_staff(db, staff_id=worker.id)
    people = service.locate(118.52, 24.94).to_dict()["responsible"]
    assert ("grid_worker", "李四") in [(p["role"], p["name"]) for p in people]
    assert len(list_staff(db)) == 3
    with pytest.raises(InputError, match="unknown role"):
        add_staff(db, layer="governance", unit_code="350502", role="boss", name="x")
    with pytest.raises(NotFoundError):
        add_staff(db, layer="governance", unit_code="999", role="cadre", name="x")


def test_served_app_answers_geocode_before_routing(
    city: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    from api.app import create_server_app
    from gis.settings import get_settings

    monkeypatch.setenv("TONGGE_DATABASE_URL", city.url)
    monkeypatch.setenv("TONGGE_LOAD_SAMPLE_CITY", "false")
    get_settings.cache_clear()
    try:
        with TestClient(create_server_app()) as client:
            point = {"x": 118.58, "y": 24.91}
            anonymous = client.post("/api/v1/geocode", json=point)
            assert (
                anonymous.status_code == 401 and "Bearer" in anonymous.headers["www-authenticate"]
            )
            assert anonymous.headers["x-content-type-options"] == "nosniff"
            _, token = create_api_key(
                city,
                name="12345 hotline",
                role="dispatcher",
                units=["governance:350502"],
                actor=SYSTEM,
            )
            client.headers["X-API-Key"] = token
            answer = client.post("/api/v1/geocode", json=point)
            assert answer.status_code == 200 and answer.json()["status"] == "ok"
            assert answer.headers["cache-control"] == "no-store"
            client.headers["X-API-Key"] = token[:-2] + "xx"
            assert client.post("/api/v1/geocode", json=point).status_code == 401
            client.headers["X-API-Key"] = token
            bad = client.post("/api/v1/geocode", json={"x": 118.58, "y": 95, "crs": "wgs84"})
            assert bad.status_code == 400
            assert bad.headers["content-type"].startswith("application/problem+json")
            assert client.get("/health").json()["status"] == "ok"
    finally:
        get_settings.cache_clear()
