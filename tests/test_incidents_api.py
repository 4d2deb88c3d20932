"""Incidents through the HTTP API with real sign-in, on both databases (and the sample city).

End to end from intake to closure for each of the three responsible roles
(grid worker, community police, cadre), idempotency over HTTP (also with
racing retries), the review queue, escalation, the relocation report after
a boundary change, and a table of bad input: each a 4xx problem+json that
names the field, with nothing written.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import text

from api.app import create_app
from gis.access import SYSTEM, audit_log
from gis.access.accounts import create_api_key
from gis.incidents import service
from gis.repository import Database
from gis.settings import Settings
from gis.staff import add_staff
from gis.times import isoformat_local, utc_now
from tests._client import sign_in
from tests.fixtures_access import BEAT_X, COMMUNITY, GRID_A, GRID_B, load_two_grids, move_edge
from tests.fixtures_incidents import IN_A, IN_B, NOWHERE, add_responsible, draft

POINT_A = {"x": IN_A[0], "y": IN_A[1], "datum": "cgcs2000"}
BODY = {
    "category": "0101",
    "description": "占道经营",
    "channel": "12345",
    "location": POINT_A,
    # An hour ago (times must be recent: intake refuses events over a year old).
    "event_time": isoformat_local(utc_now() - timedelta(hours=1)),
    "reporter_contact": "张女士 13800000000",
}
ROLES = {
    "grid_worker": f"governance:{GRID_A}",
    "police": f"police:{BEAT_X}",
    "cadre": f"governance:{COMMUNITY}",
}


@pytest.fixture
def city(db: Database, tmp_path: Path) -> Database:
    load_two_grids(db, tmp_path)
    add_responsible(db)
    return db


@pytest.fixture
def app(city: Database) -> FastAPI:
    settings = Settings(database_url=city.url, load_sample_city=False, index_refresh_seconds=0)
    return create_app(settings, db=city)


@pytest.fixture
def client(app: FastAPI) -> Iterator[TestClient]:
    with TestClient(app) as test_client:
        yield test_client


@pytest.fixture
def hotline(city: Database) -> dict[str, str]:
    """Return the 12345 hotline's API key (a dispatcher of the county)."""
    _, token = create_api_key(
        city, name="12345 hotline", role="dispatcher", units=["governance:350502"], actor=SYSTEM
    )
    return {"X-API-Key": token}


def count(db: Database, table: str = "incidents") -> int:
    with db.engine.connect() as connection:
        return int(connection.execute(text(f"SELECT count(*) FROM {table}")).scalar_one())


def post(
    client: TestClient, headers: dict[str, str], body: dict[str, Any], key: str | None = None
) -> Any:
    extra = {"Idempotency-Key": key} if key else {}
    return client.post("/api/v1/incidents", json=body, headers={**headers, **extra})


