"""Real layers for the stateful edit tests, and the invariants checked after every change.

Two datasets, loaded into any database (SpatiaLite or PostGIS) in seconds:

- :func:`load_city_street`: one street (街道) of the sample city — its
  communities, grids and micro-grids as they are, the county cut to that
  street (so the layer is complete on its own), the buildings wholly inside
  it with their households and the POIs in it;
- :func:`load_chicago_beats`: the real Chicago police beats (``../shared/data``)
  under districts dissolved from them, as the layer ``police`` (station → beat).

:func:`layer_problems` lists every broken invariant of a layer's levels as
given (frames), :func:`stored_layer_problems` of what is stored, with the
project's own validator (:func:`gis.validate.validate_units`, the check every
import runs) and independently with GEOS (``coverage_is_valid``, unions of
children against their parent, symmetric differences measured in m²).
:func:`places_problems` checks that every building is assigned to exactly
one unit of the lowest level (which holds it) and every household counted
once.
"""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from gis.crs import STORAGE_CRS, local_projected_crs, transformer
from gis.layers import LayerSpec
from gis.places import (
    assign_places,
    import_buildings,
    import_households,
    import_pois,
    unit_workload,
)
from gis.repository import Database
from gis.times import parse_time
from gis.units import import_manifest, import_units
from gis.validate import Tolerances, validate_units
from tests.conftest import CHICAGO

#: Edits a second apart may take effect just ahead of the clock: read the newest versions.
NEWEST = parse_time("2100-01-01")
SAMPLE_CITY = Path(__file__).resolve().parents[1] / "boundaries" / "licheng"
#: The sample city's street used (7 communities, 19 grids, 122 micro-grids, ~1,700 buildings).
STREET = "350502002"
_LEVELS = ("county", "street", "community", "grid", "micro_grid")


def load_city_street(db: Database, folder: Path, *, street: str = STREET) -> None:
    """Load one street of the sample city (layer ``governance``) with its places."""
    frames = {
        level: gpd.read_file(SAMPLE_CITY / "governance" / f"{level}.geojson") for level in _LEVELS
    }
    streets = frames["street"]
    outline = streets.geometry.values[list(streets["code"]).index(street)]
    keep = {"street": {street}}
    for upper, lower in itertools.pairwise(_LEVELS[1:]):
        keep[lower] = set(frames[lower]["code"][frames[lower]["parent_code"].isin(keep[upper])])
    county = frames["county"].copy()
    county["geometry"] = [outline]  # the county, as far as this layer goes
    levels = []
    for level in _LEVELS:
        frame = county if level == "county" else frames[level]
        if level != "county":
            frame = frame[frame["code"].isin(keep[level])]
        path = folder / f"{level}.geojson"
        frame.to_file(path, driver="GeoJSON")
        levels.append({"name": level, "file": path.name})
    manifest = folder / "manifest.json"
    manifest.write_text(
        json.dumps(
            {
                "crs": "EPSG:4490",
                "valid_from": "2026-01-01",
                "layers": [{"name": "governance", "levels": levels}],
            }
        ),
        encoding="utf-8",
    )
    import_manifest(db, manifest=manifest)
    places = SAMPLE_CITY / "places"
    buildings = gpd.read_parquet(places / "buildings.parquet")
    inside = buildings[buildings.geometry.covered_by(outline)]
    inside.to_parquet(folder / "buildings.parquet")
    households = pd.read_parquet(places / "households.parquet")
    households[households["building_key"].isin(set(inside["key"]))].to_parquet(
        folder / "households.parquet"
    )
    pois = gpd.read_file(places / "pois.geojson")
    pois[pois.geometry.covered_by(outline)].to_file(folder / "pois.geojson", driver="GeoJSON")
    import_buildings(db, path=folder / "buildings.parquet")
    import_households(db, path=folder / "households.parquet")
    import_pois(db, path=folder / "pois.geojson")


def load_chicago_beats(db: Database) -> None:
    """Load the Chicago police beats (layer ``police``: districts → beats), as the data has them."""
    beats = gpd.read_file(CHICAGO / "police_beats.geojson").to_crs(4490)
    beats = beats.rename(columns={"BEAT_NUM": "code", "DISTRICT": "parent_code"})
    beats["name"] = "Beat " + beats["code"]
    beats["kind"] = "comprehensive"
    beats["attributes"] = [{} for _ in range(len(beats))]
    districts = beats.dissolve(by="parent_code", as_index=False)
    districts = gpd.GeoDataFrame(
        {
            "code": districts["parent_code"],
            "name": "District " + districts["parent_code"],
            "parent_code": None,
            "kind": "comprehensive",
            "attributes": [{} for _ in range(len(districts))],
        },
        geometry=shapely.make_valid(districts.geometry.values),
        crs=4490,
    )
    import_units(
        db, units=districts, layer="police", level="station", source="chicago",
        valid_from="2026-01-01",
    )  # fmt: skip
    import_units(
        db,
        units=beats[["code", "name", "parent_code", "kind", "attributes", "geometry"]],
        layer="police",
        level="beat",
        source="chicago",
        valid_from="2026-01-01",
    )


def stored_frames(db: Database, layer: str) -> tuple[LayerSpec, dict[str, gpd.GeoDataFrame]]:
    """Return a layer's spec and the newest units of each of its levels."""
    with db.reader() as repo:
        spec = repo.layer_spec(name=layer)
        frames = {
            lv.name: repo.units_frame(layer=layer, level=lv.name, at=NEWEST) for lv in spec.levels
        }
    return spec, frames


