"""What the web map's panels ask for: unit search, other layers over a unit, applying a fix.

Search and overlaps run on both dialects; applying a same-grid proposal on
the sample city (SQLite copy), through the HTTP API with real tokens.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from gis.repository import Database
from gis.units import units_page
from tests._client import sign_in, signed_in
from tests.fixtures_access import (
    BEAT_X,
    BEAT_Y,
    COMMUNITY,
    GRID_A,
    GRID_B,
    MICRO_A,
    STATION,
    load_two_grids,
)
from tests.fixtures_governance import load_governance


def _codes(db: Database, search: str) -> list[str]:
    frame, total = units_page(db, layer="governance", search=search, limit=100)
    assert total == len(frame)
    return list(frame["code"])


def test_units_search_by_code_prefix_or_name(db: Database) -> None:
    load_governance(db)
    assert _codes(db, "350502001") == ["350502001", "350502001001", "350502001002"]
    # Names are 单元 + the code's last three digits (fixtures_governance.frame).
    assert _codes(db, "单元002") == ["350502002", "350502001002", "350502002002"]
    assert _codes(db, " 单元002 ") == _codes(db, "单元002")  # what a search box sends
    assert _codes(db, "50502") == []  # a code matches from its start only
    # LIKE wildcards typed by a user are plain characters.
    assert _codes(db, "%") == [] and _codes(db, "_") == [] and _codes(db, "3505%1") == []


def test_units_search_is_cut_to_the_jurisdiction(db: Database, tmp_path: Path) -> None:
    load_two_grids(db, tmp_path)
    with signed_in(db, role="grid_worker", units=[f"governance:{GRID_A}"]) as client:
        mine = client.get("/api/v1/layers/governance/units", params={"q": COMMUNITY})
        assert mine.status_code == 200
        codes = [f["properties"]["code"] for f in mine.json()["features"]]
        assert codes and all(c.startswith(GRID_A) for c in codes)
        assert mine.json()["numberMatched"] == len(codes)
        assert (
            client.get("/api/v1/layers/governance/units", params={"q": "乙"}).json()["features"]
            == []
        )
        too_long = client.get("/api/v1/layers/governance/units", params={"q": "1" * 65})
        assert too_long.status_code == 422 and "q" in too_long.text


def test_overlaps_name_the_other_layers_units_and_their_shares(
    db: Database, tmp_path: Path
) -> None:
    load_two_grids(db, tmp_path)
    with signed_in(db, role="admin") as client:
        answer = client.get(f"/api/v1/units/{COMMUNITY}/overlaps", params={"layer": "governance"})
        assert answer.status_code == 200, answer.text
        body = answer.json()
        shares = {(o["level"], o["code"]): o["share"] for o in body["overlaps"]}
        # The community is 118.50-118.55: beat X holds its west half, beat Y its east half.
        assert shares == {("station", STATION): 1.0, ("beat", BEAT_X): 0.5, ("beat", BEAT_Y): 0.5}
        assert body["area_m2"] == pytest.approx(
            sum(o["area_m2"] for o in body["overlaps"] if o["level"] == "beat"), rel=1e-3
        )
        grid = client.get(f"/api/v1/units/{GRID_A}/overlaps").json()
        # Beat Y only touches grid A: a shared edge is no overlap.
        assert {o["code"]: o["share"] for o in grid["overlaps"]} == {STATION: 1.0, BEAT_X: 1.0}
    with signed_in(db, role="grid_worker", units=[f"governance:{GRID_A}"]) as client:
        mine = client.get(f"/api/v1/units/{GRID_A}/overlaps").json()
        assert {o["code"] for o in mine["overlaps"]} == {STATION, BEAT_X}
        hidden = client.get(f"/api/v1/units/{GRID_B}/overlaps")
        missing = client.get("/api/v1/units/350502001001009/overlaps")
        assert hidden.status_code == missing.status_code == 404
        # B answers like a unit that does not exist (the code asked for is echoed).
        assert hidden.text.replace(GRID_B, "?") == missing.text.replace("350502001001009", "?")


def test_applying_a_proposal_is_for_an_administrator_of_the_whole_city(
    city_db: Database,
) -> None:
    reviewed = {"layer_a": "governance:grid", "layer_b": "police:beat"}
    today = date.today().isoformat()
    with signed_in(city_db, role="admin") as admin:
        report = admin.get("/api/v1/alignment", params={"proposal": "true"}).json()
        assert not report["aligned"]
        moves = [m["a_code"] for m in report["proposal"]["moves"]]
        assert moves
        body = {**reviewed, "valid_from": today, "moves": moves}
        planner = sign_in(admin, city_db, role="planner", units=["governance:350502"])
        refused = admin.post("/api/v1/alignment/apply", json=body, headers=planner)
        assert refused.status_code == 403 and "alignment:apply" in refused.text
        stale = admin.post("/api/v1/alignment/apply", json={**body, "moves": moves[1:]})
        assert stale.status_code == 412 and moves[0] in stale.text
        assert admin.get("/api/v1/alignment").json()["counts"] == report["counts"]  # unchanged
        unknown = admin.post("/api/v1/alignment/apply", json={**body, "extra": 1})
        assert unknown.status_code == 422
        applied = admin.post("/api/v1/alignment/apply", json=body)
        assert applied.status_code == 200, applied.text
        assert applied.json()["applied"] and applied.json()["imports"]
        after = admin.get("/api/v1/alignment").json()
        assert after["aligned"] and after["violations"] == []
        again = admin.post("/api/v1/alignment/apply", json=body)
        assert again.status_code == 400 and "nothing to apply" in again.text


def test_a_planner_reverts_a_merge_of_units_in_their_jurisdiction(
    db: Database, tmp_path: Path
) -> None:
    load_two_grids(db, tmp_path)
    with signed_in(db, role="admin") as admin:
        merged = admin.post(
            "/api/v1/layers/governance/edits",
            json={"op": "merge", "level": "micro_grid", "units": list(MICRO_A)},
        )
        assert merged.status_code == 200, merged.text
        assert merged.json()["retired"]  # one micro-grid is gone: in no jurisdiction now
        changeset = merged.json()["changeset"]
        path = f"/api/v1/layers/governance/changesets/{changeset}"
        # Grid B's planner: the change set is none of theirs (as if it did not exist).
        other = sign_in(admin, db, role="planner", units=[f"governance:{GRID_B}"])
        assert admin.get(path, headers=other).status_code == 404
        assert admin.post(f"{path}/revert", headers=other).status_code == 404
        # Grid A's planner sees it and reverts it: the retired micro-grid was under A.
        mine = sign_in(admin, db, role="planner", units=[f"governance:{GRID_A}"])
        assert admin.get(path, headers=mine).status_code == 200
        reverted = admin.post(f"{path}/revert", headers=mine)
        assert reverted.status_code == 200, reverted.text
        children = admin.get(f"/api/v1/units/{GRID_A}").json()["children"]
        assert {c["code"] for c in children} == set(MICRO_A)