@pytest.mark.parametrize("role", list(ROLES))
def test_intake_to_closure_for_each_responsible_role(
    client: TestClient, city: Database, hotline: dict[str, str], role: str
) -> None:
    handler = sign_in(client, city, role=role, units=[ROLES[role]])
    other = sign_in(client, city, role="grid_worker", units=[f"governance:{GRID_B}"])
    created = post(client, hotline, BODY, key="12345-20261201-0001")
    assert created.status_code == 201, created.text
    incident = created.json()
    assert incident["status"] == "dispatched"
    assert incident["units"]["governance"]["grid"] == GRID_A
    people = {k: [p["name"] for p in v] for k, v in incident["responsible"].items()}
    assert people == {"grid_worker": ["李甲"], "police": ["民警甲"], "cadre": ["干部丙"]}
    assert created.headers["location"] == f"/api/v1/incidents/{incident['id']}"
    assert incident["reporter_contact"] is None  # not echoed in lists and intake answers
    url = f"/api/v1/incidents/{incident['id']}"
    mine = client.get("/api/v1/incidents", headers=handler).json()
    assert [i["id"] for i in mine] == [incident["id"]]
    shown = client.get(url, headers=handler).json()
    assert shown["reporter_contact"] == "张女士 13800000000"
    assert client.get(url, headers=other).status_code == 404
    assert client.get("/api/v1/incidents", headers=other).json() == []
    for action, status in (("accept", "accepted"), ("start", "in_progress")):
        step = client.post(f"{url}/transitions", headers=handler, json={"action": action})
        assert step.status_code == 200, step.text
        assert step.json()["status"] == status
    refused = client.post(f"{url}/transitions", headers=other, json={"action": "resolve"})
    assert refused.status_code == 404
    resolved = client.post(
        f"{url}/transitions", headers=handler, json={"action": "resolve", "note": "已清理"}
    )
    assert resolved.json()["status"] == "resolved"
    closing = {"action": "close", "feedback_score": 5, "feedback_text": "满意"}
    forbidden = client.post(f"{url}/transitions", headers=handler, json=closing)
    assert forbidden.status_code == 403
    assert forbidden.headers["content-type"].startswith("application/problem+json")
    closed = client.post(f"{url}/transitions", headers=hotline, json=closing)
    assert closed.status_code == 200, closed.text
    assert closed.json()["status"] == "closed" and closed.json()["feedback_score"] == 5
    history = client.get(f"{url}/history", headers=handler).json()
    assert [(h["action"], h["to_status"]) for h in history] == [
        ("intake", "received"),
        ("dispatch", "dispatched"),
        ("accept", "accepted"),
        ("start", "in_progress"),
        ("resolve", "resolved"),
        ("close", "closed"),
    ]
    assert history[4]["note"] == "已清理" and history[4]["actor"].startswith("user:")
    assert history[0]["actor"].startswith("api_key:")
    actions = [e.action for e in audit_log(city, target=f"incident:{incident['id']}")[0]]
    assert actions[::-1] == [
        "incidents.intake",
        "incidents.contact",
        "incidents.accept",
        "incidents.start",
        "incidents.resolve",
        "incidents.close",
    ]


def test_the_same_key_over_http(
    client: TestClient, city: Database, hotline: dict[str, str]
) -> None:
    first = post(client, hotline, BODY, key="retry-1")
    again = post(client, hotline, BODY, key="retry-1")
    assert (first.status_code, again.status_code) == (201, 200)
    assert again.headers["idempotent-replayed"] == "true"
    assert again.json() == first.json()
    changed = post(client, hotline, {**BODY, "description": "另一件事"}, key="retry-1")
    assert changed.status_code == 409
    assert changed.headers["content-type"].startswith("application/problem+json")
    assert changed.json()["field"] == "Idempotency-Key"
    assert count(city) == 1


