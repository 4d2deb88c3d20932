"""Access control end to end, on both dialects: every path of the OpenAPI spec.

A grid worker of grid A must not read, infer or change anything of grid B:
for every operation, B's identifiers answer exactly like identifiers that
do not exist, and no response names anything of B. Without credentials
every operation but ``/health`` and sign-in answers 401.
"""

from __future__ import annotations

import io
import json
import math
import re
import time
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import jwt
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from httpx import Response
from pydantic import SecretStr

from api.app import create_app
from api.permissions import ENDPOINTS, KEY_PARAMETER, PUBLIC
from gis.access import ROLE_PERMISSIONS, SYSTEM, Role, audit_log
from gis.access.accounts import create_api_key, revoke_api_key
from gis.incidents import IncidentDraft, IncidentLocation
from gis.incidents import service as incidents
from gis.repository import Database
from gis.settings import Settings
from gis.staff import list_staff
from gis.times import utc_now
from tests._client import PASSWORD, add_user, sign_in, token_headers
from tests.fixtures_access import (
    B_SECRETS,
    BEAT_X,
    GRID_A,
    GRID_B,
    MICRO_A,
    STATION,
    load_two_grids,
)

IN_A = {"x": 118.51, "y": 24.94}
IN_B = {"x": 118.53, "y": 24.94}
MISSING_CODE = "350502001001009"


@pytest.fixture
def city(db: Database, tmp_path: Path) -> Database:
    load_two_grids(db, tmp_path)
    # One incident in each grid (B's names its grid worker 王乙: a secret for A).
    for point in (IN_A, IN_B):
        location = IncidentLocation(point["x"], point["y"], "cgcs2000")
        report = IncidentDraft("12345", "0101", "占道", location, None, utc_now())
        incidents.intake(db, SYSTEM, report)
    return db


def incident_in(db: Database, grid: str) -> int:
    """Return the id of the incident located in ``grid``, or a missing id."""
    found = incidents.search(db, SYSTEM, unit=f"governance:{grid}")
    return found[0].id if found else 999_999_999


def public_id_in(db: Database, grid: str) -> str:
    """Return the public id (Open311's service_request_id) of the incident in ``grid``."""
    found = incidents.search(db, SYSTEM, unit=f"governance:{grid}")
    return found[0].public_id if found else "20260101-00000000"


@pytest.fixture
def app(city: Database) -> FastAPI:
    return create_app(Settings(database_url=city.url, load_sample_city=False), db=city)


@pytest.fixture
def client(app: FastAPI) -> Iterator[TestClient]:
    with TestClient(app) as test_client:
        yield test_client


def operations(client: TestClient) -> list[tuple[str, str]]:
    """Every (METHOD, path template) of the live OpenAPI spec."""
    spec = client.get("/openapi.json").json()
    return sorted(
        (method.upper(), path) for path, methods in spec["paths"].items() for method in methods
    )


def staff_id(db: Database, unit: str) -> int:
    return next(m.id for m in list_staff(db) if m.unit_code == unit)


def path_values(db: Database, grid: str) -> dict[str, str]:
    """Path parameters naming ``grid`` and its things."""
    building = {GRID_A: "BA-1", GRID_B: "BB-1"}.get(grid, "BX-9")
    staff = str(staff_id(db, grid)) if grid in (GRID_A, GRID_B) else "999999"
    return {
        "layer": "governance",
        "code": grid,
        "key": building,
        "staff_id": staff,
        "username": "nobody-here",
        "key_id": "0123456789ab",
        "import_id": str(import_of(db, grid)),
        # The tile over micro-grid B1 and building BB-1 (zoom 15).
        "level": "micro_grid",
        "z": "15",
        "x": str(_tile_x(118.53125, 15)),
        "y": str(_tile_y(24.9375, 15)),
        "changeset_id": "999999",  # no change set in this city: B's answer as a missing one's
        "route_id": "999999",  # no stored route in this city
        "incident_id": str(incident_in(db, grid)),
        # Open311 (GeoReport v2): the answer format and ids of things not there.
        "format": "json",
        "service_code": "0101",
        "service_request_id": public_id_in(db, grid),
        "token": "no-such-token",
    }


def _tile_x(lon: float, z: int) -> int:
    return int((lon + 180) / 360 * (1 << z))