def snapshot(db: Database, layer: str) -> dict[tuple[str, str], shapely.Geometry]:
    """Return every current unit's geometry (normalized), by level and code."""
    _, frames = stored_frames(db, layer)
    return {
        (level, str(code)): shapely.normalize(geometry)
        for level, frame in frames.items()
        for code, geometry in zip(frame["code"], frame.geometry.values, strict=True)
    }


def layer_problems(
    spec: LayerSpec, frames: dict[str, gpd.GeoDataFrame], *, tolerance_m2: float = 1.0
) -> list[str]:
    """Return every broken invariant of a layer's levels (empty when it is a valid nested layer).

    - every level: no problem from the project's validator (against its parent
      level), codes unique, every unit GEOS-valid, ``coverage_is_valid``;
    - every level below the top: its units name existing parents, the union of
      a parent's children equals the parent (every piece of their symmetric
      difference a sliver: under ``tolerance_m2`` or 5 cm wide), every parent
      has children.
    """
    present = [lv.name for lv in spec.levels if not frames[lv.name].empty]
    if not present:
        return ["the layer has no units"]
    minx, miny, maxx, maxy = frames[present[0]].geometry.total_bounds
    to_metres = transformer(STORAGE_CRS, local_projected_crs((minx + maxx) / 2, (miny + maxy) / 2))

    tolerances = Tolerances(sliver_area_m2=tolerance_m2)

    def unexplained(geometry: shapely.Geometry) -> float:
        # m² of the pieces that are not slivers (under 1 m² or 5 cm wide: the
        # project's tolerance — a unit's vertices moved onto the 1e-7° grid
        # leave millimetre slivers along its parent's unrounded edge).
        projected = shapely.transform(
            geometry, lambda xy: np.column_stack(to_metres.transform(xy[:, 0], xy[:, 1]))
        )
        pieces = [p for p in shapely.get_parts(projected) if p.geom_type == "Polygon"]
        return float(sum(p.area for p in pieces if not tolerances.is_sliver(p)))

    found: list[str] = []
    for i, level in enumerate(present):
        units = frames[level]
        parents = frames[present[i - 1]] if i else None
        report = validate_units(
            units, parents=parents, layer=spec, level=level, tolerances=Tolerances()
        )
        found += [f"{level}: {p.rule} {', '.join(p.codes)}" for p in report.problems]
        geometries = np.asarray(units.geometry.values, dtype=object)
        if not units["code"].is_unique:
            found.append(f"{level}: duplicate codes")
        if not shapely.is_valid(geometries).all():
            found.append(f"{level}: an invalid unit")
        if not shapely.coverage_is_valid(geometries):
            found.append(f"{level}: not a valid coverage")
        if parents is None:
            continue
        by_code = dict(zip(parents["code"], parents.geometry.values, strict=True))
        unknown = set(units["parent_code"]) - set(by_code)
        if unknown:
            found.append(f"{level}: unknown parents {sorted(map(str, unknown))[:5]}")
        for parent, group in units.groupby("parent_code"):
            if parent not in by_code:
                continue
            union = shapely.union_all(np.asarray(group.geometry.values, dtype=object))
            difference = unexplained(shapely.symmetric_difference(union, by_code[parent]))
            if difference > 0:
                found.append(f"{level} of {parent}: {difference:.1f} m² differ from it")
        childless = set(by_code) - set(units["parent_code"])
        if childless:
            found.append(f"{present[i - 1]} without {level}: {sorted(childless)[:5]}")
    return found


def stored_layer_problems(db: Database, layer: str) -> list[str]:
    """Return every broken invariant of ``layer`` as stored (newest versions)."""
    spec, frames = stored_frames(db, layer)
    return layer_problems(spec, frames)


def places_problems(db: Database, layer: str) -> list[str]:
    """Return how buildings and households fail to be assigned exactly once (lowest level)."""
    spec, frames = stored_frames(db, layer)
    lowest = next(lv.name for lv in reversed(spec.levels) if not frames[lv.name].empty)
    units = frames[lowest]
    with db.reader() as repo:
        buildings = repo.places.buildings_frame()
        households = repo.places.households_table()
    if buildings.empty:
        return []
    assignment = assign_places(db, layer=layer, level=lowest, at=NEWEST).frame
    found = []
    if not assignment["key"].is_unique:
        found.append("a building is assigned twice")
    if set(assignment["key"]) != set(buildings["key"]):
        found.append("a building is not assigned at all")
    if assignment["unit"].isna().any():
        found.append(f"{int(assignment['unit'].isna().sum())} building(s) outside every unit")
    geometry = dict(zip(units["code"].astype(str), units.geometry.values, strict=True))
    footprints = dict(zip(buildings["key"], buildings.geometry.values, strict=True))
    wrong = [
        key
        for key, unit in zip(assignment["key"], assignment["unit"], strict=True)
        if unit is not None
        and (str(unit) not in geometry or not geometry[str(unit)].intersects(footprints[key]))
    ]
    if wrong:
        found.append(f"buildings assigned to a unit that does not hold them: {wrong[:5]}")
    workload = unit_workload(db, layer=layer, at=NEWEST)
    by_level = workload.by_level.set_index("level")["households"]
    for level in (spec.levels[0].name, lowest):
        counted = int(by_level.get(level, 0)) + int(workload.outside.get("households", 0))
        if counted != len(households):
            found.append(f"{level}: {counted} households counted, {len(households)} stored")
    return found
