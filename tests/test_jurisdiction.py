"""Jurisdiction as an area, without HTTP, on both dialects (and the geocode answers over HTTP).

The two-grid city of :mod:`tests.fixtures_access`, plus a building ``BY-2``
in the east street (inside beat Y, outside the west street)::

    118.50     118.525    118.55               118.60
      +----------+----------+--------------------+ 24.95
      | grid A   | grid B   |                    |
      | beat X   |  beat Y ----------------------|   street 350502002
      |          |  [BB-1]  |      [BY-2]        |   (east)
      +  street 350502001 (west)                 + 24.90
      station P01 covers everything

A dispatcher of the west street sees X, Y and P01 (they share ground with
the street), BY-2 is not theirs; a dispatcher of grid B sees Y and P01 but
not X, which only touches grid B.
"""

from __future__ import annotations

import io
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely
from fastapi.testclient import TestClient
from shapely import box

from api.app import create_app
from gis.access import SYSTEM, Jurisdiction, JurisdictionResolver, Principal, Role
from gis.access.accounts import create_api_key
from gis.errors import InputError, NotFoundError
from gis.locate import LocateService
from gis.places import UnitPlaces, import_buildings, import_households
from gis.repository import Database
from gis.revisions import RevisionClock
from gis.settings import Settings
from gis.staff import list_staff
from gis.units import list_layers, unit_detail, units_page
from tests.fixtures_access import (
    BEAT_X,
    BEAT_Y,
    COMMUNITY,
    GRID_A,
    GRID_B,
    MICRO_A,
    MICRO_B,
    STATION,
    load_two_grids,
)

WEST, EAST = "350502001", "350502002"
IN_B = (118.53, 24.94)  # grid B, beat Y, west street
IN_EAST = (118.57, 24.94)  # beat Y and P01 too, but the east street
IN_SEA = (118.40, 24.80)  # no unit of any layer
GRID_B_REF = f"governance:{GRID_B}"


@pytest.fixture
def city(db: Database, tmp_path: Path) -> Database:
    load_two_grids(db, tmp_path)
    path = tmp_path / "east.geojson"
    gpd.GeoDataFrame(
        {"key": ["BY-2"], "address": ["中山南路3号"], "floors": [4]},
        geometry=[box(118.570, 24.935, 118.571, 24.936)],
        crs=4490,
    ).to_file(path)
    import_buildings(db, path=path, actor=SYSTEM)
    homes = tmp_path / "east.csv"
    pd.DataFrame([("HY-1", "BY-2", 2)], columns=["key", "building_key", "persons"]).to_csv(
        homes, index=False
    )
    import_households(db, path=homes, actor=SYSTEM)
    return db


def jurisdiction_of(db: Database, *units: str) -> Jurisdiction:
    resolver = JurisdictionResolver(db, clock=RevisionClock(db, refresh_seconds=0))
    principal = Principal(kind="api_key", name="hotline", role=Role.DISPATCHER, units=units)
    return resolver.jurisdiction(principal)


def test_a_street_sees_the_police_units_sharing_its_ground(city: Database) -> None:
    west = jurisdiction_of(city, f"governance:{WEST}")
    assert west.codes("police") == {STATION, BEAT_X, BEAT_Y}
    assert west.wholly_codes("police") == frozenset()
    assert west.codes("governance") == {
        WEST,
        COMMUNITY,
        "350502001002",
        GRID_A,
        GRID_B,
        *MICRO_A,
        *MICRO_B,
    }
    # Listed with their boundaries inside the street only.
    page, total = units_page(city, layer="police", jurisdiction=west)
    assert total == 3 and set(page["code"]) == {STATION, BEAT_X, BEAT_Y}
    street = box(118.50, 24.90, 118.55, 24.95)
    for geometry in page.geometry:
        assert shapely.difference(geometry, street.buffer(1e-9)).is_empty
    beat_y = page[page["code"] == BEAT_Y].geometry.iloc[0]
    assert beat_y.bounds[2] == pytest.approx(118.55)  # cut at the street's edge
    layers = list_layers(city, jurisdiction=west)
    counts = {lv.name: lv.unit_count for layer in layers for lv in layer.levels}
    assert counts["station"] == 1 and counts["beat"] == 2
    detail = unit_detail(city, code=BEAT_Y, layer="police", jurisdiction=west)
    assert detail["unit"].geometry.bounds[2] == pytest.approx(118.55)
    assert detail["ancestors"][0]["code"] == STATION


def test_touching_is_not_overlapping(city: Database) -> None:
    grid_b = jurisdiction_of(city, f"governance:{GRID_B}")
    assert grid_b.codes("police") == {STATION, BEAT_Y}
    assert not grid_b.sees("police", BEAT_X)  # shares only the edge at 118.525
    with pytest.raises(NotFoundError) as hidden:
        unit_detail(city, code=BEAT_X, layer="police", jurisdiction=grid_b)
    with pytest.raises(NotFoundError) as missing:
        unit_detail(city, code="P01Z", layer="police", jurisdiction=grid_b)
    assert str(hidden.value).replace(BEAT_X, "?") == str(missing.value).replace("P01Z", "?")
    # The same rule the other way round: a beat sees the grids it covers.
    beat_x = jurisdiction_of(city, f"police:{BEAT_X}")
    governance = beat_x.codes("governance") or frozenset()
    assert GRID_A in governance and GRID_B not in governance


