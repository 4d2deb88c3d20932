"""The incident service on both databases: intake, idempotency, review queue, lifecycle, reports.

The two-grid city (``tests.fixtures_access``) with its three responsible
people per grid (``tests.fixtures_incidents``); every test runs on
SpatiaLite and PostGIS.
"""

from __future__ import annotations

import dataclasses
import json
import threading
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import text

from gis.access import SYSTEM, Principal, Role, audit_log
from gis.errors import ConflictError, ForbiddenError, InputError, NotFoundError
from gis.incidents import (
    IdempotencyConflict,
    IncidentDraft,
    IncidentLocation,
    Taxonomy,
    default_taxonomy,
    load_taxonomy,
    service,
)
from gis.incidents._writer import IntakeJob, IntakeWriter
from gis.repository import Database
from tests.fixtures_access import (
    BEAT_X,
    COMMUNITY,
    GRID_A,
    GRID_B,
    MICRO_A,
    load_two_grids,
    move_edge,
)
from tests.fixtures_incidents import (
    CADRE,
    DISPATCHER,
    IN_A,
    IN_B,
    NOWHERE,
    POLICE_X,
    STAYS_A,
    T0,
    WORKER_A,
    WORKER_B,
    Desk,
    add_responsible,
    draft,
)


@pytest.fixture
def desk(db: Database, tmp_path: Path) -> Desk:
    load_two_grids(db, tmp_path)
    add_responsible(db)
    return Desk(db)


def count(db: Database, table: str) -> int:
    with db.engine.connect() as connection:
        return int(connection.execute(text(f"SELECT count(*) FROM {table}")).scalar_one())


# -- taxonomy -----------------------------------------------------------------------


def test_default_taxonomy_has_two_levels_and_deadlines() -> None:
    taxonomy = default_taxonomy()
    assert {c.code for c in taxonomy.classes} >= {"01", "02", "03", "04"}
    for category in taxonomy.categories:
        assert category.code.startswith(category.class_code) and len(category.code) == 4
        assert category.deadline_hours >= 1
    assert taxonomy.get("0202").deadline_hours < taxonomy.get("0101").deadline_hours
    with pytest.raises(InputError, match="unknown category '01'"):
        taxonomy.get("01")  # a class is not a category


def test_taxonomy_file_is_read_and_checked(tmp_path: Path) -> None:
    path = tmp_path / "taxonomy.json"
    path.write_text(
        json.dumps(
            {
                "classes": [{"code": "09", "name_zh": "其他", "name_en": "Other"}],
                "categories": [{"code": "0901", "name_zh": "测试", "deadline_hours": 6}],
            }
        ),
        encoding="utf-8",
    )
    loaded = load_taxonomy(path)
    assert loaded.get("0901").deadline_hours == 6 and loaded.get("0901").class_code == "09"
    assert Taxonomy.from_dict(loaded.to_dict()) == loaded
    yaml_file = tmp_path / "taxonomy.yaml"
    yaml_file.write_text(
        "classes: [{code: '09', name_zh: 其他}]\n"
        "categories: [{code: '0902', name_zh: 测试, deadline_hours: 2}]\n",
        encoding="utf-8",
    )
    assert load_taxonomy(yaml_file).get("0902").deadline_hours == 2
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"classes": [], "categories": [{"code": "0101"}]}), "utf-8")
    with pytest.raises(InputError, match="taxonomy"):
        load_taxonomy(bad)
    wrong_class = {
        "classes": [{"code": "01", "name_zh": "a"}],
        "categories": [{"code": "0201", "class_code": "01", "name_zh": "b", "deadline_hours": 1}],
    }
    with pytest.raises(InputError, match="must start with its class code"):
        Taxonomy.from_dict(wrong_class)


# -- intake -------------------------------------------------------------------------


