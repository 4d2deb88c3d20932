"""Stateful property: random edits through the HTTP API keep every layer a valid nested coverage.

A hypothesis state machine signs in as a planner (a real user, a real token)
and posts random operations — transfer, split, merge, retire, carve, reshape
and (where there are buildings to balance) auto_split — to
``POST /api/v1/layers/{layer}/edits`` on two real layers, in both databases:

- one street of the sample city (county → street → community → grid →
  micro-grid, with its buildings, households and POIs), edits at the
  community, grid and micro-grid levels;
- the Chicago police beats under their districts (``../shared/data``).

After every applied change set every level of the layer is a valid nested
coverage — checked with the project's own validator and independently with
GEOS (``coverage_is_valid``, the union of a parent's children against the
parent) — and every building and household is assigned exactly once. A
refused edit is a 422 whose problems each carry a rule an edit may
legitimately break and the offending geometry, and writes nothing. At the
end of each run every change set is reverted through the API, newest first,
and every unit's geometry must be the original exactly (``equals_exact``
with tolerance 0, empty symmetric difference).

The checker itself is tested on deliberately broken coverages (overlap,
gap, a child outside its parent, a parent not covered), so that these
checks can fail.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pytest
import shapely
import shapely.affinity
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, Phase, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    precondition,
    rule,
    run_state_machine_as_test,
)

from gis.edits.service import changeset_history
from gis.repository import Database
from tests._client import signed_in
from tests.fixtures_edits import tiny_layer
from tests.fixtures_stateful import (
    STREET,
    layer_problems,
    load_chicago_beats,
    load_city_street,
    places_problems,
    snapshot,
    stored_frames,
    stored_layer_problems,
)

_METRES_PER_DEGREE = 111_320.0
#: The rules a random edit may legitimately break (anything else is a bug).
_LEGITIMATE = {
    "crosses_parent",
    "cuts_building",
    "not_adjacent",
    "no_change",
    "split_failed",
    "line_not_reaching_boundary",
    "children_not_nested",
}
_SETTINGS = settings(
    max_examples=2,
    stateful_step_count=7,  # every operation once (see _fresh)
    deadline=None,
    derandomize=True,
    # A step edits a stored layer: shrinking a failure would take hours; the
    # failing steps are printed as they are.
    phases=[Phase.explicit, Phase.reuse, Phase.generate],
    suppress_health_check=list(HealthCheck),
)


@dataclass(frozen=True)
class Dataset:
    """A layer to edit and which operations apply to it where."""

    layer: str
    levels: tuple[str, ...]  # levels edits are made at
    carve_level: str
    auto_split_level: str | None  # None: no buildings to balance
    places: bool


CITY = Dataset(
    layer="governance",
    levels=("community", "grid", "micro_grid"),
    carve_level="grid",
    auto_split_level="grid",
    places=True,
)
CHICAGO_BEATS = Dataset(
    layer="police", levels=("station", "beat"), carve_level="beat", auto_split_level=None,
    places=False,
)  # fmt: skip


_OPERATIONS = ("transfer", "split", "merge", "retire", "carve", "reshape", "auto_split")


def _fresh(op: str) -> Callable[[Any], bool]:
    """Precondition: each sequence runs every operation once before any runs twice.

    A handful of steps then covers them all (drawn in an order of hypothesis'
    choosing), instead of the same two or three.
    """

    def check(machine: Any) -> bool:
        if op not in machine.operations:
            return False  # auto_split on a layer without buildings
        return op not in machine.done or machine.done >= set(machine.operations)

    return check


class _Edits(RuleBasedStateMachine):
    """The state machine; :func:`_machine` binds it to a client, a database and a layer."""

    client: TestClient
    db: Database
    dataset: Dataset
    original: dict[tuple[str, str], shapely.Geometry]
    edits: str
    changesets: str
    operations: tuple[str, ...]

    def __init__(self) -> None:
        super().__init__()
        # Every run starts from the original layer (the last one reverted all).
        assert _same(snapshot(self.db, self.dataset.layer), self.original)
        self.applied: list[int] = []
        self.done: set[str] = set()  # operations run in this sequence
        self.stored = self._stored()

    def _stored(self) -> int:
        # Every change set of the layer (a planner's list shows those touching
        # units valid now: not one whose units all were retired since).
        return changeset_history(self.db, layer=self.dataset.layer, limit=1)[1]

    # -- drawing helpers ---------------------------------------------------------

    def _frame(self, level: str) -> gpd.GeoDataFrame:
        _, frames = stored_frames(self.db, self.dataset.layer)
        return frames[level].reset_index(drop=True)

    def _pick(self, data: st.DataObject, level: str) -> tuple[gpd.GeoDataFrame, str]:
        frame = self._frame(level)
        code = data.draw(st.sampled_from(sorted(frame["code"].astype(str))), label="unit")
        return frame, code

    def _options(self, data: st.DataObject) -> dict[str, Any]:
        return {
            # cascade "merge" is left out: it can leave a child empty (a
            # known bug of the cascade, refused as invalid_geometry by the import).
            "cascade": "new",
            "force": data.draw(st.booleans(), label="force"),
        }

    # -- sending and checking ----------------------------------------------------

    def _post(self, body: dict[str, Any]) -> None:
        answer = self.client.post(self.edits, json=body)
        if answer.status_code == 422:
            problems = answer.json().get("problems")
            assert problems, answer.text  # a refused edit says why, with geometry
            for problem in problems:
                assert problem["rule"] in _LEGITIMATE, problem
                assert problem["geometry"] and problem["geometry"]["type"], problem
                assert isinstance(problem["codes"], list) and problem["message"], problem
            assert self._stored() == self.stored  # nothing stored
            return
        assert answer.status_code == 200, f"{body['op']}: {answer.status_code} {answer.text}"
        result = answer.json()
        assert result["applied"] is True and isinstance(result["changeset"], int)
        assert result["created"] or result["changed"] or result["retired"]
        self.applied.append(result["changeset"])
        self.stored += 1
        problems = stored_layer_problems(self.db, self.dataset.layer)
        assert not problems, f"after {body['op']}: {problems[:10]}"
        if self.dataset.places:
            missing = places_problems(self.db, self.dataset.layer)
            assert not missing, f"after {body['op']}: {missing}"

    # -- operations ----------------------------------------------------------------

    @precondition(_fresh("transfer"))
    @rule(data=st.data())
    def transfer(self, data: st.DataObject) -> None:
        self.done.add("transfer")
        level = data.draw(st.sampled_from(self.dataset.levels), label="level")
        frame, code = self._pick(data, level)
        neighbours = _neighbours(frame, code)
        if not neighbours:
            return
        other = data.draw(st.sampled_from(neighbours), label="to")
        border = _border(frame, code, other)
        where = shapely.line_interpolate_point(
            border, data.draw(st.floats(0.1, 0.9), label="along"), normalized=True
        )
        metres = data.draw(st.floats(5.0, 40.0), label="radius_m")
        drawn = shapely.buffer(where, metres / _METRES_PER_DEGREE, quad_segs=4)
        self._post(
            {"op": "transfer", "level": level, "geometry": _json(drawn), "to": other}
            | self._options(data)
        )

    def _pick_with_neighbours(
        self, data: st.DataObject, op: str
    ) -> tuple[str, gpd.GeoDataFrame, str, list[str]] | None:
        """Mark ``op`` tried; draw a level and a unit; ``None`` when it has no neighbour."""
        self.done.add(op)
        level = data.draw(st.sampled_from(self.dataset.levels), label="level")
        frame, code = self._pick(data, level)
        neighbours = _neighbours(frame, code)
        return (level, frame, code, neighbours) if neighbours else None

    @precondition(_fresh("split"))
    @rule(data=st.data())
    def split(self, data: st.DataObject) -> None:
        self.done.add("split")
        level = data.draw(st.sampled_from(self.dataset.levels), label="level")
        frame, code = self._pick(data, level)
        geometry = _geometry(frame, code)
        angle = data.draw(st.floats(0, np.pi), label="angle")
        centre = shapely.point_on_surface(geometry)
        minx, miny, maxx, maxy = geometry.bounds
        reach = 2 * max(maxx - minx, maxy - miny)
        dx, dy = reach * np.cos(angle), reach * np.sin(angle)
        cut = shapely.LineString([(centre.x - dx, centre.y - dy), (centre.x + dx, centre.y + dy)])
        self._post(
            {"op": "split", "level": level, "units": [code], "geometry": _json(cut)}
            | self._options(data)
        )

    @precondition(_fresh("merge"))
    @rule(data=st.data())
    def merge(self, data: st.DataObject) -> None:
        picked = self._pick_with_neighbours(data, "merge")
        if picked is None:
            return
        level, _, code, neighbours = picked
        other = data.draw(st.sampled_from(neighbours), label="with")
        self._post({"op": "merge", "level": level, "units": [code, other]} | self._options(data))

    @precondition(_fresh("retire"))
    @rule(data=st.data())
    def retire(self, data: st.DataObject) -> None:
        picked = self._pick_with_neighbours(data, "retire")
        if picked is None:
            return
        level, _, code, neighbours = picked
        self._post(
            {"op": "retire", "level": level, "units": [code], "to": neighbours}
            | self._options(data)
        )

    @precondition(_fresh("carve"))
    @rule(data=st.data())
    def carve(self, data: st.DataObject) -> None:
        self.done.add("carve")
        frame, code = self._pick(data, self.dataset.carve_level)
        centre = shapely.point_on_surface(_geometry(frame, code))
        metres = data.draw(st.floats(10.0, 40.0), label="half_side_m")
        r = metres / _METRES_PER_DEGREE
        square = shapely.box(centre.x - r, centre.y - r, centre.x + r, centre.y + r)
        self._post(
            {
                "op": "carve",
                "level": self.dataset.carve_level,
                "geometry": _json(square),
                "name": "专属网格 dedicated",
            }
            | self._options(data)
        )

    @precondition(_fresh("reshape"))
    @rule(data=st.data())
    def reshape(self, data: st.DataObject) -> None:
        picked = self._pick_with_neighbours(data, "reshape")
        if picked is None:
            return
        level, frame, code, neighbours = picked
        other = data.draw(st.sampled_from(neighbours), label="with")
        border = _border(frame, code, other)
        if border.geom_type != "LineString" or border.is_closed:
            return  # not one edge from boundary to boundary: no reshape to draw
        start, end = np.asarray(border.coords[0]), np.asarray(border.coords[-1])
        middle = np.asarray(shapely.line_interpolate_point(border, 0.5, normalized=True).coords[0])
        normal = np.array([start[1] - end[1], end[0] - start[0]])
        length = float(np.hypot(*normal))
        if length == 0:
            return
        metres = data.draw(st.floats(-20.0, 20.0), label="bulge_m")
        bent = middle + normal / length * metres / _METRES_PER_DEGREE
        line = shapely.LineString([start, bent, end])
        self._post(
            {"op": "reshape", "level": level, "units": [code, other], "geometry": _json(line)}
            | self._options(data)
        )

    @precondition(_fresh("auto_split"))
    @rule(data=st.data())
    def auto_split(self, data: st.DataObject) -> None:
        self.done.add("auto_split")
        assert self.dataset.auto_split_level is not None  # (see _fresh)
        _, code = self._pick(data, self.dataset.auto_split_level)
        parts = data.draw(st.integers(2, 4), label="parts")
        self._post(
            {
                "op": "auto_split",
                "level": self.dataset.auto_split_level,
                "units": [code],
                "parts": parts,
            }
        )

    def teardown(self) -> None:
        for changeset in reversed(self.applied):
            undone = self.client.post(f"{self.changesets}/{changeset}/revert")
            assert undone.status_code == 200, undone.text
        restored = snapshot(self.db, self.dataset.layer)
        assert _same(restored, self.original), sorted(
            key
            for key in set(restored) | set(self.original)
            if not _same_unit(restored, self.original, key)
        )[:10]
        assert not stored_layer_problems(self.db, self.dataset.layer)


def _machine(client: TestClient, db: Database, dataset: Dataset) -> type[RuleBasedStateMachine]:
    return type(
        "Edits",
        (_Edits,),
        {
            "client": client,
            "db": db,
            "dataset": dataset,
            "original": snapshot(db, dataset.layer),
            "edits": f"/api/v1/layers/{dataset.layer}/edits",
            "changesets": f"/api/v1/layers/{dataset.layer}/changesets",
            "operations": tuple(
                op for op in _OPERATIONS if op != "auto_split" or dataset.auto_split_level
            ),
        },
    )


def _same(
    a: dict[tuple[str, str], shapely.Geometry], b: dict[tuple[str, str], shapely.Geometry]
) -> bool:
    return a.keys() == b.keys() and all(_same_unit(a, b, key) for key in a)


def _same_unit(
    a: dict[tuple[str, str], shapely.Geometry],
    b: dict[tuple[str, str], shapely.Geometry],
    key: tuple[str, str],
) -> bool:
    if key not in a or key not in b:
        return False
    return bool(
        a[key].equals_exact(b[key], 0.0) and shapely.symmetric_difference(a[key], b[key]).is_empty
    )


def _geometry(frame: gpd.GeoDataFrame, code: str) -> shapely.Geometry:
    return frame.geometry.values[list(frame["code"].astype(str)).index(code)]


def _neighbours(frame: gpd.GeoDataFrame, code: str) -> list[str]:
    """Units of the same parent sharing a border (not only a corner) with ``code``."""
    row = list(frame["code"].astype(str)).index(code)
    geometry = frame.geometry.values[row]
    parent = frame["parent_code"].iloc[row]
    near = frame.iloc[frame.sindex.query(geometry, predicate="intersects")]
    shared = shapely.length(shapely.intersection(near.geometry.values, geometry.boundary))
    same_parent = near["parent_code"].isna() if parent is None else near["parent_code"] == parent
    keep = (shared > 1e-6) & (near["code"].astype(str) != code).to_numpy() & same_parent.to_numpy()
    return sorted(near["code"].astype(str)[keep])


def _border(frame: gpd.GeoDataFrame, a: str, b: str) -> shapely.Geometry:
    shared = shapely.intersection(_geometry(frame, a).boundary, _geometry(frame, b).boundary)
    lines = [
        p for p in shapely.get_parts(shared) if p.geom_type in ("LineString", "MultiLineString")
    ]
    return shapely.line_merge(shapely.union_all(lines))


def _json(geometry: shapely.Geometry) -> dict[str, Any]:
    return dict(shapely.geometry.mapping(shapely.set_precision(geometry, 1e-7)))


def _run(client: TestClient, db: Database, dataset: Dataset) -> None:
    run_state_machine_as_test(_machine(client, db, dataset), settings=_SETTINGS)


#: These runs found (and now guard) two faults of the edit pipeline: a split
#: whose cascade left a new child empty on the precision grid (refused with a
#: validation report instead of located problems), and a GEOS "incorrectly
#: noded" error from the coverage union of a valid coverage (a 500).


@pytest.mark.slow
def test_random_api_edits_on_a_sample_city_street(db: Database, tmp_path: Path) -> None:
    load_city_street(db, tmp_path)
    assert not stored_layer_problems(db, "governance") and not places_problems(db, "governance")
    with signed_in(db, role="planner", units=[f"governance:{STREET}"]) as client:
        _run(client, db, CITY)


@pytest.mark.slow
def test_random_api_edits_on_the_chicago_beats(db: Database, chicago: Path) -> None:
    load_chicago_beats(db)
    assert not stored_layer_problems(db, "police")
    _, frames = stored_frames(db, "police")
    districts = [f"police:{c}" for c in sorted(frames["station"]["code"])]
    with signed_in(db, role="planner", units=districts) as client:
        _run(client, db, CHICAGO_BEATS)


# -- the checker can fail ------------------------------------------------------------


def _tiny() -> tuple[Any, dict[str, gpd.GeoDataFrame]]:
    state = tiny_layer()
    return state.spec, {lv.name: state.frame(lv.name).copy() for lv in state.spec.levels}


def _replace(frame: gpd.GeoDataFrame, code: str, geometry: shapely.Geometry) -> None:
    frame.loc[frame["code"] == code, "geometry"] = shapely.MultiPolygon(
        [geometry] if geometry.geom_type == "Polygon" else list(geometry.geoms)
    )


def test_the_checker_passes_the_intact_layer() -> None:
    spec, frames = _tiny()
    assert layer_problems(spec, frames) == []


def test_the_checker_finds_an_overlap() -> None:
    spec, frames = _tiny()
    grids = frames["grid"]
    neighbour = _geometry(grids, "1004")
    _replace(grids, "1003", shapely.union(_geometry(grids, "1003"), neighbour.buffer(-1e-5)))
    found = layer_problems(spec, frames)
    assert any("grid" in p and ("overlap" in p or "coverage" in p) for p in found), found


def test_the_checker_finds_a_gap() -> None:
    spec, frames = _tiny()
    micro = frames["micro_grid"]
    hole = shapely.box(*_geometry(micro, "1004001").centroid.buffer(5e-5).bounds)
    _replace(micro, "1004001", shapely.difference(_geometry(micro, "1004001"), hole))
    found = layer_problems(spec, frames)
    assert any(p.startswith("micro_grid") and "differ" in p for p in found), found
    assert any("gap" in p for p in found), found


def test_the_checker_finds_a_child_outside_its_parent_and_a_parent_without_children() -> None:
    spec, frames = _tiny()
    micro = frames["micro_grid"]
    micro.loc[micro["code"] == "1004001", "parent_code"] = "1003"  # lies in 1004's ground
    found = layer_problems(spec, frames)
    assert any("of 1003" in p for p in found) and any("of 1004" in p for p in found), found
    frames["micro_grid"] = micro[micro["parent_code"] != "2001"]
    assert any("without micro_grid" in p for p in layer_problems(spec, frames))


def test_the_checker_finds_an_unnoded_shared_edge() -> None:
    """Neighbours that meet without sharing vertices are no valid GEOS coverage."""
    spec, frames = _tiny()
    grids = frames["grid"]
    shape = _geometry(grids, "1003")
    # A vertex added on 1003's side of its edge with 1004 only (no ground moves).
    ring = np.asarray(shape.geoms[0].exterior.coords)
    east = ring[:, 0].max()
    on_edge = [i for i in range(len(ring) - 1) if ring[i, 0] == east and ring[i + 1, 0] == east]
    i = on_edge[0]
    extra = (ring[i] + ring[i + 1]) / 2
    _replace(grids, "1003", shapely.Polygon(np.insert(ring, i + 1, extra, axis=0)))
    found = layer_problems(spec, frames)
    assert "grid: not a valid coverage" in found, found


def test_the_places_check_finds_a_building_outside_every_unit(db: Database, tmp_path: Path) -> None:
    from tests.test_edits_service import _load

    _load(db)
    assert places_problems(db, "test") == []
    with db.transaction() as repo:
        frame = repo.places.buildings_frame()
        far = frame.copy()
        far["key"] = "far"
        far["geometry"] = [shapely.affinity.translate(g, 1.0, 1.0) for g in far.geometry.values]
        columns = ["key", "address", "floors", "use", "entrance_lon", "entrance_lat", "attributes"]
        repo.places.upsert_buildings(far[[*columns, "geometry"]])
    found = places_problems(db, "test")
    assert any("outside every unit" in p for p in found), found
