"""Writes on both dialects: commit-ordered revisions, concurrent writers, NULLs, append-only audit.

Regressions of the security issue: items 7 (a revision taken from an id at
insert time missed a change committed after a later one), 8 (SQLite
refused a concurrent writer at once; PostGIS gave a raw UniqueViolation),
9 (PostGIS stored missing entrances as NaN) and 12 (``INSERT OR REPLACE``
rewrote an audit row; revoking a revoked key was audited twice).
"""

from __future__ import annotations

import threading
from pathlib import Path

import geopandas as gpd
import pytest
from shapely import box
from sqlalchemy import text

from gis.access import SYSTEM, audit_log
from gis.access.accounts import create_api_key, revoke_api_key
from gis.errors import ConflictError
from gis.places import import_buildings
from gis.repository import Database
from gis.staff import add_staff
from gis.times import utc_now
from gis.units import import_units
from tests.fixtures_governance import COMMUNITIES, frame, load_governance


def _revisions(db: Database) -> dict[str, int]:
    with db.reader() as repo:
        return repo.revisions()


def test_every_kind_of_change_moves_its_own_counter(db: Database, tmp_path: Path) -> None:
    start = _revisions(db)
    load_governance(db)
    after_boundaries = _revisions(db)
    assert after_boundaries["boundaries"] > start["boundaries"]
    assert after_boundaries["places"] == start["places"]
    buildings = tmp_path / "buildings.geojson"
    gpd.GeoDataFrame(
        {"key": ["B1"]}, geometry=[box(118.51, 24.93, 118.511, 24.931)], crs=4490
    ).to_file(buildings)
    import_buildings(db, path=buildings)
    after_places = _revisions(db)
    assert after_places["places"] > after_boundaries["places"]
    assert after_places["boundaries"] == after_boundaries["boundaries"]
    add_staff(db, layer="governance", unit_code="350502001", role="grid_worker", name="张三")
    assert _revisions(db)["staff"] > after_places["staff"]
    create_api_key(db, name="hotline", role="admin", units=[], actor=SYSTEM)
    assert _revisions(db)["access"] > after_places["access"]
    db.truncate()
    assert _revisions(db)["boundaries"] > after_places["boundaries"]  # never goes back


def test_a_change_committed_after_a_later_one_is_still_seen(postgres_database: Database) -> None:
    """The first writer commits last; every commit must still move the revision.

    PostgreSQL only: SQLite writers are serial, a second one cannot even begin.
    """
    db = postgres_database
    db.truncate()
    load_governance(db)
    when = utc_now()
    first_open = threading.Event()
    release_first = threading.Event()
    seen: list[int] = []

    def first_writer() -> None:
        with db.transaction() as repo:
            repo.retire_units(layer="governance", codes=["350502001001"], at=when)
            first_open.set()
            release_first.wait(10)

    def second_writer() -> None:
        with db.transaction() as repo:
            repo.retire_units(layer="governance", codes=["350502002002"], at=when)

    first = threading.Thread(target=first_writer)
    first.start()
    assert first_open.wait(10)
    seen.append(_revisions(db)["boundaries"])
    second = threading.Thread(target=second_writer)
    second.start()
    second.join(1.0)  # the second writer would like to commit first ...
    seen.append(_revisions(db)["boundaries"])
    release_first.set()
    first.join(10)
    second.join(10)
    seen.append(_revisions(db)["boundaries"])
    # ... but waits for the first: the revision moves with each commit, in order.
    assert seen[0] == seen[1] < seen[2]
    with db.reader() as repo:
        current = set(repo.units_frame(layer="governance", level="community")["code"])
    assert current == set(COMMUNITIES) - {"350502001001", "350502002002"}