def test_intake_locates_in_every_layer_and_attaches_the_three(desk: Desk) -> None:
    result = desk.intake(DISPATCHER)
    incident = result.incident
    assert result.created and incident.status == "dispatched"
    assert incident.units["governance"] == {
        "county": "350502",
        "street": "350502001",
        "community": COMMUNITY,
        "grid": GRID_A,
        "micro_grid": MICRO_A[0],
    }
    assert incident.units["police"]["beat"] == BEAT_X
    names = {role: [p["name"] for p in people] for role, people in incident.responsible.items()}
    assert names == {"grid_worker": ["李甲"], "police": ["民警甲"], "cadre": ["干部丙"]}
    assert incident.deadline_at == T0 + timedelta(hours=48)  # 0101: 48 h
    assert incident.received_at == T0 and incident.event_time == T0
    steps = desk.call("history", DISPATCHER, incident.id)
    assert [(s.action, s.to_status) for s in steps] == [
        ("intake", "received"),
        ("dispatch", "dispatched"),
    ]
    entries, _ = audit_log(desk.db, action="incidents")
    assert [e.target for e in entries] == [f"incident:{incident.id}"]
    # The reporter's contact is stored, never written to the audit log.
    assert "13800000000" not in json.dumps([e.to_dict() for e in entries], ensure_ascii=False)
    assert desk.call("get", WORKER_A, incident.id).reporter_contact == "张女士 13800000000"


def test_intake_converts_phone_datums_and_keeps_the_raw_input(desk: Desk) -> None:
    from gis.datum import wgs84_to_gcj02

    xs, ys = wgs84_to_gcj02([IN_A[0]], [IN_A[1]])
    gx, gy = float(xs[0]), float(ys[0])
    incident = desk.intake(new=draft((gx, gy), datum="gcj02")).incident
    assert incident.units["governance"]["micro_grid"] == MICRO_A[0]
    assert incident.location == IncidentLocation(gx, gy, "gcj02", None)
    assert incident.lon is not None and incident.lat is not None
    assert abs(incident.lon - IN_A[0]) < 1e-5 and abs(incident.lat - IN_A[1]) < 1e-5
    # The same numbers taken as WGS84 are ~500 m away: another place.
    elsewhere = desk.intake(new=draft((gx, gy), datum="wgs84")).incident
    assert (elsewhere.lon, elsewhere.lat) != (incident.lon, incident.lat)


def test_intake_uses_the_boundaries_valid_at_the_event_time(desk: Desk) -> None:
    move_edge(desk.db, "2026-11-15")
    before = desk.intake(new=draft(IN_A, event_time=T0 - timedelta(days=30))).incident
    after = desk.intake(new=draft(IN_A, event_time=T0 - timedelta(days=1))).incident
    assert before.units["governance"]["grid"] == GRID_A
    assert after.units["governance"]["grid"] == GRID_B
    assert [p["name"] for p in before.responsible["grid_worker"]] == ["李甲"]
    assert [p["name"] for p in after.responsible["grid_worker"]] == ["王乙"]


@pytest.mark.parametrize(
    ("point", "options", "reason"),
    [
        (NOWHERE, {}, "outside_all_units"),
        # A 200 m circle centred on the A/B grid edge: half in each, never guessed.
        ((118.525, 24.94), {"accuracy_m": 200.0}, "ambiguous_location"),
        (None, {"address": "不存在路999号"}, "unmatched_address"),
        (IN_A, {"event_time": T0.replace(year=2025, month=12, day=20)}, "before_first_version"),
    ],
)
def test_uncertain_places_go_to_the_review_queue(
    desk: Desk, point: tuple[float, float] | None, options: dict[str, object], reason: str
) -> None:
    incident = desk.intake(new=draft(point, **options)).incident  # type: ignore[arg-type]
    assert incident.status == "review" and incident.review_reason == reason
    assert incident.units == {} and incident.responsible == {}
    # The county's dispatcher sees those whose point lies in the county.
    queue = desk.call("search", DISPATCHER, status="review")
    in_county = reason in ("ambiguous_location", "before_first_version")
    assert [i.id for i in queue] == ([incident.id] if in_county else [])
    assert [i.id for i in desk.call("search", SYSTEM, status="review")] == [incident.id]