def test_racing_retries_over_http_make_one_incident(
    client: TestClient, city: Database, hotline: dict[str, str]
) -> None:
    answers: list[Any] = []
    start = threading.Barrier(6)

    def retry() -> None:
        start.wait()
        answers.append(post(client, hotline, BODY, key="race-http"))

    threads = [threading.Thread(target=retry) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(a.status_code for a in answers) == [200, 200, 200, 200, 200, 201]
    assert len({a.json()["id"] for a in answers}) == 1
    assert count(city) == 1 and count(city, "incident_keys") == 1


def test_uncertain_places_wait_for_a_dispatcher(
    client: TestClient, city: Database, hotline: dict[str, str]
) -> None:
    edge = {**BODY, "location": {"x": 118.525, "y": 24.94, "datum": "cgcs2000", "accuracy_m": 200}}
    queued = post(client, hotline, edge).json()
    assert queued["status"] == "review" and queued["review_reason"] == "ambiguous_location"
    assert queued["units"] == {} and queued["responsible"] == {}
    review = client.get("/api/v1/incidents", headers=hotline, params={"status": "review"})
    assert [i["id"] for i in review.json()] == [queued["id"]]
    url = f"/api/v1/incidents/{queued['id']}/transitions"
    guess = client.post(url, headers=hotline, json={"action": "dispatch"})
    assert guess.status_code == 400 and guess.json()["field"] == "unit"
    sent = client.post(
        url, headers=hotline, json={"action": "dispatch", "unit": f"governance:{GRID_B}"}
    )
    assert sent.status_code == 200 and sent.json()["units"]["governance"]["grid"] == GRID_B


def test_overdue_incidents_are_escalated_to_the_street(
    client: TestClient, app: FastAPI, city: Database, hotline: dict[str, str]
) -> None:
    past = utc_now() - timedelta(hours=5)
    late = service.intake(
        city, SYSTEM, draft(category="0202", event_time=past), now=past, locator=app.state.locator
    ).incident
    post(client, hotline, {**BODY, "category": "0202"})  # due in 4 h from now
    overdue = client.get("/api/v1/incidents/overdue", headers=hotline).json()
    assert [i["id"] for i in overdue] == [late.id]
    worker = sign_in(client, city, role="grid_worker", units=[f"governance:{GRID_A}"])
    assert client.post("/api/v1/incidents/escalate-overdue", headers=worker).status_code == 403
    escalated = client.post("/api/v1/incidents/escalate-overdue", headers=hotline).json()
    assert [(i["id"], i["status"], i["escalated_to"]) for i in escalated] == [
        (late.id, "escalated", "governance:350502001")
    ]


def test_relocation_report_after_a_boundary_change(
    client: TestClient, app: FastAPI, city: Database, hotline: dict[str, str]
) -> None:
    moved = post(client, hotline, BODY).json()
    post(client, hotline, {**BODY, "location": {"x": IN_B[0], "y": IN_B[1], "datum": "cgcs2000"}})
    report = "/api/v1/incidents/relocation-report"
    assert client.get(report, headers=hotline).json() == []
    move_edge(city, utc_now() - timedelta(minutes=1))
    client.get(report, headers=hotline)  # may answer from the indexes being replaced
    app.state.locator.cache.wait()
    listed = client.get(report, headers=hotline).json()
    assert [entry["id"] for entry in listed] == [moved["id"]]
    assert {
        "layer": "governance",
        "level": "grid",
        "dispatched": GRID_A,
        "today": GRID_B,
    } in listed[0]["changes"]
    kept = client.get(f"/api/v1/incidents/{moved['id']}", headers=hotline).json()
    assert kept["units"]["governance"]["grid"] == GRID_A  # until re-located on purpose
    done = client.post(
        "/api/v1/incidents/relocate",
        headers=hotline,
        json={"ids": [moved["id"]], "reason": "网格调整"},
    )
    assert done.status_code == 200, done.text
    assert done.json()[0]["relocated"] is True
    assert client.get(report, headers=hotline).json() == []
    now = client.get(f"/api/v1/incidents/{moved['id']}", headers=hotline).json()
    assert now["units"]["governance"]["grid"] == GRID_B


BAD = [
    ({**BODY, "category": "9999"}, {}, 400, "category"),
    ({**BODY, "location": None}, {}, 400, "location"),
    ({k: v for k, v in BODY.items() if k != "location"}, {}, 400, "location"),
    ({**BODY, "event_time": "2026-13-01"}, {}, 400, "event_time"),
    ({**BODY, "event_time": "yesterday"}, {}, 400, "event_time"),
    ({**BODY, "event_time": "2099-01-01"}, {}, 400, "event_time"),
    ({**BODY, "location": {**POINT_A, "datum": "wgs-84"}}, {}, 400, "datum"),
    ({**BODY, "location": {"x": 118.5, "y": 24.9}}, {}, 422, "location.datum"),
    ({**BODY, "location": {**POINT_A, "y": 95}}, {}, 400, "x"),
    ({**BODY, "location": {**POINT_A, "accuracy_m": -1}}, {}, 400, "accuracy_m"),
    ({**BODY, "reporter_contact": "身份证 350502199001011234"}, {}, 400, "reporter_contact"),
    ({**BODY, "description": "x" * 4001}, {}, 422, "description"),
    ({**BODY, "description": "x" * 2_000_000}, {}, 413, None),
    ({**BODY, "channel": "热线"}, {}, 400, "channel"),
    ({**BODY, "surprise": 1}, {}, 422, "surprise"),
    ({**BODY, "media": ["a b"]}, {}, 400, "media"),
    (BODY, {"Idempotency-Key": "spaces are not allowed"}, 400, "Idempotency-Key"),
    (BODY, {"Idempotency-Key": "k" * 201}, 422, "header.Idempotency-Key"),
]


@pytest.mark.parametrize(
    ("content", "media"),
    [(b"category=0101", "application/x-www-form-urlencoded"), (b"{", "application/json")],
)
def test_a_body_that_is_not_a_json_object_is_a_422(
    client: TestClient, city: Database, hotline: dict[str, str], content: bytes, media: str
) -> None:
    """The intake hot path refuses what FastAPI's body parsing would (not JSON, cut JSON)."""
    response = client.post(
        "/api/v1/incidents", content=content, headers={**hotline, "Content-Type": media}
    )
    assert response.status_code == 422, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.headers["x-content-type-options"] == "nosniff"
    assert count(city) == 0


@pytest.mark.parametrize(("body", "headers", "status", "field"), BAD)
def test_bad_input_is_a_clear_4xx_and_writes_nothing(
    client: TestClient,
    city: Database,
    hotline: dict[str, str],
    body: dict[str, Any],
    headers: dict[str, str],
    status: int,
    field: str | None,
) -> None:
    before = audit_log(city, action="incidents")[1]
    response = client.post("/api/v1/incidents", json=body, headers={**hotline, **headers})
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    problem = response.json()
    assert problem["detail"]
    if field is not None and status == 400:
        assert problem["field"] == field, problem
    elif field is not None:
        assert field in {e["field"] for e in problem["errors"]}, problem
    assert count(city) == 0 and count(city, "incident_keys") == 0
    assert audit_log(city, action="incidents")[1] == before


def test_a_reporter_outside_the_place_gets_a_receipt_only(
    client: TestClient, city: Database
) -> None:
    worker_b = sign_in(client, city, role="grid_worker", units=[f"governance:{GRID_B}"])
    answer = post(client, worker_b, BODY)  # seen on the way, in grid A
    assert answer.status_code == 201
    assert set(answer.json()) == {
        "id",
        "public_id",
        "category",
        "status",
        "received_at",
        "deadline_at",
    }
    assert "李甲" not in answer.text and GRID_A not in answer.text
    viewer = sign_in(client, city, role="viewer", units=["governance:350502"])
    assert post(client, viewer, BODY).status_code == 403
    assert client.get("/api/v1/incidents", headers=viewer).status_code == 403
    nowhere = {**BODY, "location": {"x": NOWHERE[0], "y": NOWHERE[1], "datum": "wgs84"}}
    mine = post(client, worker_b, nowhere).json()  # unlocated: its reporter follows it
    assert mine["review_reason"] == "outside_all_units"
    assert client.get(f"/api/v1/incidents/{mine['id']}", headers=worker_b).status_code == 200


def test_sample_city_end_to_end(city_db: Database) -> None:
    """The bundled city: intake by the hotline, handled by each of the three, closed."""
    with city_db.reader() as repo:
        units = repo.units_frame(layer="governance", level="grid", at=utc_now())
    grid = units.iloc[len(units) // 2]
    point = grid.geometry.representative_point()
    code, community = str(grid["code"]), str(grid["parent_code"])
    # Staff are added below straight into the database, not through this app:
    # the app reads the change counters at every request (no refresh interval).
    settings = Settings(database_url=city_db.url, load_sample_city=False, index_refresh_seconds=0)
    app = create_app(settings, db=city_db)
    with TestClient(app) as client:
        app.state.locator.cache.get()
        located = app.state.locator.locate(point.x, point.y)
        beat = located.layers["police"].units[-1].code
        add_staff(city_db, layer="governance", unit_code=code, role="grid_worker", name="网格员甲")
        add_staff(
            city_db, layer="police", unit_code=str(beat), role="community_police", name="民警甲"
        )
        add_staff(city_db, layer="governance", unit_code=community, role="cadre", name="干部甲")
        _, token = create_api_key(
            city_db, name="12345", role="dispatcher", units=["governance:350502"], actor=SYSTEM
        )
        hotline = {"X-API-Key": token}
        handlers = {
            "grid_worker": f"governance:{code}",
            "police": f"police:{beat}",
            "cadre": f"governance:{community}",
        }
        for role, unit in handlers.items():
            body = {
                "category": "0201",
                "description": "道路破损",
                "location": {"x": point.x, "y": point.y, "datum": "cgcs2000"},
            }
            incident = post(client, hotline, body, key=f"sample-{role}").json()
            assert incident["status"] == "dispatched", incident
            assert incident["units"]["governance"]["grid"] == code
            assert {k: len(v) for k, v in incident["responsible"].items()} == {
                "grid_worker": 1,
                "police": 1,
                "cadre": 1,
            }
            headers = sign_in(client, city_db, role=role, units=[unit])
            url = f"/api/v1/incidents/{incident['id']}/transitions"
            for action in ("accept", "start", "resolve"):
                step = client.post(url, headers=headers, json={"action": action})
                assert step.status_code == 200, step.text
            closed = client.post(
                url, headers=hotline, json={"action": "close", "feedback_score": 4}
            )
            assert closed.json()["status"] == "closed"