def _tile_y(lat: float, z: int) -> int:
    return int((1 - math.asinh(math.tan(math.radians(lat))) / math.pi) / 2 * (1 << z))


def import_of(db: Database, grid: str) -> int:
    """Return the import that wrote ``grid`` (the grid level's), or a missing id."""
    from gis.units import import_history

    for entry in import_history(db, layer="governance", limit=1000):
        if grid in entry["codes"]:
            return int(entry["id"])
    return 999_999


def body_for(method: str, path: str, grid: str, db: Database) -> dict[str, Any]:
    """Request arguments aimed at ``grid`` for every operation that takes a body."""
    point = {GRID_A: IN_A, GRID_B: IN_B}.get(grid, {"x": 118.575, "y": 24.94})
    bodies: dict[tuple[str, str], dict[str, Any]] = {
        ("POST", "/api/v1/auth/token"): {"data": {"username": "x", "password": "y" * 12}},
        ("POST", "/api/v1/auth/password"): {
            "json": {"current_password": "not-my-password", "new_password": "n" * 8 + "ew-pass"}
        },
        ("POST", "/api/v1/staff"): {
            "json": {"unit_code": grid, "role": "grid_worker", "name": "新人", "phone": None}
        },
        ("POST", "/api/v1/geocode"): {"json": point},
        ("POST", "/api/v1/geocode/batch"): {
            "files": {"file": ("in.csv", f"id,x,y\n1,{point['x']},{point['y']}\n", "text/csv")},
            "params": {"x": "x", "y": "y"},
        },
        ("POST", "/api/v1/admin/users"): {
            "json": {"username": "mallory", "role": "admin", "units": []}
        },
        ("PATCH", "/api/v1/admin/users/{username}"): {"json": {"active": False}},
        ("POST", "/api/v1/admin/users/{username}/password"): {"json": {}},
        ("POST", "/api/v1/admin/api-keys"): {"json": {"name": "k", "role": "admin"}},
        ("POST", "/api/v1/layers/{layer}/edits"): {
            "json": {
                "op": "merge",
                "level": "micro_grid",
                "units": [f"{grid}001", f"{grid}002"],
                "dry_run": True,
            }
        },
        ("POST", "/api/v1/layers/{layer}/changesets/{changeset_id}/revert"): {},
        ("POST", "/api/v1/incidents"): {
            "json": {
                "category": "0101",
                "location": {**point, "datum": "cgcs2000"},
                "description": "seen on the way",
            }
        },
        ("POST", "/api/v1/incidents/{incident_id}/transitions"): {"json": {"action": "accept"}},
        ("POST", "/api/v1/incidents/relocate"): {
            "json": {"ids": [incident_in(db, grid)], "reason": "boundary change"}
        },
        ("POST", "/api/v1/incidents/escalate-overdue"): {},
        ("POST", "/api/v1/layers/{layer}/changesets/{changeset_id}/apply"): {},
        ("POST", "/api/v1/alignment/apply"): {
            "json": {"valid_from": "2027-01-01", "moves": [grid]}
        },
        ("POST", "/api/v1/patrol/plan"): {
            "files": {"network": ("streets.geojson", _street(point), "application/geo+json")},
            "params": {"unit": grid},
        },
        ("POST", "/api/v1/patrol/check"): {
            "files": {
                "network": ("streets.geojson", _street(point), "application/geo+json"),
                "route": ("route.geojson", _street(point), "application/geo+json"),
            },
            "params": {"unit": grid},
        },
        ("POST", "/api/v1/patrol/schedule"): {"json": {"unit": grid}},
        ("POST", "/api/v1/patrol/routes"): {"json": {"unit": grid, "shift": "早班"}},
        ("POST", "/api/v1/patrol/score"): {
            "files": {
                "network": ("streets.geojson", _street(point), "application/geo+json"),
                "track": ("track.gpx", _track(point), "application/gpx+xml"),
            },
            "params": {"unit": grid},
        },
        ("POST", "/open311/v2/requests.{format}"): {
            "data": {
                "service_code": "0101",
                "lat": str(point["y"]),
                "long": str(point["x"]),
                "description": "占道经营",
            }
        },
    }
    if method in ("GET", "DELETE"):
        return {}
    return bodies[(method, path)]


