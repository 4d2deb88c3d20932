"""Places on both dialects: import with validation (all or nothing), assignment, workload."""

from __future__ import annotations

from pathlib import Path

import geopandas as gpd
import pandas as pd
import pytest
from shapely import Point, box

from gis.errors import InputError
from gis.places import (
    assign_places,
    import_buildings,
    import_households,
    import_pois,
    reassignment_diff,
    unit_workload,
)
from gis.repository import Database
from gis.units import import_units
from tests._client import signed_in
from tests.fixtures_governance import frame, load_governance, write_buildings


def write_households(tmp_path: Path, rows: list[tuple[str, str, int]]) -> Path:
    path = tmp_path / "households.csv"
    pd.DataFrame(rows, columns=["key", "building_key", "persons"]).to_csv(path, index=False)
    return path


def test_import_assign_and_workload(db: Database, tmp_path: Path) -> None:
    load_governance(db)
    assert import_buildings(db, path=write_buildings(tmp_path)).count == 3
    households = [(f"H{i}", "B1", 3) for i in range(4)] + [("H9", "B2", 2)]
    assert import_households(db, path=write_households(tmp_path, households)).count == 5
    pois = tmp_path / "pois.geojson"
    gpd.GeoDataFrame(
        {"key": ["P1"], "name": ["鲤城小学"], "category": ["school"]},
        geometry=[Point(118.5415, 24.9355)],
        crs=4490,
    ).to_file(pois)
    assert import_pois(db, path=pois).count == 1
    assigned = assign_places(db, level="community").frame.set_index("key")
    assert assigned.loc["B1", "unit"] == "350502001001"
    assert assigned.loc["B2", "unit"] == "350502001001" and bool(assigned.loc["B2", "cut"])
    assert assigned.loc["B3", "unit"] == "350502002001"
    load = unit_workload(db).units.set_index("code")
    assert load.loc["350502001001", "households"] == 5
    assert load.loc["350502001", "persons"] == 14
    assert load.loc["350502", "buildings"] == 3


def test_reassignment_diff_after_a_boundary_change(db: Database, tmp_path: Path) -> None:
    load_governance(db)
    import_buildings(db, path=write_buildings(tmp_path))
    west = {
        "350502001": box(118.50, 24.90, 118.545, 24.95),
        "350502002": box(118.545, 24.90, 118.60, 24.95),
    }
    result = import_units(
        db,
        units=frame(west),
        layer="governance",
        level="street",
        source="redraw",
        valid_from="2026-07-01",
        cascade="new",
    )
    # The import's own diff, at the lowest level (communities followed the street edge).
    stored = result.moves.set_index("key")
    assert stored.loc["B2", ["changed_level", "from_code", "to_code"]].tolist() == [
        "street",
        "350502001",
        "350502002",
    ]
    moved = reassignment_diff(db, level="street", before="2026-03-01", after="2026-08-01")
    assert moved.set_index("key").loc["B2", ["from_unit", "to_unit"]].tolist() == [
        "350502001",
        "350502002",
    ]


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ({"floors": ["x", 1, 2]}, "floors 'x' is not a whole number"),
        ({"key": ["B1", "B1", "B3"]}, "key 'B1' appears more than once"),
        (
            {"entrance_lon": [119.0, None, None], "entrance_lat": [25.0, None, None]},
            "far from its footprint",
        ),
    ],
)
def test_bad_buildings_are_refused_whole(
    db: Database, tmp_path: Path, extra: dict, message: str
) -> None:
    with pytest.raises(InputError, match=message):
        import_buildings(db, path=write_buildings(tmp_path, **extra))
    with db.reader() as repo:
        assert repo.places.counts()["buildings"] == 0


def test_households_need_their_building(db: Database, tmp_path: Path) -> None:
    import_buildings(db, path=write_buildings(tmp_path))
    bad = write_households(tmp_path, [("H1", "B1", 2), ("H2", "NOPE", 2)])
    with pytest.raises(InputError, match="building 'NOPE' does not exist"):
        import_households(db, path=bad)
    with pytest.raises(InputError, match="persons 99 is outside"):
        import_households(db, path=write_households(tmp_path, [("H1", "B1", 99)]))
    with db.reader() as repo:
        assert repo.places.counts()["households"] == 0


