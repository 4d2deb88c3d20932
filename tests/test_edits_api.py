"""The edit API (issue 13's contract): preview, apply, refusals, stale versions, access."""

from __future__ import annotations

import shapely

from gis.access.audit import audit_log
from gis.repository import Database
from tests._client import sign_in, signed_in
from tests.fixtures_edits import line, polygon
from tests.test_edits_service import _load

_DRAWN = shapely.geometry.mapping(polygon((100, -1), (140, -1), (140, 101), (100, 101)))
_EDITS = "/api/v1/layers/test/edits"


def _transfer(**extra: object) -> dict[str, object]:
    return {"op": "transfer", "level": "grid", "geometry": _DRAWN, "to": "1003", **extra}


def test_preview_apply_history_and_revert(db: Database) -> None:
    _load(db)
    with signed_in(db, role="planner", units=["test:1"]) as client:
        preview = client.post(_EDITS, json=_transfer(dry_run=True))
        assert preview.status_code == 200, preview.text
        body = preview.json()
        assert body["changeset"] is None and body["applied"] is False and body["problems"] == []
        assert set(body["impact"]) >= {
            "buildings",
            "households",
            "persons",
            "pois",
            "moves",
            "workload",
            "alignment",
        }
        assert body["impact"]["households"] == 12
        assert {"code", "before", "after", "target_min", "target_max"} <= set(
            body["impact"]["workload"][0]
        )
        assert body["geometry"]["type"] == "FeatureCollection"
        applied = client.post(_EDITS, json=_transfer(reason="新楼盘", valid_from="2026-07-01"))
        assert applied.status_code == 200, applied.text
        changeset = applied.json()["changeset"]
        assert applied.json()["applied"] is True and isinstance(changeset, int)
        page = client.get("/api/v1/layers/test/changesets", params={"unit": "1004"}).json()
        assert page["total"] == 1 and page["changesets"][0]["reason"] == "新楼盘"
        detail = client.get(f"/api/v1/layers/test/changesets/{changeset}")
        assert detail.status_code == 200 and detail.json()["geometry"]["features"]
        undone = client.post(f"/api/v1/layers/test/changesets/{changeset}/revert")
        assert undone.status_code == 200, undone.text
        again = client.post(f"/api/v1/layers/test/changesets/{changeset}/revert")
        assert again.status_code == 409
    entries, _ = audit_log(db, action="boundaries")
    assert {e.action for e in entries} >= {"boundaries.edit", "boundaries.revert"}


def test_a_refused_edit_is_422_with_the_offending_geometry(db: Database) -> None:
    _load(db)
    with signed_in(db, role="admin") as client:
        cut = shapely.geometry.mapping(line((130, -5), (130, 105)))
        answer = client.post(
            _EDITS, json={"op": "split", "level": "grid", "units": ["1004"], "geometry": cut}
        )
        assert answer.status_code == 422, answer.text
        [problem] = answer.json()["problems"]
        assert problem["rule"] == "cuts_building" and problem["codes"][0] == "b1"
        assert (
            problem["lon"]
            and problem["lat"]
            and problem["geometry"]["type"] in ("Polygon", "MultiPolygon")
        )
        across = client.post(
            _EDITS,
            json={"op": "merge", "level": "grid", "units": ["1002", "2001"]},
        )
        assert across.status_code == 422
        assert across.json()["problems"][0]["rule"] == "crosses_parent"
        unknown = client.post(_EDITS, json={"op": "explode", "level": "grid"})
        assert unknown.status_code == 422
        missing = client.post(_EDITS, json={"op": "split", "level": "grid", "units": ["1004"]})
        assert missing.status_code == 400 and missing.json()["field"] == "geometry"


def test_a_stale_etag_is_412_naming_the_unit(db: Database) -> None:
    _load(db)
    with signed_in(db, role="admin") as client:
        first = client.post(_EDITS, json=_transfer(dry_run=True)).json()
        seen = first["etags"]["1004"]
        client.post(_EDITS, json={"op": "merge", "level": "grid", "units": ["1003", "1004"]})
        stale = client.post(_EDITS, json=_transfer(), headers={"If-Match": seen})
        assert stale.status_code == 412, stale.text
        assert "1004" in stale.json()["codes"]


def test_a_malformed_if_match_is_400_naming_the_header_and_star_matches(db: Database) -> None:
    _load(db)
    with signed_in(db, role="admin") as client:
        for garbage in ("garbage", '"no-at-sign"', '"1004@"', 'W/"@2026-01-01"'):
            bad = client.post(_EDITS, json=_transfer(dry_run=True), headers={"If-Match": garbage})
            assert bad.status_code == 400, (garbage, bad.text)
            assert bad.json()["field"] == "If-Match"
        seen = client.post(_EDITS, json=_transfer(dry_run=True)).json()["etags"]["1004"]
        weak = client.post(_EDITS, json=_transfer(dry_run=True), headers={"If-Match": f"W/{seen}"})
        assert weak.status_code == 200, weak.text
        star = client.post(_EDITS, json=_transfer(dry_run=True), headers={"If-Match": "*"})
        assert star.status_code == 200, star.text