def _street(point: dict[str, float]) -> str:
    x, y = point["x"], point["y"]
    line = [[x - 0.001, y], [x + 0.001, y]]
    return json.dumps(
        {
            "type": "FeatureCollection",
            "features": [
                {
                    "type": "Feature",
                    "properties": {},
                    "geometry": {"type": "LineString", "coordinates": line},
                }
            ],
        }
    )


def _track(point: dict[str, float]) -> str:
    x, y = point["x"], point["y"]
    return (
        '<gpx version="1.1" creator="t" xmlns="http://www.topografix.com/GPX/1/1"><trk><trkseg>'
        f'<trkpt lat="{y}" lon="{x - 0.001}"/><trkpt lat="{y}" lon="{x + 0.001}"/>'
        "</trkseg></trk></gpx>"
    )


def query_variants(grid: str) -> list[dict[str, str]]:
    """Query strings a curious caller might try on list endpoints."""
    return [
        {},
        {"parent": grid},
        {"unit": grid},
        {"layer": "governance", "level": "micro_grid"},
        {"layer": "police"},
        {"layer_a": "governance:micro_grid", "layer_b": "police:beat"},
        {"target": grid},
    ]


def call(client: TestClient, method: str, path: str, grid: str, **extra: Any) -> Response:
    values = path_values(client.app.state.db, grid)  # type: ignore[attr-defined]
    url = re.sub(r"\{(\w+)\}", lambda m: values[m.group(1)], path)
    db = client.app.state.db  # type: ignore[attr-defined]
    arguments = {**body_for(method, path, grid, db), **extra}
    if "params" in extra and "params" in body_for(method, path, grid, db):
        arguments["params"] = {**body_for(method, path, grid, db)["params"], **extra["params"]}
    return client.request(method, url, **arguments)


def leaks(response: Response, *, echoed: tuple[str, ...] = ()) -> list[str]:
    """Every secret of grid B found in a response (codes match whole numbers only).

    ``echoed`` are the caller's own words (path values it sent), which an
    error may repeat: the same as for a missing thing, checked separately.
    """
    text = response.content.decode("utf-8", errors="replace")
    for value in echoed:
        text = text.replace(repr(value), "'…'")
    found = [c for c in B_SECRETS.codes if re.search(rf"(?<![0-9A-Za-z]){c}(?![0-9A-Za-z])", text)]
    return found + [t for t in B_SECRETS.texts if t in text]


def test_every_operation_is_in_the_permission_table(client: TestClient) -> None:
    assert set(operations(client)) == set(ENDPOINTS) | PUBLIC


def test_without_credentials_everything_but_health_and_sign_in_is_401(
    client: TestClient, city: Database
) -> None:
    expired = jwt.encode(
        {"iss": "tongge", "sub": "admin", "ver": 1, "iat": 1, "exp": int(time.time()) - 10},
        Settings().secret_key.get_secret_value(),  # type: ignore[union-attr]
        algorithm="HS256",
    )
    forged = jwt.encode(
        {"iss": "tongge", "sub": "admin", "ver": 1, "iat": 1, "exp": int(time.time()) + 99},
        "not-the-server-key-" * 3,
        algorithm="HS256",
    )
    key, token = create_api_key(city, name="old", role="admin", actor=SYSTEM)
    revoke_api_key(city, key_id=key.key_id, actor=SYSTEM)
    credentials: list[dict[str, str]] = [
        {},
        {"Authorization": "Bearer nonsense"},
        {"Authorization": f"Bearer {expired}"},
        {"Authorization": f"Bearer {forged}"},
        {"Authorization": "Basic YWRtaW46YWRtaW4="},
        {"X-API-Key": token},
        {"X-API-Key": "tg_0123456789ab_guess"},
    ]
    for method, path in operations(client):
        for headers in credentials:
            response = call(client, method, path, GRID_A, headers=headers)
            if (method, path) in PUBLIC:
                assert response.status_code != 401 or path.endswith("/token"), (method, path)
                continue
            if (method, path) in KEY_PARAMETER:
                # Open311 answers a missing or invalid api_key 403, in its error list.
                assert response.status_code == 403, (method, path, headers, response.text)
                assert response.json()[0]["code"] == 403
                continue
            assert response.status_code == 401, (method, path, headers, response.text)
            assert response.headers["content-type"].startswith("application/problem+json")
            assert response.headers["www-authenticate"].startswith("Bearer")
    assert client.get("/health").status_code == 200
    wrong = client.post("/api/v1/auth/token", data={"username": "admin", "password": "x" * 12})
    assert wrong.status_code == 401