def test_points_are_not_buildings(db: Database, tmp_path: Path) -> None:
    path = tmp_path / "points.geojson"
    gpd.GeoDataFrame({"key": ["X"]}, geometry=[Point(118.5, 24.9)], crs=4490).to_file(path)
    with pytest.raises(InputError, match="expected a polygon"):
        import_buildings(db, path=path)


def test_workload_endpoint(db: Database, tmp_path: Path) -> None:


    load_governance(db)
    import_buildings(db, path=write_buildings(tmp_path))
    import_households(db, path=write_households(tmp_path, [("H1", "B3", 4)]))
    with signed_in(db) as c:
        body = c.get("/api/v1/workload", params={"level": "street"}).json()
        loads = {u["code"]: (u["households"], u["persons"]) for u in body["units"]}
        assert loads == {"350502001": (0, 0), "350502002": (1, 4)}
        assert c.get("/api/v1/workload", params={"layer": "nope"}).status_code == 404


def test_locate_by_standard_address(db: Database, tmp_path: Path) -> None:

    from gis.locate import LocateService

    load_governance(db)
    import_buildings(
        db,
        path=write_buildings(
            tmp_path,
            address=[
                "福建省泉州市鲤城区开元街道中山南路1号",
                "福建省泉州市鲤城区开元街道中山南路2号",
                "福建省泉州市鲤城区开元街道中山南路3号",
            ],
        ),
    )
    service = LocateService(db, refresh_seconds=0)
    exact = service.locate_address("鲤城区中山南路1号2单元302室").to_dict()
    assert exact["status"] == "ok" and exact["address"]["building_key"] == "B1"
    assert exact["address"]["certain"] is True
    assert exact["address"]["parsed"]["room"] == "302室"
    units = {u["level"]: u["code"] for u in exact["layers"]["governance"]["units"]}
    assert units["community"] == "350502001001"
    near = service.locate_address("中山南路5号").to_dict()
    assert near["status"] == "ambiguous" and near["address"]["certain"] is False
    assert near["address"]["candidates"][0]["key"] == "B3"
    assert service.locate_address("人民路9号").to_dict()["status"] == "unmatched"
    with signed_in(db) as c:
        body = c.post("/api/v1/geocode", json={"address": "中山南路3号"}).json()
        assert body["address"]["building_key"] == "B3" and body["status"] == "ok"
        both = c.post("/api/v1/geocode", json={"address": "中山南路3号", "x": 1, "y": 2})
        assert both.status_code == 422
        assert c.post("/api/v1/geocode", json={"address": ""}).status_code == 422


def test_pois_from_csv_lon_lat(db: Database, tmp_path: Path) -> None:
    path = tmp_path / "pois.csv"
    path.write_text("key,name,category,lon,lat\nP1,鲤城医院,hospital,118.58,24.91\n", "utf-8")
    assert import_pois(db, path=path).count == 1
    path.write_text("key,name,category,lon,lat\nP1,鲤城医院,hospital,east,24.91\n", "utf-8")
    with pytest.raises(InputError, match="row 1: lon/lat is not numeric"):
        import_pois(db, path=path)


def test_household_extra_columns_are_not_stored_and_said_so(db: Database, tmp_path: Path) -> None:
    import_buildings(db, path=write_buildings(tmp_path))
    path = tmp_path / "households.csv"
    pd.DataFrame(
        {
            "key": ["H1"],
            "building_key": ["B1"],
            "persons": [3],
            "name": ["张三"],
            "id_number": ["350502199001011234"],
        }
    ).to_csv(path, index=False)
    result = import_households(db, path=path)
    assert result.ignored_columns == ("name", "id_number")
    with db.reader() as repo:
        assert list(repo.places.households_table().columns) == [
            "key",
            "building_key",
            "unit_no",
            "floor",
            "room",
            "persons",
        ]


