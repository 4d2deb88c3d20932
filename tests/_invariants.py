"""The invariants every boundary change must keep, checked on what is stored.

- every level of the layer is a valid polygonal coverage (GEOS
  ``coverage_is_valid``: no overlap, shared edges bit-identical);
- every unit lies in its parent and the children of a parent cover it
  (to 1 m²), and a parent has children once its level below has any;
- every building is assigned exactly once, and the households the top level
  counts plus those in buildings outside every unit are all households.
"""

from __future__ import annotations

import itertools

import numpy as np
import shapely

from gis.crs import STORAGE_CRS, local_projected_crs, transformer
from gis.places import assign_places, unit_workload
from gis.repository import Database

TOLERANCE_M2 = 1.0


def assert_layer_consistent(db: Database, layer: str, *, places: bool = True) -> None:
    """Fail with the first broken invariant of ``layer`` as it stands now."""
    with db.reader() as repo:
        spec = repo.layer_spec(name=layer)
        frames = {lv.name: repo.units_frame(layer=layer, level=lv.name) for lv in spec.levels}
    present = [lv.name for lv in spec.levels if not frames[lv.name].empty]
    assert present, f"{layer} has no units"
    minx, miny, maxx, maxy = frames[present[0]].geometry.total_bounds
    to_metres = transformer(STORAGE_CRS, local_projected_crs((minx + maxx) / 2, (miny + maxy) / 2))

    def area(geometry: shapely.Geometry) -> float:
        projected = shapely.transform(
            geometry, lambda xy: np.column_stack(to_metres.transform(xy[:, 0], xy[:, 1]))
        )
        return float(shapely.area(projected))

    for upper, lower in itertools.pairwise(present):
        units = frames[lower]
        geometries = units.geometry.values
        assert shapely.coverage_is_valid(geometries), f"{layer}:{lower} is not a valid coverage"
        parents = dict(zip(frames[upper]["code"], frames[upper].geometry.values, strict=True))
        assert set(units["parent_code"]) <= set(parents), f"{layer}:{lower} has unknown parents"
        for parent, group in units.groupby("parent_code"):
            covered = shapely.union_all(group.geometry.values)
            outside = area(shapely.difference(covered, parents[parent]))
            bare = area(shapely.difference(parents[parent], covered))
            assert outside <= TOLERANCE_M2, f"{lower} of {parent} lie {outside:.1f} m² outside it"
            assert bare <= TOLERANCE_M2, f"{bare:.1f} m² of {parent} has no {lower}"
        childless = set(parents) - set(units["parent_code"])
        assert not childless, f"{upper} units without {lower}: {sorted(childless)[:5]}"
    top = frames[present[0]]
    assert shapely.coverage_is_valid(top.geometry.values), f"{layer}:{present[0]} not a coverage"
    if not places:
        return
    assignment = assign_places(db, layer=layer, level=present[-1]).frame
    keys = assignment["key"]
    assert keys.is_unique, "a building is assigned twice"
    with db.reader() as repo:
        stored = repo.places.buildings_frame()
        households = repo.places.households_table()
    assert set(keys) == set(stored["key"]), "a building is not assigned at all"
    workload = unit_workload(db, layer=layer)
    counted = workload.by_level.set_index("level").loc[present[0], "households"]
    outside = workload.outside.get("households", 0)
    assert counted + outside == len(households), (
        f"{counted} + {outside} households counted, {len(households)} stored"
    )