def test_places_of_another_layer_only_inside_the_area(city: Database) -> None:
    west = jurisdiction_of(city, f"governance:{WEST}")
    clock = RevisionClock(city, refresh_seconds=0)
    places = UnitPlaces(city, clock=clock)
    everyone = Jurisdiction.everything()
    assert set(places.buildings(layer="police", code=BEAT_Y, jurisdiction=everyone)["key"]) == {
        "BB-1",
        "BY-2",
    }
    assert list(places.buildings(layer="police", code=BEAT_Y, jurisdiction=west)["key"]) == ["BB-1"]
    homes = places.households(layer="police", code=STATION, jurisdiction=west)
    assert sorted(homes["key"]) == ["HA-1", "HA-2", "HB-1", "HB-2"]
    with pytest.raises(NotFoundError):
        places.visible_building(key="BY-2", jurisdiction=west)
    seen = places.visible_building(key="BB-1", jurisdiction=west)
    assert seen["units"] == {"governance": MICRO_B[0], "police": BEAT_Y}
    with pytest.raises(NotFoundError):
        places.unit(layer="police", code=BEAT_X, jurisdiction=jurisdiction_of(city, GRID_B_REF))
    # Staff and workload: units seen entirely only.
    assert {m.unit_code for m in list_staff(city, jurisdiction=west)} == {GRID_A, GRID_B}
    police_load = places.visible_workload(layer="police", jurisdiction=west)
    assert police_load.units.empty


def test_outside_the_jurisdiction_nothing_leaks(city: Database) -> None:
    west = jurisdiction_of(city, f"governance:{WEST}")
    locator = LocateService(city, refresh_seconds=0)
    inside = locator.locate(*IN_B, viewer=west).to_dict()
    assert inside["status"] == "ok"
    assert [u["code"] for u in inside["layers"]["police"]["units"]] == [STATION, BEAT_Y]
    assert inside["layers"]["governance"]["units"][-1]["code"] == MICRO_B[0]
    assert inside["layers"]["governance"]["units"][0]["status"] == "restricted"  # the county
    neighbour = locator.locate(*IN_EAST, viewer=west).to_dict()
    sea = locator.locate(*IN_SEA, viewer=west).to_dict()
    for answer in (neighbour, sea):
        assert answer["status"] == "outside_jurisdiction"
        assert answer["layers"] == {} and answer["responsible"] == []

    def shape(answer: dict[str, object]) -> dict[str, object]:
        return {k: v for k, v in answer.items() if k not in ("input", "lon", "lat")}

    assert list(neighbour) == list(sea) and shape(neighbour) == shape(sea)
    # Unrestricted, the same two points are very different.
    assert locator.locate(*IN_EAST).layers["police"].units[-1].code == BEAT_Y
    assert locator.locate(*IN_SEA).layers["police"].status == "outside"
    # An address in the east street: outside too, and never where it is.
    address = locator.locate_address("中山南路3号", viewer=west).to_dict()
    unknown = locator.locate_address("人民路9号", viewer=west).to_dict()
    assert address["status"] == "outside_jurisdiction" and unknown["status"] == "unmatched"
    assert list(address) == list(unknown) == ["input", "status", "address", "layers", "responsible"]
    assert address["address"] == {
        "input": "中山南路3号",
        "parsed": address["address"]["parsed"],
        "candidates": [],
    }
    assert "BY-2" not in str(address)
    mine = locator.locate_address("中山南路2号", viewer=west).to_dict()
    assert mine["status"] == "ok" and mine["address"]["building_key"] == "BB-1"


def test_batch_outside_the_jurisdiction(city: Database) -> None:
    west = jurisdiction_of(city, f"governance:{WEST}")
    locator = LocateService(city, refresh_seconds=0)
    points = np.array([IN_B, IN_EAST, IN_SEA, (np.nan, 24.9)])
    rows = locator.locate_many(points[:, 0], points[:, 1], visible=west)
    assert list(rows["status"]) == ["ok", "outside_jurisdiction", "outside_jurisdiction", "invalid"]

    def codes(column: str) -> list[str | None]:
        return [c if isinstance(c, str) else None for c in rows[column]][:3]

    assert codes("police_beat") == [BEAT_Y, None, None]
    assert codes("governance_county") == [None, None, None]  # not the street's parent
    assert rows.iloc[1].drop(["lon", "lat"]).fillna("").tolist() == (
        rows.iloc[2].drop(["lon", "lat"]).fillna("").tolist()
    )


def test_binding_to_the_area_of_another_layer(city: Database) -> None:
    key, _ = create_api_key(
        city, name="district", role="dispatcher", units=["police:350502"], actor=SYSTEM
    )
    assert key.units == ("governance:350502",)  # the district's own reference
    district = jurisdiction_of(city, *key.units)
    assert district.codes("police") == {STATION, BEAT_X, BEAT_Y}
    with pytest.raises(NotFoundError, match="nor in any other layer"):
        create_api_key(city, name="x", role="dispatcher", units=["police:999"], actor=SYSTEM)
    with pytest.raises(InputError, match="LAYER:CODE"):
        create_api_key(city, name="y", role="dispatcher", units=["350502"], actor=SYSTEM)