def test_boundary_import_reports_the_buildings_it_moves(
    db: Database, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import json

    from typer.testing import CliRunner

    from api.cli import app
    from gis.settings import get_settings

    load_governance(db)
    import_buildings(db, path=write_buildings(tmp_path))
    redraw = tmp_path / "streets.geojson"
    moved_west = {
        "350502001": box(118.50, 24.90, 118.545, 24.95),
        "350502002": box(118.545, 24.90, 118.60, 24.95),
    }
    frame(moved_west).drop(columns="attributes").to_file(redraw)
    monkeypatch.setenv("TONGGE_DATABASE_URL", db.url)
    get_settings.cache_clear()
    try:
        result = CliRunner().invoke(
            app,
            [
                "import",
                str(redraw),
                "--layer",
                "governance",
                "--level",
                "street",
                "--valid-from",
                "2026-07-01",
                "--cascade",
                "new",
                "--format",
                "json",
            ],
        )
    finally:
        get_settings.cache_clear()
    assert result.exit_code == 0, result.output
    answer = json.loads(result.stdout)
    assert answer["moved_buildings"] == 1
    assert [(m["key"], m["from_code"], m["to_code"]) for m in answer["moves"]] == [
        ("B2", "350502001", "350502002")
    ]


def test_institution_owns_a_dedicated_grid(db: Database, tmp_path: Path) -> None:
    load_governance(db)
    school = box(118.540, 24.930, 118.545, 24.935)
    grids = frame(
        {
            "350502001001001": school,
            "350502001001002": box(118.50, 24.925, 118.55, 24.95).difference(school),
        }
    )
    grids.loc[0, "kind"] = "dedicated"
    import_units(
        db, units=grids, layer="governance", level="grid", source="t", valid_from="2026-01-01"
    )
    path = tmp_path / "pois.geojson"

    def write(dedicated: str) -> Path:
        gpd.GeoDataFrame(
            {
                "key": ["P1"],
                "name": ["鲤城实验小学"],
                "category": ["school"],
                "dedicated_grid": [dedicated],
            },
            geometry=[Point(118.542, 24.932)],
            crs=4490,
        ).to_file(path)
        return path

    assert import_pois(db, path=write("350502001001001")).count == 1
    with pytest.raises(InputError, match="is not a dedicated"):
        import_pois(db, path=write("350502001001002"))
    with pytest.raises(InputError, match="does not exist"):
        import_pois(db, path=write("999"))


def test_cached_workload_follows_new_places_and_boundaries(db: Database, tmp_path: Path) -> None:
    from gis.places import UnitPlaces
    from gis.revisions import RevisionClock

    load_governance(db)
    import_buildings(db, path=write_buildings(tmp_path))
    import_households(db, path=write_households(tmp_path, [("H1", "B3", 4)]))
    cached = UnitPlaces(db, clock=RevisionClock(db, refresh_seconds=0))
    first = cached.workload(layer="governance").units.set_index("code")
    assert first.loc["350502002", "households"] == 1
    assert cached.workload(layer="governance") is cached.workload(layer="governance")
    import_households(db, path=write_households(tmp_path, [("H1", "B3", 4), ("H2", "B3", 2)]))
    second = cached.workload(layer="governance").units.set_index("code")
    assert second.loc["350502002", "persons"] == 6
    assert sorted(cached.households(layer="governance", code="350502002")["key"]) == ["H1", "H2"]
    # The same keys again, new counts: SQLite may even reuse the row ids.
    import_households(db, path=write_households(tmp_path, [("H1", "B3", 5), ("H2", "B3", 2)]))
    third = cached.workload(layer="governance").units.set_index("code")
    assert third.loc["350502002", "persons"] == 7


def test_one_index_per_level_serves_locate_assignment_and_workload(
    db: Database, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from gis.gridindex import GridIndex
    from gis.locate import LocateService
    from gis.places import UnitPlaces
    from gis.revisions import RevisionClock

    load_governance(db)
    import_buildings(db, path=write_buildings(tmp_path))
    import_households(db, path=write_households(tmp_path, [("H1", "B3", 4), ("H2", "B1", 2)]))
    clock = RevisionClock(db, refresh_seconds=0)
    own = UnitPlaces(db, clock=clock).workload(layer="governance").units
    locator = LocateService(db, clock=clock)
    locator.cache.get()  # the locate indexes exist
    built: list[int] = []
    real = GridIndex.from_frame.__func__  # type: ignore[attr-defined]

    def counting(cls: type[GridIndex], *args: object, **kwargs: object) -> GridIndex:
        built.append(1)
        return real(cls, *args, **kwargs)

    monkeypatch.setattr(GridIndex, "from_frame", classmethod(counting))
    shared = UnitPlaces(db, clock=clock, indexes=locator.cache)
    assert shared.workload(layer="governance").units.equals(own)
    assert shared.buildings(layer="governance", code="350502001")["key"].tolist() == ["B1", "B2"]
    assert built == []  # no index built beside the locate service's
