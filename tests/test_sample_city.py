"""The bundled sample city (鲤城区 Licheng): clean nested coverages, loaded on first use."""

from __future__ import annotations

from pathlib import Path

import geopandas as gpd
import pytest
import shapely

from api.bootstrap import open_database
from boundaries import SAMPLE_CITY, sample_city_listing, sample_city_manifest
from gis.io import read_units
from gis.layers import BUILTIN_LAYERS
from gis.repository import Database
from gis.settings import Settings
from gis.units import list_layers, unit_detail
from gis.validate import validate_units

MANIFEST = sample_city_manifest()
LEVELS = [
    (layer["name"], index, level)
    for layer in MANIFEST["layers"]
    for index, level in enumerate(layer["levels"])
]


def level_file(layer: str, level: str) -> Path:
    entry = next(
        lv
        for ly in MANIFEST["layers"]
        if ly["name"] == layer
        for lv in ly["levels"]
        if lv["name"] == level
    )
    return SAMPLE_CITY / entry["file"]


@pytest.mark.parametrize(
    ("layer", "index", "level"), LEVELS, ids=[f"{a}:{c['name']}" for a, _, c in LEVELS]
)
def test_every_level_is_a_clean_coverage_of_its_parent(layer: str, index: int, level: dict) -> None:
    spec = BUILTIN_LAYERS[layer]
    units = read_units(SAMPLE_CITY / level["file"])
    assert units.crs.to_epsg() == 4490
    parents = None
    if index > 0:
        parent_level = spec.levels[index - 1].name
        parents = read_units(level_file(layer, parent_level))
    report = validate_units(
        units, parents=parents, layer=spec, level=level["name"], expect_all_parents=True
    )
    assert report.ok, [p.to_dict() for p in report.problems[:5]]
    assert not [w for w in report.warnings if w.rule != "multi_part_unit"], report.warnings[:3]


def test_grid_sizes_follow_the_practice() -> None:
    grids = gpd.read_file(level_file("governance", "grid"))
    assert grids["households"].between(300, 500).mean() > 0.9
    micro = gpd.read_file(level_file("governance", "micro_grid"))
    assert micro["households"].between(10, 150).mean() > 0.9
    assert set(grids["kind"]) == {"comprehensive", "dedicated"}
    assert all(len(code) == 15 for code in grids["code"])
    assert all(len(code) == 18 for code in micro["code"])


def test_real_street_names_and_codes() -> None:
    streets = gpd.read_file(level_file("governance", "street"))
    assert "350502004" in set(streets["code"])
    assert streets.set_index("code").loc["350502004", "name"] == "开元街道"


def test_police_layer_has_the_documented_misalignments() -> None:
    misalignments = sample_city_listing("police/misalignments.json")
    assert len(misalignments) >= 3
    grids = gpd.read_file(level_file("governance", "grid")).set_index("code").to_crs(4549)
    beats = gpd.read_file(level_file("police", "beat")).set_index("code").to_crs(4549)
    split = [m for m in misalignments if m["kind"] == "grid_split_across_beats"]
    assert split
    for item in split:
        grid = grids.loc[item["grid"]].geometry
        shares = {
            b: shapely.intersection(grid, beats.loc[b].geometry).area / grid.area
            for b in item["beats"]
        }
        assert all(share > 0.01 for share in shares.values()), shares


def test_embedded_database_loads_the_sample_city_on_first_use(tmp_path: Path) -> None:
    settings = Settings(database_url=f"sqlite:///{tmp_path / 'city.sqlite'}", load_sample_city=True)
    db = open_database(settings, create=True)
    counts = {
        (layer.name, lv.name): lv.unit_count for layer in list_layers(db) for lv in layer.levels
    }
    assert counts[("governance", "county")] == 1
    assert counts[("governance", "micro_grid")] == len(
        gpd.read_file(level_file("governance", "micro_grid"))
    )
    assert counts[("police", "beat")] > 0
    detail = unit_detail(db, code="350502004", layer="governance")
    assert [a["code"] for a in detail["ancestors"]] == ["350502"]
    # Opening again neither reloads nor duplicates.
    again = open_database(settings, create=True)
    assert {
        (ly.name, lv.name): lv.unit_count for ly in list_layers(again) for lv in ly.levels
    } == counts