def test_grid_worker_of_a_cannot_read_infer_or_change_grid_b(
    client: TestClient, city: Database
) -> None:
    client.headers.update(sign_in(client, city, role="grid_worker", units=[f"governance:{GRID_A}"]))
    staff_before = [m.to_dict() for m in list_staff(city)]
    checked = 0
    for method, path in operations(client):
        variants = query_variants(GRID_B) if method == "GET" and "{" not in path else [{}]
        for params in variants:
            extra = {"params": params} if params else {}
            aimed_at_b = call(client, method, path, GRID_B, **extra)
            assert aimed_at_b.status_code < 500, (method, path, aimed_at_b.text)
            echoed = tuple(path_values(city, GRID_B).values()) if "{" in path else ()
            assert not leaks(aimed_at_b, echoed=echoed), (method, path, params, aimed_at_b.text)
            checked += 1
        if re.search(
            r"\{(code|key|staff_id|username|key_id|incident_id|service_request_id)\}", path
        ):
            # B answers exactly like something that does not exist.
            missing = call(client, method, path, MISSING_CODE)
            aimed_at_b = call(client, method, path, GRID_B)
            assert aimed_at_b.status_code == missing.status_code, (method, path)
            assert aimed_at_b.status_code in (403, 404), (method, path, aimed_at_b.text)
            b_values = path_values(city, GRID_B)
            m_values = path_values(city, MISSING_CODE)
            text = aimed_at_b.text
            for name, value in b_values.items():
                if f"{{{name}}}" not in path:
                    continue  # only what this path names (an id may equal a status code)
                text = re.sub(
                    rf"(?<![0-9A-Za-z-]){re.escape(value)}(?![0-9A-Za-z-])", m_values[name], text
                )
            assert text == missing.text, (method, path)
    assert checked >= len(operations(client))
    assert [m.to_dict() for m in list_staff(city)] == staff_before
    # A's own grid is there, fully.
    own = client.get(f"/api/v1/units/{GRID_A}")
    assert own.status_code == 200
    assert [c["code"] for c in own.json()["children"]] == list(MICRO_A)
    assert own.json()["ancestors"] == []
    homes = client.get(f"/api/v1/units/{GRID_A}/households").json()
    assert sorted(h["key"] for h in homes["households"]) == ["HA-1", "HA-2"]
    located = client.post("/api/v1/geocode", json=IN_A).json()
    governance = {u["level"]: u for u in located["layers"]["governance"]["units"]}
    assert governance["grid"]["code"] == GRID_A
    assert governance["community"]["status"] == "restricted"
    # The police units sharing A's ground are seen (code and name), not beat Y.
    assert [u["code"] for u in located["layers"]["police"]["units"]] == [STATION, BEAT_X]
    assert [p["name"] for p in located["responsible"]] == ["李甲"]
    # A point or an address in B is outside the jurisdiction, like a point in the sea.
    point_b = client.post("/api/v1/geocode", json=IN_B).json()
    sea = client.post("/api/v1/geocode", json={"x": 118.40, "y": 24.80}).json()
    assert point_b["status"] == sea["status"] == "outside_jurisdiction"
    assert {k: v for k, v in point_b.items() if k not in ("input", "lon", "lat")} == {
        k: v for k, v in sea.items() if k not in ("input", "lon", "lat")
    }
    in_b = client.post("/api/v1/geocode", json={"address": "中山南路2号"}).json()
    nowhere = client.post("/api/v1/geocode", json={"address": "中山南路99号"}).json()
    assert in_b["status"] == "outside_jurisdiction" and nowhere["status"] == "unmatched"
    assert list(in_b) == list(nowhere)
    assert in_b["address"] == {
        **nowhere["address"],
        "input": "中山南路2号",
        "parsed": in_b["address"]["parsed"],
    }
    assert not leaks_in(in_b)
    mine = client.post("/api/v1/geocode", json={"address": "中山南路1号"}).json()
    assert mine["status"] == "ok" and mine["address"]["building_key"] == "BA-1"
    listed = client.get("/api/v1/layers/governance/units").json()
    assert sorted(f["id"] for f in listed["features"]) == sorted([GRID_A, *MICRO_A])
    layers = {layer["name"]: layer for layer in client.get("/api/v1/layers").json()}
    assert [lv["unit_count"] for lv in layers["governance"]["levels"]] == [0, 0, 0, 1, 2]


