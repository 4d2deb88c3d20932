"""Draft change sets, both databases: saved without applying, applied later unless stale, discarded.

On the tiny hand-drawn layer (tests/fixtures_edits.py), through the API with
real sign-in: a draft writes no unit version; applying it writes exactly
what was computed (same id, status ``applied``), unless a unit under it
changed since (412 naming it); discarding keeps it in the history; only
planners and administrators inside their jurisdiction may do either.
"""

from __future__ import annotations

import shapely

from gis.access.audit import audit_log
from gis.repository import Database
from gis.times import parse_time
from tests._client import sign_in, signed_in
from tests.fixtures_edits import line, polygon
from tests.test_edits_service import _geometries, _load

_EDITS = "/api/v1/layers/test/edits"
_SETS = "/api/v1/layers/test/changesets"
_LATEST = parse_time("2100-01-01")  # edits a second apart may start just ahead of the clock


def _transfer(x: float, to: str, **extra: object) -> dict[str, object]:
    drawn = polygon((x, -1), (x + 40, -1), (x + 40, 101), (x, 101))
    return {
        "op": "transfer",
        "level": "grid",
        "geometry": shapely.geometry.mapping(drawn),
        "to": to,
        **extra,
    }


def test_a_draft_writes_nothing_until_applied_then_exactly_what_was_previewed(
    db: Database,
) -> None:
    _load(db)
    original = _geometries(db, at=_LATEST)
    with signed_in(db, role="planner", units=["test:1"]) as client:
        saved = client.post(_EDITS, json=_transfer(100, "1003", draft=True, reason="草稿"))
        assert saved.status_code == 200, saved.text
        body = saved.json()
        draft = body["changeset"]
        assert isinstance(draft, int) and body["applied"] is False and body["status"] == "draft"
        assert body["impact"]["households"] == 12  # the preview comes with it
        assert _geometries(db, at=_LATEST) == original  # nothing written
        listed = client.get(_SETS, params={"status": "draft"}).json()
        assert [c["id"] for c in listed["changesets"]] == [draft]
        assert listed["changesets"][0]["status"] == "draft"
        assert client.get(_SETS, params={"status": "applied"}).json()["total"] == 0
        assert client.post(f"{_SETS}/{draft}/revert").status_code == 409  # nothing to revert

        applied = client.post(f"{_SETS}/{draft}/apply")
        assert applied.status_code == 200, applied.text
        assert applied.json()["changeset"] == draft and applied.json()["applied"] is True
        now = _geometries(db, at=_LATEST)
        detail = client.get(f"{_SETS}/{draft}").json()
        assert detail["status"] == "applied"
        after = {
            f["properties"]["code"]: shapely.normalize(shapely.geometry.shape(f["geometry"]))
            for f in detail["geometry"]["features"]
            if f["properties"]["side"] == "after"
        }
        assert after and all(now[c].equals_exact(after[c], 0.0) for c in after)
        assert now["1003"] != original["1003"]
        assert client.post(f"{_SETS}/{draft}/apply").status_code == 409  # applied already
        assert client.delete(f"{_SETS}/{draft}").status_code == 409  # not a draft any more

        undone = client.post(f"{_SETS}/{draft}/revert")
        assert undone.status_code == 200, undone.text
        assert client.get(f"{_SETS}/{draft}").json()["status"] == "reverted"
    restored = _geometries(db, at=_LATEST)
    assert all(restored[c].equals_exact(original[c], 0.0) for c in original)
    actions = [e.action for e in audit_log(db, action="boundaries")[0]]
    assert {"boundaries.draft", "boundaries.edit", "boundaries.revert"} <= set(actions)
    applied_entry = next(
        e for e in audit_log(db, action="boundaries.edit")[0] if e.detail.get("draft") == draft
    )
    assert applied_entry.detail["changeset"] == draft