def test_sample_places_are_assigned_cut_flagged_and_outside_reported(city_db: Database) -> None:
    from gis.places import assign_places, unit_workload

    db = city_db  # loaded on first use, as above (once per run, copied)
    cut = sample_city_listing("places/cut_buildings.json")
    outside = sample_city_listing("places/outside_buildings.json")
    frame = assign_places(db).frame.set_index("key")
    assert frame.index.is_unique  # every building exactly once
    for item in cut:
        row = frame.loc[item["key"]]
        assert bool(row["cut"]), item["key"]
        assert row["unit"] == item["micro_grid"]  # most of it lies in its own micro-grid
    for item in outside:
        assert frame.loc[item["key"], "rule"] == "unassigned"
        assert frame.loc[item["key"], "nearest"] is not None
    load = unit_workload(db)
    grids = gpd.read_file(level_file("governance", "grid")).set_index("code")
    counted = load.units.set_index("code")
    outside_households = sum(item["households"] for item in outside)
    assert (
        int(counted.loc["350502", "households"]) + outside_households == grids["households"].sum()
    )
    assert int(load.outside["households"]) == outside_households


def test_township_work_areas_are_the_third_layer_of_the_same_grid() -> None:
    from gis.alignment import check_alignment

    grids = read_units(level_file("governance", "grid"))
    communities = read_units(level_file("governance", "community"))
    areas = read_units(level_file("township", "work_area"))
    streets = read_units(level_file("township", "street"))
    civil_streets = read_units(level_file("governance", "street"))
    # Its streets are the civil streets; every work area groups whole communities of one.
    assert sorted(streets["code"]) == sorted(civil_streets["code"])
    pairs = zip(areas["code"], areas["parent_code"], strict=True)
    assert all(code[:9] == parent and code[9] == "9" for code, parent in pairs)
    assert 8 < len(areas) < len(communities)
    report = check_alignment(grids, areas, a_parents=communities, b_parents=streets)
    assert report.aligned, report.to_dict()["violations"][:3]
    assert report.a_count == len(grids) and not report.noise and report.slivers == 0
    assert len(report.checked) > 3  # the parent rules (community, street) were checked too


def test_police_layer_is_digitised_separately_one_station_per_street() -> None:
    streets = read_units(level_file("governance", "street"))
    stations = read_units(level_file("police", "station"))
    # One station per street, named after it (the usual urban pattern).
    assert sorted(n.removesuffix("派出所") for n in stations["name"]) == sorted(
        n.removesuffix("街道") for n in streets["name"]
    )
    # Drawn by another department: beat edges follow the grids' at a metre or
    # two, sharing their vertices only on the district outline (where both
    # follow the official outline).
    county = read_units(level_file("governance", "county")).geometry.iloc[0]
    micro = read_units(level_file("governance", "micro_grid"))
    beats = read_units(level_file("police", "beat"))
    outline = {tuple(p) for p in shapely.get_coordinates(county).tolist()}
    grid_xy = {tuple(p) for p in shapely.get_coordinates(micro.geometry.values).tolist()}
    beat_xy = {tuple(p) for p in shapely.get_coordinates(beats.geometry.values).tolist()} - outline
    assert len(beat_xy & grid_xy) < 0.05 * len(beat_xy)


def _share_along(
    units: gpd.GeoDataFrame, county: shapely.Geometry, near: shapely.Geometry
) -> float:
    """Share of the inner boundary length of ``units`` (not the outline) inside ``near``."""
    edges = shapely.union_all(shapely.boundary(units.geometry.values))
    inner = shapely.difference(edges, shapely.buffer(county.boundary, 0.5))
    return float(shapely.intersection(inner, near).length / inner.length)


def test_beat_edges_prefer_the_arterials() -> None:
    # Streets grow superblock by superblock (the blocks between arterials) and
    # communities are cut along arterials (主干路) where their household
    # shares allow, so the beats, which group whole grids and nest in
    # communities, mostly follow the main roads too: 76.8% of the inner beat
    # edges lie within 5 m of one (18.2% when communities were cut along
    # lanes), 69.8% of the community edges (boundaries/README.md, Police).
    streets = gpd.read_file(SAMPLE_CITY / "streets.geojson").to_crs(4549)
    arterials = shapely.union_all(streets.loc[streets["class"] == "arterial"].geometry.values)
    near = shapely.buffer(arterials, 5.0)
    county = gpd.read_file(level_file("governance", "county")).to_crs(4549).geometry.iloc[0]
    beats = gpd.read_file(level_file("police", "beat")).to_crs(4549)
    communities = gpd.read_file(level_file("governance", "community")).to_crs(4549)
    assert _share_along(beats, county, near) >= 0.75
    assert _share_along(communities, county, near) >= 0.65