def test_a_dispatcher_sends_a_reviewed_incident_to_a_unit_it_names(desk: Desk) -> None:
    queued = desk.intake(new=draft((118.525, 24.94), accuracy_m=200.0)).incident
    with pytest.raises(InputError, match="does not guess"):
        desk.call("transition", DISPATCHER, queued.id, "dispatch")
    with pytest.raises(ForbiddenError):
        desk.call("transition", WORKER_A, queued.id, "dispatch", unit=f"governance:{GRID_A}")
    sent = desk.call("transition", DISPATCHER, queued.id, "dispatch", unit=f"governance:{GRID_B}")
    assert sent.status == "dispatched" and sent.units["governance"]["grid"] == GRID_B
    assert [p["name"] for p in sent.responsible["grid_worker"]] == ["王乙"]
    with pytest.raises(NotFoundError):
        desk.call("get", WORKER_A, queued.id)
    assert desk.call("get", WORKER_B, queued.id).id == queued.id
    corrected = desk.intake(new=draft(NOWHERE)).incident
    moved = desk.call(
        "transition",
        SYSTEM,
        corrected.id,
        "dispatch",
        location=IncidentLocation(*IN_A, datum="cgcs2000"),
    )
    assert moved.units["governance"]["grid"] == GRID_A and moved.lon == IN_A[0]


# -- idempotency --------------------------------------------------------------------


def test_the_same_key_returns_the_same_incident_and_another_body_is_a_conflict(
    desk: Desk,
) -> None:
    first = desk.intake(idempotency_key="hotline-2026-0001")
    again = desk.intake(idempotency_key="hotline-2026-0001")
    assert first.created and not again.created
    assert again.incident == first.incident
    with pytest.raises(IdempotencyConflict, match="different request body"):
        desk.intake(new=draft(IN_B), idempotency_key="hotline-2026-0001")
    # Keys belong to their caller: another caller's equal key is another request.
    other = desk.intake(DISPATCHER, idempotency_key="hotline-2026-0001")
    assert other.created and other.incident.id != first.incident.id
    assert count(desk.db, "incidents") == 2 and count(desk.db, "incident_keys") == 2
    assert count(desk.db, "incident_transitions") == 4
    with pytest.raises(InputError, match="Idempotency-Key"):
        desk.intake(idempotency_key="has space")