@pytest.fixture
def client(city: Database) -> Iterator[TestClient]:
    app = create_app(Settings(database_url=city.url, load_sample_city=False), db=city)
    with TestClient(app) as test_client:
        yield test_client


def test_geocode_over_http_for_a_district_key(client: TestClient, city: Database) -> None:
    _, token = create_api_key(
        city, name="hotline", role="dispatcher", units=[f"police:{WEST}"], actor=SYSTEM
    )
    client.headers["X-API-Key"] = token
    east = client.post("/api/v1/geocode", json=dict(zip("xy", IN_EAST, strict=True))).json()
    sea = client.post("/api/v1/geocode", json=dict(zip("xy", IN_SEA, strict=True))).json()
    assert east["status"] == sea["status"] == "outside_jurisdiction"
    assert {k for k in east} == {k for k in sea}
    assert [lv["unit_count"] for lv in client.get("/api/v1/layers").json()[1]["levels"]] == [1, 2]
    upload = io.BytesIO(f"id,x,y\nb,{IN_B[0]},{IN_B[1]}\ne,{IN_EAST[0]},{IN_EAST[1]}\n".encode())
    result = client.post(
        "/api/v1/geocode/batch",
        params={"x": "x", "y": "y"},
        files={"file": ("points.csv", upload, "text/csv")},
    )
    table = pd.read_csv(io.StringIO(result.text), dtype=str)
    assert list(table["status"]) == ["ok", "outside_jurisdiction"]
    assert list(table["police_beat"].fillna("")) == [BEAT_Y, ""]


def test_the_locate_indexes_give_the_same_jurisdictions(city: Database) -> None:
    clock = RevisionClock(city, refresh_seconds=0)
    shared = JurisdictionResolver(city, clock=clock, indexes=LocateService(city, clock=clock).cache)
    for units in ((f"governance:{WEST}",), (GRID_B_REF,), (f"police:{BEAT_X}", GRID_B_REF)):
        principal = Principal(kind="user", name="u", role=Role.DISPATCHER, units=units)
        loaded, indexed = jurisdiction_of(city, *units), shared.jurisdiction(principal)
        assert indexed.wholly == loaded.wholly and indexed.overlapping == loaded.overlapping
        assert indexed.area is not None and loaded.area is not None
        # The same ground, up to the back-projection (well under a millimetre).
        assert shapely.symmetric_difference(indexed.area, loaded.area).area < 1e-12
        assert indexed.covers(*IN_B) == loaded.covers(*IN_B)


def test_jurisdictions_follow_a_change_while_the_locate_indexes_are_rebuilt(
    city: Database,
) -> None:
    # A served application answers locate requests from the previous indexes
    # while the new ones are built in the background. Jurisdictions must not:
    # the micro-grid a split just made is seen at once, one just retired no
    # longer is. The rebuild is held back here (its lock taken) to keep the
    # indexes stale for as long as the test needs.
    from gis.edits import service as edits

    clock = RevisionClock(city, refresh_seconds=0)
    locator = LocateService(city, clock=clock, background=True)
    resolver = JurisdictionResolver(city, clock=clock, indexes=locator.cache)
    principal = Principal(
        kind="user", name="w", role=Role.GRID_WORKER, units=(f"governance:{GRID_A}",)
    )
    assert resolver.jurisdiction(principal).sees_wholly("governance", MICRO_A[0])
    cut = shapely.LineString([(118.50, 24.9375), (118.5125, 24.9375)])
    result = edits.edit(
        city,
        layer="governance",
        op="split",
        level="micro_grid",
        units=[MICRO_A[0]],
        geometry=shapely.geometry.mapping(cut),
        actor=SYSTEM,
    )
    created = result.to_dict()["created"]
    assert created
    retired = edits.edit(
        city,
        layer="governance",
        op="retire",
        level="micro_grid",
        units=[MICRO_A[1]],
        to=[MICRO_A[0]],
        actor=SYSTEM,
    )
    assert retired.to_dict()["retired"] == [MICRO_A[1]]
    # Two edits within one second: the second takes effect a second later.
    while datetime.now(UTC) < retired.valid_from:
        time.sleep(0.05)
    locator.cache.wait()
    with locator.cache._lock:  # no rebuild can start: the indexes stay stale
        stale = locator.cache.get()
        assert stale.revision != clock.current().boundaries
        seen = resolver.jurisdiction(principal)
        assert all(seen.sees_wholly("governance", code) for code in created)
        assert not seen.sees_wholly("governance", MICRO_A[1])
    locator.cache.wait()
    locator.cache.get()  # starts the rebuild now that it may
    locator.cache.wait()
    rebuilt = resolver.jurisdiction(principal)
    assert all(rebuilt.sees_wholly("governance", code) for code in created)
    assert not rebuilt.sees_wholly("governance", MICRO_A[1])