def test_two_imports_of_one_level_at_once_end_cleanly(db: Database) -> None:
    load_governance(db)
    when = utc_now()
    changed = {code: geometry.buffer(0) for code, geometry in COMMUNITIES.items()}
    renamed = frame(changed)
    renamed["name"] = [f"新{name}" for name in renamed["name"]]
    outcomes: list[str] = []

    def run() -> None:
        try:
            import_units(
                db,
                units=renamed,
                layer="governance",
                level="community",
                source="t",
                valid_from=when,
            )
            outcomes.append("ok")
        except ConflictError as error:
            outcomes.append(f"conflict: {error.message}")

    threads = [threading.Thread(target=run) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    # Each either stored the version or was told cleanly that it already exists.
    assert len(outcomes) == 2 and "ok" in outcomes
    assert all(o == "ok" or o.startswith("conflict: ") for o in outcomes)
    with db.reader() as repo:
        names = repo.units_frame(layer="governance", level="community")["name"]
    assert all(name.startswith("新") for name in names)


def test_writers_wait_for_each_other_instead_of_failing(db: Database) -> None:
    """A write while another write transaction is open waits (busy timeout), then succeeds."""
    load_governance(db)
    holding = threading.Event()
    release = threading.Event()
    errors: list[BaseException] = []

    def long_writer() -> None:
        with db.transaction() as repo:
            repo.lock_layer(layer="governance")
            repo.retire_units(layer="governance", codes=["350502002002"], at=utc_now())
            holding.set()
            release.wait(10)

    def audited_request() -> None:
        try:
            add_staff(
                db, layer="governance", unit_code="350502001", role="grid_worker", name="李四"
            )
        except BaseException as error:  # the regression: "database is locked" at once
            errors.append(error)

    writer = threading.Thread(target=long_writer)
    writer.start()
    assert holding.wait(10)
    waiting = threading.Thread(target=audited_request)
    waiting.start()
    waiting.join(0.5)
    release.set()
    writer.join(10)
    waiting.join(10)
    assert errors == []
    with db.reader() as repo:
        assert [s["name"] for s in repo.staff()] == ["李四"]


def test_missing_entrances_are_null_on_both_dialects(db: Database, tmp_path: Path) -> None:
    load_governance(db)
    buildings = tmp_path / "buildings.geojson"
    gpd.GeoDataFrame(
        {
            "key": ["WITH", "WITHOUT"],
            "address": ["中山南路1号", "中山南路2号"],
            "entrance_lon": [118.5105, None],
            "entrance_lat": [24.9305, None],
        },
        geometry=[box(118.51, 24.93, 118.511, 24.931), box(118.52, 24.93, 118.521, 24.931)],
        crs=4490,
    ).to_file(buildings)
    import_buildings(db, path=buildings)
    with db.engine.connect() as connection:
        nulls = connection.execute(
            text("SELECT key FROM buildings WHERE entrance_lon IS NULL AND entrance_lat IS NULL")
        ).scalars()
        assert list(nulls) == ["WITHOUT"]
    with db.reader() as repo:
        points = repo.places.addresses().set_index("key")
    # The building without an entrance is located at a point inside it.
    assert box(118.52, 24.93, 118.521, 24.931).contains(
        gpd.points_from_xy([points.loc["WITHOUT", "lon"]], [points.loc["WITHOUT", "lat"]])[0]
    )


def test_audit_rows_cannot_be_replaced_or_revoked_twice(db: Database) -> None:
    key, _ = create_api_key(db, name="hotline", role="admin", units=[], actor=SYSTEM)
    revoke_api_key(db, key_id=key.key_id, actor=SYSTEM)
    revoke_api_key(db, key_id=key.key_id, actor=SYSTEM)
    entries, _ = audit_log(db, action="api_key.revoke", target=key.key_id)
    assert len(entries) == 1
    if db.dialect == "sqlite":
        entry = audit_log(db)[0][0]
        with pytest.raises(Exception, match="append-only"), db.engine.begin() as connection:
            connection.execute(
                text(
                    "INSERT OR REPLACE INTO audit_log "
                    "(id, at, actor, actor_kind, role, action, target, detail, client) "
                    "VALUES (:id, '2020-01-01 00:00:00', 'x', 'user', NULL, "
                    "'forged', 't', '{}', NULL)"
                ),
                {"id": entry.id},
            )
    assert not any(e.action == "forged" for e in audit_log(db)[0])


def test_api_writes_go_on_during_a_long_import(
    db: Database, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Validation runs outside the write transaction: audited requests are not held up."""
    import gis.units._import as pipeline
    from tests._client import signed_in
    from tests.fixtures_access import GRID_A, load_two_grids

    load_two_grids(db, tmp_path)
    validating = threading.Event()
    others_done = threading.Event()
    validate = pipeline.validate_units

    def slow_validation(*args: object, **kwargs: object) -> object:
        validating.set()
        others_done.wait(20)  # a long validation: until the API has written
        return validate(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(pipeline, "validate_units", slow_validation)
    with db.reader() as repo:
        micro = repo.units_frame(layer="governance", level="micro_grid")
    micro["name"] = [f"{name}（新）" for name in micro["name"]]
    finished: list[str] = []

    def long_import() -> None:
        import_units(db, units=micro, layer="governance", level="micro_grid", source="t")
        finished.append("import")

    with signed_in(db) as admin:
        worker = threading.Thread(target=long_import)
        worker.start()
        assert validating.wait(30)
        # Household reads are audited (a write in the audit log) ...
        read = admin.get(f"/api/v1/units/{GRID_A}/households")
        assert read.status_code == 200
        # ... and so is a staff change.
        added = admin.post(
            "/api/v1/staff",
            json={"unit_code": GRID_A, "role": "community_police", "name": "赵警官"},
        )
        assert added.status_code == 201, added.text
        finished.append("api")
        others_done.set()
        worker.join(60)
    assert finished == ["api", "import"]