def test_police_officer_sees_own_beat_and_the_grids_on_its_ground(
    client: TestClient, city: Database
) -> None:
    client.headers.update(sign_in(client, city, role="police", units=[f"police:{BEAT_X}"]))
    located = client.post("/api/v1/geocode", json=IN_A).json()
    assert located["layers"]["police"]["units"][-1]["code"] == BEAT_X
    assert located["layers"]["police"]["units"][0]["status"] == "restricted"  # the station
    assert located["layers"]["governance"]["units"][-1]["code"] == MICRO_A[0]
    homes = client.get(f"/api/v1/units/{BEAT_X}/households", params={"layer": "police"}).json()
    assert sorted(h["key"] for h in homes["households"]) == ["HA-1", "HA-2"]
    assert client.get(f"/api/v1/units/{GRID_A}").status_code == 200
    assert client.get(f"/api/v1/units/{GRID_B}").status_code == 404  # it only touches beat X
    assert client.post("/api/v1/geocode", json=IN_B).json()["status"] == "outside_jurisdiction"


def test_roles_get_403_exactly_where_the_table_says(client: TestClient, city: Database) -> None:
    for role in Role:
        units = [] if role is Role.ADMIN else ["governance:350502"]
        headers = token_headers(client, add_user(city, role=role.value, units=units))
        for method, path in operations(client):
            if (method, path) in PUBLIC:
                continue
            # Aimed at nothing that exists, so that a permitted call changes nothing.
            response = call(client, method, path, MISSING_CODE, headers=headers, json={})
            allowed = ENDPOINTS[(method, path)].permission
            permitted = allowed is None or allowed in ROLE_PERMISSIONS[role]
            assert (response.status_code == 403) != permitted, (role, method, path, response.text)


def test_api_key_acts_with_its_role_and_units(client: TestClient, city: Database) -> None:
    _, token = create_api_key(
        city, name="12345 hotline", role="dispatcher", units=[f"governance:{GRID_A}"], actor=SYSTEM
    )
    client.headers["X-API-Key"] = token
    me = client.get("/api/v1/auth/me").json()
    assert me["kind"] == "api_key" and me["role"] == "dispatcher"
    assert client.get("/api/v1/admin/users").status_code == 403
    body = client.post("/api/v1/geocode", json=IN_B).json()
    assert not leaks_in(body)


def leaks_in(body: Any) -> list[str]:
    return leaks(Response(200, json=body))