def test_concurrent_retries_make_one_incident(desk: Desk) -> None:
    desk.locator.cache.get(T0)  # built once, before the race
    results: list[object] = []
    errors: list[BaseException] = []
    start = threading.Barrier(8)

    def retry() -> None:
        try:
            start.wait()
            results.append(desk.intake(DISPATCHER, idempotency_key="race-1"))
        except BaseException as error:
            errors.append(error)

    threads = [threading.Thread(target=retry) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors, errors
    ids = {r.incident.id for r in results}  # type: ignore[attr-defined]
    assert len(ids) == 1 and sum(r.created for r in results) == 1  # type: ignore[attr-defined]
    assert count(desk.db, "incidents") == 1 and count(desk.db, "incident_units") == 7
    assert count(desk.db, "incident_transitions") == 2
    assert audit_log(desk.db, action="incidents.intake")[1] == 1


def test_one_batch_decides_each_key_exactly_once_also_across_processes(desk: Desk) -> None:
    """Intakes stored together: a key twice in the batch, another body, no key, a later batch.

    A writer that waits long enough takes every job into one transaction;
    a second database handle (as another uvicorn worker would have) stores
    through its own writer and replays, the unique index deciding.
    """

    def job(principal: Principal, new: IncidentDraft, key: str | None) -> IntakeJob:
        return service.prepare_intake(
            desk.db, principal, new, idempotency_key=key, now=T0, locator=desk.locator
        )

    jobs = [
        job(DISPATCHER, draft(), "batch-1"),
        job(DISPATCHER, draft(), "batch-1"),  # the same request again
        job(DISPATCHER, draft(IN_B), "batch-1"),  # another body
        job(DISPATCHER, draft(IN_B), None),
        job(DISPATCHER, draft(IN_B), "batch-2"),
    ]
    writer = IntakeWriter(desk.db, max_wait=5.0, max_batch=len(jobs))  # all five, at once
    futures = [writer.enqueue(item) for item in jobs]
    first, again, _, unkeyed, second = (f.exception() or f.result() for f in futures)
    assert isinstance(futures[2].exception(), IdempotencyConflict)
    assert writer.batches == 1
    assert first[1] and not again[1] and unkeyed[1] and second[1]  # type: ignore[index]
    assert first[0]["id"] == again[0]["id"]  # type: ignore[index]
    assert count(desk.db, "incidents") == 3 and count(desk.db, "incident_keys") == 2
    assert count(desk.db, "incident_transitions") == 6
    assert audit_log(desk.db, action="incidents.intake")[1] == 3

    other = Database(desk.db.url)  # another process's engine and writer
    try:
        replay = service.intake(other, DISPATCHER, draft(), idempotency_key="batch-1", now=T0)
        assert not replay.created and replay.incident.id == first[0]["id"]  # type: ignore[index]
        with pytest.raises(IdempotencyConflict):
            service.intake(other, DISPATCHER, draft(IN_B), idempotency_key="batch-1", now=T0)
    finally:
        other.dispose()
    assert count(desk.db, "incidents") == 3


def test_a_refused_intake_writes_nothing(desk: Desk) -> None:
    bad = [
        dataclasses.replace(draft(), category="9999"),
        dataclasses.replace(draft(), location=None),
        dataclasses.replace(draft(), reporter_contact="张 350502199001011234"),
        dataclasses.replace(draft(), event_time=T0 + timedelta(hours=2)),
        dataclasses.replace(draft(), location=IncidentLocation(118.5, 24.9, "mars", None)),  # type: ignore[arg-type]
        dataclasses.replace(draft(), location=IncidentLocation(float("nan"), 24.9, "wgs84")),
        dataclasses.replace(draft(), channel="Hot Line"),
        dataclasses.replace(draft(), media=("a b",)),
        dataclasses.replace(draft(), description="x\x00y"),
    ]
    for item in bad:
        with pytest.raises(InputError):
            desk.intake(new=item)
    with pytest.raises(ForbiddenError):
        desk.intake(dataclasses.replace(DISPATCHER, role=Role.VIEWER))
    assert count(desk.db, "incidents") == 0 and count(desk.db, "incident_keys") == 0
    assert audit_log(desk.db, action="incidents")[1] == 0


# -- lifecycle ----------------------------------------------------------------------


def test_lifecycle_to_closure_by_each_responsible_role(desk: Desk) -> None:
    for handler in (WORKER_A, POLICE_X, CADRE):
        incident = desk.intake(DISPATCHER).incident
        for action, status in (
            ("accept", "accepted"),
            ("start", "in_progress"),
            ("resolve", "resolved"),
        ):
            incident = desk.call("transition", handler, incident.id, action, note=f"{action} ok")
            assert incident.status == status
        with pytest.raises(ForbiddenError):  # closing is the dispatcher's call-back
            desk.call("transition", handler, incident.id, "close", feedback_score=5)
        with pytest.raises(InputError, match="feedback_score"):
            desk.call("transition", DISPATCHER, incident.id, "close")
        closed = desk.call(
            "transition", DISPATCHER, incident.id, "close", feedback_score=4, feedback_text="好"
        )
        assert closed.status == "closed" and closed.feedback_score == 4
        assert closed.closed_at is not None and closed.revision == 5
        steps = desk.call("history", handler, incident.id)
        assert [s.action for s in steps] == [
            "intake",
            "dispatch",
            "accept",
            "start",
            "resolve",
            "close",
        ]
        assert {s.actor for s in steps[2:5]} == {handler.actor}
        assert steps[2].note == "accept ok"
        with pytest.raises(InputError, match="cannot accept an incident that is closed"):
            desk.call("transition", DISPATCHER, incident.id, "accept")
    actions = {e.action for e in audit_log(desk.db, action="incidents", limit=1000)[0]}
    assert actions >= {"incidents.accept", "incidents.resolve", "incidents.close"}


def test_only_the_responsible_jurisdiction_sees_and_acts(desk: Desk) -> None:
    in_a = desk.intake().incident
    in_b = desk.intake(new=draft(IN_B)).incident
    assert [i.id for i in desk.call("search", WORKER_A)] == [in_a.id]
    assert [i.id for i in desk.call("search", WORKER_B)] == [in_b.id]
    assert {i.id for i in desk.call("search", CADRE)} == {in_a.id, in_b.id}
    assert [i.id for i in desk.call("search", POLICE_X)] == [in_a.id]
    for action in ("accept", "escalate"):
        with pytest.raises(NotFoundError, match=f"no incident {in_b.id}"):
            desk.call("transition", WORKER_A, in_b.id, action)
    with pytest.raises(NotFoundError):
        desk.call("history", WORKER_A, in_b.id)
    assert desk.call("search", WORKER_A, unit=GRID_B) == []
    assert [i.id for i in desk.call("search", CADRE, unit=f"governance:{GRID_B}")] == [in_b.id]


def test_stale_revision_and_wrong_actions_are_refused(desk: Desk) -> None:
    incident = desk.intake().incident
    desk.call("transition", WORKER_A, incident.id, "accept", revision=incident.revision)
    with pytest.raises(ConflictError, match="revision"):
        desk.call("transition", WORKER_A, incident.id, "start", revision=incident.revision)
    with pytest.raises(InputError, match="unknown action"):
        desk.call("transition", WORKER_A, incident.id, "teleport")
    with pytest.raises(InputError, match="merged_into"):
        desk.call("transition", DISPATCHER, incident.id, "reject", merged_into=incident.id)


def test_duplicates_are_suggested_and_merged(desk: Desk) -> None:
    first = desk.intake().incident
    near = desk.intake(new=draft((IN_A[0] + 0.0003, IN_A[1]))).incident  # ~30 m east
    far = desk.intake(new=draft((IN_A[0] + 0.005, IN_A[1]))).incident  # ~500 m
    other = desk.intake(new=draft(category="0303")).incident  # noise, same place
    late = desk.intake(new=draft(event_time=T0 - timedelta(days=10))).incident
    suggested = desk.call("duplicates", DISPATCHER, near.id)
    assert [(i.id, round(d, -1)) for i, d in suggested] == [(first.id, 30.0)]
    assert far.id not in {i.id for i, _ in desk.call("duplicates", DISPATCHER, first.id)}
    assert {other.id, late.id}.isdisjoint(i.id for i, _ in suggested)
    merged = desk.call("transition", DISPATCHER, near.id, "merge", merged_into=first.id)
    assert merged.status == "merged" and merged.merged_into == first.id
    assert desk.call("duplicates", DISPATCHER, first.id) == []
    with pytest.raises(InputError, match="merge into the one kept"):
        desk.call("transition", DISPATCHER, far.id, "merge", merged_into=near.id)


# -- deadlines ----------------------------------------------------------------------


def test_overdue_incidents_are_listed_and_escalated_to_the_street(desk: Desk) -> None:
    cover = desk.intake(new=draft(category="0202")).incident  # manhole: 4 h
    stall = desk.intake().incident  # 48 h
    queued = desk.intake(new=draft(NOWHERE, category="0202")).incident
    later = T0 + timedelta(hours=5)
    assert [i.id for i in desk.call("overdue", DISPATCHER, now=later)] == [cover.id]
    assert {i.id for i in desk.call("overdue", SYSTEM, now=later)} == {cover.id, queued.id}
    assert desk.call("overdue", WORKER_B, now=later) == []
    with pytest.raises(ForbiddenError):
        desk.call("escalate_overdue", WORKER_A, now=later)
    escalated = desk.call("escalate_overdue", DISPATCHER, now=later)
    assert [(i.id, i.status, i.escalated_to) for i in escalated] == [
        (cover.id, "escalated", "governance:350502001")
    ]
    assert desk.call("escalate_overdue", DISPATCHER, now=later) == []  # once
    assert desk.call("get", SYSTEM, queued.id).status == "review"  # not handled yet: stays
    assert desk.call("get", SYSTEM, stall.id).status == "dispatched"
    steps = desk.call("history", DISPATCHER, cover.id)
    assert steps[-1].action == "escalate" and steps[-1].actor == DISPATCHER.actor
    # The street takes it over; it stays on the overdue list until resolved.
    street = dataclasses.replace(DISPATCHER, units=("governance:350502001",))
    accepted = desk.call("transition", street, cover.id, "accept")
    assert accepted.status == "accepted"
    assert cover.id in {i.id for i in desk.call("overdue", street, now=later)}


# -- boundary changes ---------------------------------------------------------------


def test_incidents_keep_their_unit_and_the_report_lists_the_moved_ones(desk: Desk) -> None:
    moved = desk.intake().incident
    stays = desk.intake(new=draft(STAYS_A)).incident
    assert desk.call("relocation_report", DISPATCHER) == []
    move_edge(desk.db, "2026-12-05")
    assert desk.call("get", DISPATCHER, moved.id).units["governance"]["grid"] == GRID_A
    report = desk.call("relocation_report", DISPATCHER)
    assert [entry["id"] for entry in report] == [moved.id]
    changes = {(c["level"], c["dispatched"], c["today"]) for c in report[0]["changes"]}
    assert ("grid", GRID_A, GRID_B) in changes
    assert stays.id not in {entry["id"] for entry in report}
    with pytest.raises(ForbiddenError):
        desk.call("relocate", WORKER_A, [moved.id], reason="new boundary")
    with pytest.raises(InputError, match="reason"):
        desk.call("relocate", DISPATCHER, [moved.id], reason=" ")
    done = desk.call("relocate", DISPATCHER, [moved.id, stays.id], reason="边界调整 2026-12-05")
    assert [(d["id"], d["relocated"]) for d in done] == [(moved.id, True), (stays.id, False)]
    after = desk.call("get", DISPATCHER, moved.id)
    assert after.units["governance"]["grid"] == GRID_B and after.status == moved.status
    assert [p["name"] for p in after.responsible["grid_worker"]] == ["王乙"]
    assert desk.call("history", DISPATCHER, moved.id)[-1].action == "relocate"
    assert audit_log(desk.db, action="incidents.relocate")[1] == 1
    assert desk.call("relocation_report", DISPATCHER) == []
    # Grid A's worker no longer sees it; grid B's does.
    with pytest.raises(NotFoundError):
        desk.call("get", WORKER_A, moved.id)
    assert desk.call("get", WORKER_B, moved.id).id == moved.id


def test_the_evaluation_frame_has_units_and_no_personal_data(desk: Desk) -> None:
    desk.intake()
    desk.intake(new=draft(IN_B, category="0303"))
    table = desk.call("frame", WORKER_A)
    assert list(table["category"]) == ["0101"]
    assert table["governance_grid"].tolist() == [GRID_A]
    assert "description" not in table and "reporter_contact" not in table
    assert str(table["received_at"].dt.tz) == "UTC"
    assert len(desk.call("frame", SYSTEM)) == 2


def test_incidents_of_any_month_are_stored_in_its_partition(desk: Desk) -> None:
    desk.intake()
    desk.intake(new=draft(), now=T0.replace(year=2027, month=3))
    assert count(desk.db, "incidents") == 2
    if desk.db.dialect != "postgresql":
        return  # SQLite: one plain table
    with desk.db.engine.connect() as connection:
        where = connection.execute(
            text("SELECT tableoid::regclass::text FROM incidents ORDER BY id")
        ).scalars()
        assert list(where) == ["incidents_p202612", "incidents_p202703"]