def test_a_draft_under_a_unit_changed_since_is_412_naming_it(db: Database) -> None:
    _load(db)
    with signed_in(db, role="admin") as client:
        here = client.post(_EDITS, json=_transfer(100, "1003", draft=True)).json()["changeset"]
        there = client.post(_EDITS, json=_transfer(300, "2003", draft=True)).json()["changeset"]
        # Meanwhile 1003 (which the first draft enlarges) is split in two.
        cut = shapely.geometry.mapping(line((30, -5), (30, 105)))
        split = client.post(
            _EDITS, json={"op": "split", "level": "grid", "units": ["1003"], "geometry": cut}
        )
        assert split.status_code == 200, split.text
        stale = client.post(f"{_SETS}/{here}/apply")
        assert stale.status_code == 412, stale.text
        assert "1003" in stale.json()["codes"]
        assert client.get(f"{_SETS}/{here}").json()["status"] == "draft"  # still a draft
        # The draft in the other community saw nothing change: it applies.
        fine = client.post(f"{_SETS}/{there}/apply")
        assert fine.status_code == 200, fine.text
        gone = client.delete(f"{_SETS}/{here}")
        assert gone.status_code == 200 and gone.json()["status"] == "discarded"
        assert client.post(f"{_SETS}/{here}/apply").status_code == 409
        statuses = {c["id"]: c["status"] for c in client.get(_SETS).json()["changesets"]}
        assert statuses[here] == "discarded" and statuses[there] == "applied"
    assert audit_log(db, action="boundaries.discard")[1] == 1


def test_a_neighbour_gaining_ground_makes_a_draft_stale(db: Database) -> None:
    """A unit the draft does not change but shares its edges with counts as 'under it'."""
    _load(db)
    with signed_in(db, role="admin") as client:
        draft = client.post(_EDITS, json=_transfer(100, "1003", draft=True)).json()["changeset"]
        # 1001 (north of 1003) takes a strip of 1002: 1001 and 1002 both touch the draft's ground.
        moved = client.post(_EDITS, json=_transfer(100, "1001") | {"geometry": _strip_north()})
        assert moved.status_code == 200, moved.text
        stale = client.post(f"{_SETS}/{draft}/apply")
        assert stale.status_code == 412, stale.text
        assert set(stale.json()["codes"]) & {"1001", "1002"}


def _strip_north() -> dict[str, object]:
    return shapely.geometry.mapping(polygon((100, 100), (130, 100), (130, 201), (100, 201)))


def test_a_draft_keeps_its_effective_date_and_refuses_with_dry_run(db: Database) -> None:
    _load(db)
    with signed_in(db, role="admin") as client:
        both = client.post(_EDITS, json=_transfer(100, "1003", draft=True, dry_run=True))
        assert both.status_code == 400 and both.json()["field"] == "draft"
        later = _transfer(100, "1003", draft=True, valid_from="2027-03-01")
        saved = client.post(_EDITS, json=later)
        assert saved.status_code == 200, saved.text
        applied = client.post(f"{_SETS}/{saved.json()['changeset']}/apply")
        assert applied.status_code == 200, applied.text
        assert applied.json()["valid_from"].startswith("2027-02-28T16:00:00")  # 00:00 China time


def test_only_planners_of_the_units_may_apply_or_discard_a_draft(db: Database) -> None:
    _load(db)
    with signed_in(db, role="planner", units=["test:1"]) as client:
        draft = client.post(_EDITS, json=_transfer(100, "1003", draft=True)).json()["changeset"]
        worker = sign_in(client, db, role="grid_worker", units=["test:1"])
        viewer = sign_in(client, db, role="viewer", units=["test:1"])
        other = sign_in(client, db, role="planner", units=["test:2"])
        for headers, status in ((worker, 403), (viewer, 403), (other, 404)):
            assert client.post(f"{_SETS}/{draft}/apply", headers=headers).status_code == status
            assert client.delete(f"{_SETS}/{draft}", headers=headers).status_code == status
        assert client.get(_SETS, headers=other).json()["total"] == 0
        hidden = client.get(f"{_SETS}/{draft}", headers=other)
        assert hidden.status_code == 404
        drafting = client.post(_EDITS, json=_transfer(100, "1003", draft=True), headers=worker)
        assert drafting.status_code == 403
        assert client.get(f"{_SETS}/{draft}").json()["status"] == "draft"  # untouched
        assert client.post(f"{_SETS}/{draft}/apply").status_code == 200