def test_changes_and_exports_leave_audit_entries(client: TestClient, city: Database) -> None:
    admin = sign_in(client, city, role="admin")
    worker = sign_in(client, city, role="grid_worker", units=[f"governance:{GRID_A}"])
    before = audit_log(city, limit=1000)[1]
    actions: list[str] = []

    def did(action: str, response: Response, status: int = 200) -> None:
        assert response.status_code == status, response.text
        actions.append(action)

    did("units.export", client.get("/api/v1/layers/governance/export", headers=worker))
    did(
        "households.export",
        client.get(f"/api/v1/units/{GRID_A}/households/export", headers=worker),
    )
    did("households.read", client.get(f"/api/v1/units/{GRID_A}/households", headers=worker))
    did("staff.read", client.get("/api/v1/staff", headers=worker))
    created = client.post(
        "/api/v1/staff",
        headers=admin,
        json={"unit_code": MICRO_A[0], "role": "volunteer", "name": "志愿者张"},
    )
    did("staff.create", created, 201)
    did("staff.end", client.delete(f"/api/v1/staff/{created.json()['id']}", headers=admin), 204)
    user = client.post(
        "/api/v1/admin/users",
        headers=admin,
        json={"username": "zhao", "role": "viewer", "units": [f"governance:{GRID_A}"]},
    )
    did("user.create", user, 201)
    password = user.json()["password"]
    assert password and len(password) >= 12
    did(
        "user.update",
        client.patch("/api/v1/admin/users/zhao", headers=admin, json={"role": "planner"}),
    )
    did("user.password", client.post("/api/v1/admin/users/zhao/password", headers=admin, json={}))
    key = client.post(
        "/api/v1/admin/api-keys",
        headers=admin,
        json={"name": "12345", "role": "dispatcher", "units": [f"governance:{GRID_A}"]},
    )
    did("api_key.create", key, 201)
    did(
        "api_key.revoke",
        client.delete(f"/api/v1/admin/api-keys/{key.json()['key_id']}", headers=admin),
    )
    batch = client.post(
        "/api/v1/geocode/batch",
        headers=admin,
        params={"x": "x", "y": "y"},
        files={"file": ("in.csv", "id,x,y\n1,118.51,24.94\n2,118.53,24.94\n", "text/csv")},
    )
    did("geocode.batch", batch)
    entries, total = audit_log(city, limit=1000)
    assert total == before + len(actions)
    newest_first = [e.action for e in entries[: len(actions)]]
    assert newest_first == list(reversed(actions))
    for entry in entries[: len(actions)]:
        assert entry.actor and entry.role and entry.client == "testclient"
        assert "HA-1" not in str(entry.detail)  # counts, never the personal data itself
    page = client.get("/api/v1/admin/audit", headers=admin, params={"action": "households"}).json()
    assert [e["action"] for e in page["entries"]] == ["households.read", "households.export"]
    # Times are ISO 8601 in UTC with the Z designator (was "+00:00Z", which no parser reads).
    stamps = [e["at"] for e in page["entries"]] + [user.json()["created_at"]]
    stamps += [key.json()["created_at"]]
    for stamp in stamps:
        assert stamp.endswith("Z") and "+" not in stamp
        assert datetime.fromisoformat(stamp).utcoffset() == timedelta(0)
    assert client.get("/api/v1/admin/audit", headers=worker).status_code == 403
    # A disabled user and a reset password end earlier tokens at once.
    zhao = token_headers_for(
        client,
        "zhao",
        client.post("/api/v1/admin/users/zhao/password", headers=admin, json={}).json()["password"],
    )
    assert client.get("/api/v1/auth/me", headers=zhao).status_code == 200
    client.patch("/api/v1/admin/users/zhao", headers=admin, json={"active": False})
    assert client.get("/api/v1/auth/me", headers=zhao).status_code == 401


def token_headers_for(client: TestClient, username: str, password: str) -> dict[str, str]:
    response = client.post("/api/v1/auth/token", data={"username": username, "password": password})
    assert response.status_code == 200, response.text
    return {"Authorization": f"Bearer {response.json()['access_token']}"}


def test_failed_sign_in_is_audited_and_rate_limited(client: TestClient, city: Database) -> None:
    name = add_user(city, role="viewer", units=[f"governance:{GRID_A}"])
    started = time.monotonic()
    statuses: list[int] = []
    while True:
        response = client.post("/api/v1/auth/token", data={"username": name, "password": "x" * 15})
        statuses.append(response.status_code)
        # Stop at a refusal that leaves time for one more request (a refusal
        # about to expire would let the next attempt through).
        if response.status_code == 429 and int(response.headers["retry-after"]) >= 2:
            break
        assert len(statuses) < 40, str(statuses)
    # 10 per minute, bursts of 10: the bucket refills one attempt per 6 s, so
    # a slow machine (each failed check hashes a password) gets a few more.
    refilled = math.ceil((time.monotonic() - started) / 6)
    failures = statuses.count(401)
    assert statuses[:10] == [401] * 10 and set(statuses) == {401, 429}
    assert 10 <= failures <= 10 + refilled
    limited = client.post("/api/v1/auth/token", data={"username": name, "password": PASSWORD})
    assert limited.status_code == 429 and int(limited.headers["retry-after"]) >= 1
    failed = audit_log(city, action="auth.failed")[0]
    assert len(failed) == failures and failed[0].actor == name