def test_only_planners_in_their_jurisdiction_may_edit(db: Database) -> None:
    _load(db)
    with signed_in(db, role="planner", units=["test:2"]) as client:
        elsewhere = client.post(_EDITS, json=_transfer(dry_run=True))
        assert elsewhere.status_code == 404
        worker = sign_in(client, db, role="grid_worker", units=["test:1"])
        forbidden = client.post(_EDITS, json=_transfer(dry_run=True), headers=worker)
        assert forbidden.status_code == 403
    with signed_in(db, role="planner", units=["test:1"]) as client:
        changeset = client.post(_EDITS, json=_transfer()).json()["changeset"]
        other = sign_in(client, db, role="planner", units=["test:2"])
        hidden = client.get(f"/api/v1/layers/test/changesets/{changeset}", headers=other)
        assert hidden.status_code == 404
        listed = client.get("/api/v1/layers/test/changesets", headers=other).json()
        assert listed["total"] == 0


def test_a_planner_still_lists_a_change_set_whose_units_were_all_retired_since(
    db: Database,
) -> None:
    # 1002002 merged into 1002001, then grid 1002 merged into 1001: every unit
    # of the first change set (and its grid) is retired, yet it is the
    # planner's history; a planner of the other community still does not see it.
    _load(db)
    with signed_in(db, role="planner", units=["test:1"]) as client:
        # Effective in the past: an edit effective now is seen a second later.
        micro = {"op": "merge", "level": "micro_grid", "units": ["1002001", "1002002"]}
        micro["valid_from"] = "2026-07-01"
        first = client.post(_EDITS, json=micro).json()["changeset"]
        grids = {"op": "merge", "level": "grid", "units": ["1001", "1002"]}
        grids["valid_from"] = "2026-08-01"
        second = client.post(_EDITS, json=grids).json()["changeset"]
    # A new server: its jurisdictions are resolved over the units valid now.
    with signed_in(db, role="planner", units=["test:1"]) as client:
        listed = client.get("/api/v1/layers/test/changesets").json()
        assert [c["id"] for c in listed["changesets"]] == [second, first]
        by_unit = client.get("/api/v1/layers/test/changesets", params={"unit": "1002002"})
        assert [c["id"] for c in by_unit.json()["changesets"]] == [first]
        assert client.get(f"/api/v1/layers/test/changesets/{first}").status_code == 200
        other = sign_in(client, db, role="planner", units=["test:2"])
        assert client.get("/api/v1/layers/test/changesets", headers=other).json()["total"] == 0


def test_a_split_that_only_adds_a_vertex_to_a_neighbour_outside_the_jurisdiction_is_allowed(
    db: Database,
) -> None:
    # Splitting grid 1002 along y=125 ends the cut on the edge it shares with
    # grid 2001 (community 2), which has no vertex there: noding gives 2001
    # (and its micro-grid 2001001) that vertex so the shared edge stays
    # identical. Its ground does not change, so a planner of community 1 may
    # make the split; moving ground of 2001 stays refused.
    _load(db)
    cut = shapely.geometry.mapping(line((100, 125), (200, 125)))
    with signed_in(db, role="planner", units=["test:1"]) as client:
        split = {"op": "split", "level": "grid", "units": ["1002"], "geometry": cut}
        preview = client.post(_EDITS, json={**split, "dry_run": True})
        assert preview.status_code == 200, preview.text
        assert "2001" not in preview.json()["retired"]
        applied = client.post(_EDITS, json=split)
        assert applied.status_code == 200, applied.text
        with db.reader() as repo:
            neighbour = repo.units_frame(layer="test", level="grid").set_index("code")
        assert neighbour.loc["2001"].geometry.area > 0
    # A planner of grid 1001 alone may not take ground from its sibling 1002.
    grab = shapely.geometry.mapping(polygon((90, 150), (130, 150), (130, 190), (90, 190)))
    with signed_in(db, role="planner", units=["test:1001"]) as client:
        taken = client.post(
            _EDITS,
            json={
                "op": "transfer",
                "level": "grid",
                "geometry": grab,
                "to": "1001",
                "dry_run": True,
            },
        )
        assert taken.status_code == 403, taken.text
        assert "1002" not in taken.text  # a unit outside the jurisdiction is not named