def test_api_key_rate_limit_answers_429(client: TestClient, city: Database) -> None:
    _, token = create_api_key(
        city,
        name="slow",
        role="viewer",
        units=[f"governance:{GRID_A}"],
        rate_per_minute=3,
        actor=SYSTEM,
    )
    statuses = [
        client.get("/api/v1/layers", headers={"X-API-Key": token}).status_code for _ in range(5)
    ]
    assert statuses == [200, 200, 200, 429, 429]
    fast = client.post("/api/v1/geocode", json=IN_A, headers={"X-API-Key": token})
    assert fast.status_code in (403, 429)


def test_safe_defaults(client: TestClient, city: Database, app: FastAPI) -> None:
    headers = sign_in(client, city)
    response = client.get("/api/v1/layers", headers={**headers, "Origin": "https://evil.example"})
    for name, value in {
        "x-content-type-options": "nosniff",
        "x-frame-options": "DENY",
        "referrer-policy": "no-referrer",
        "cache-control": "no-store",
    }.items():
        assert response.headers[name] == value
    assert "default-src 'none'" in response.headers["content-security-policy"]
    assert "access-control-allow-origin" not in response.headers  # CORS off by default
    docs = client.get("/docs")
    assert docs.status_code == 200 and "/static/docs/swagger-ui-bundle.js" in docs.text
    assert "https:" not in docs.headers["content-security-policy"]  # nothing from outside
    big = client.post(
        "/api/v1/staff",
        headers={**headers, "content-type": "application/json"},
        content=b"{" + b" " * (2 * 1024 * 1024) + b"}",
    )
    assert big.status_code == 413 and big.headers["content-type"].startswith("application/problem")
    injected = client.get("/api/v1/units/' OR '1'='1", headers=headers)
    assert injected.status_code == 404
    assert client.get("/api/v1/units/x%00y", headers=headers).status_code == 400
    nul = client.post(
        "/api/v1/staff",
        headers=headers,
        json={"unit_code": GRID_A, "role": "volunteer", "name": "a\u0000b"},
    )
    assert nul.status_code == 400 and nul.json()["field"] == "name"


def test_cors_when_configured(city: Database) -> None:
    settings = Settings(
        database_url=city.url, load_sample_city=False, cors_origins=["https://map.example.gov.cn"]
    )
    with TestClient(create_app(settings, db=city)) as client:
        preflight = client.options(
            "/api/v1/layers",
            headers={
                "Origin": "https://map.example.gov.cn",
                "Access-Control-Request-Method": "GET",
                "Access-Control-Request-Headers": "Authorization",
            },
        )
        assert preflight.headers["access-control-allow-origin"] == "https://map.example.gov.cn"
        other = client.get("/health", headers={"Origin": "https://evil.example"})
        assert "access-control-allow-origin" not in other.headers


def test_app_refuses_to_start_without_a_signing_key(city: Database) -> None:
    from gis.errors import InputError

    with pytest.raises(InputError, match="TONGGE_SECRET_KEY"):
        create_app(
            Settings(database_url=city.url, load_sample_city=False, secret_key=None), db=city
        )
    with pytest.raises(InputError, match="32"):
        create_app(
            Settings(database_url=city.url, load_sample_city=False, secret_key=SecretStr("short")),
            db=city,
        )


def test_batch_output_keeps_codes_of_the_jurisdiction_only(
    client: TestClient, city: Database
) -> None:
    client.headers.update(sign_in(client, city, role="grid_worker", units=[f"governance:{GRID_A}"]))
    upload = io.BytesIO(b"id,x,y\na,118.51,24.94\nb,118.53,24.94\n")
    result = client.post(
        "/api/v1/geocode/batch",
        params={"x": "x", "y": "y"},
        files={"file": ("points.csv", upload, "text/csv")},
    )
    assert result.status_code == 403  # grid workers may not batch-geocode
    planner = sign_in(client, city, role="planner", units=[f"governance:{GRID_A}"])
    upload.seek(0)
    result = client.post(
        "/api/v1/geocode/batch",
        headers=planner,
        params={"x": "x", "y": "y"},
        files={"file": ("points.csv", upload, "text/csv")},
    )
    rows = result.text.strip().splitlines()
    assert GRID_A in rows[1] and rows[1].endswith(",ok")
    assert GRID_B not in result.text and rows[2].endswith(",outside_jurisdiction")
