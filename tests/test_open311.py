"""Open311 GeoReport v2 under /open311/v2/: the standard's requests, on both databases.

Requests follow the GeoReport v2 examples (form-encoded POST with
``api_key``, ``service_code``, ``lat``/``long``; ``.json`` and ``.xml``
answers; errors as the standard's list). The tiny city of
``tests/fixtures_access.py``: grid A (甲) and grid B (乙), a dispatcher key
for each grid.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
import xmltodict
from fastapi.testclient import TestClient
from georeport import GeoReport

from api.app import create_app
from gis.access import SYSTEM
from gis.access.accounts import create_api_key
from gis.datum import wgs84_to_gcj02
from gis.incidents import IdempotencyConflict, IntakeResult, service
from gis.incidents import open311 as spec
from gis.incidents.taxonomy import load_taxonomy
from gis.repository import Database
from gis.settings import Settings
from tests._webserver import serve
from tests.fixtures_access import GRID_A, GRID_B, MICRO_A, load_two_grids

IN_A = (118.505, 24.94)  # micro-grid A1 of grid A
IN_B = (118.53, 24.94)  # micro-grid B1 of grid B
BASE = "/open311/v2"


@dataclass
class City:
    client: TestClient
    db: Database
    key_a: str
    key_b: str


def _key(db: Database, unit: str, role: str = "dispatcher") -> str:
    _, token = create_api_key(
        db,
        name=f"app {unit} {role}",
        role=role,
        units=[f"governance:{unit}"],
        rate_per_minute=100_000,
        actor=SYSTEM,
    )
    return token


@pytest.fixture
def city(db: Database, tmp_path: Path) -> Iterator[City]:
    load_two_grids(db, tmp_path)
    key_a, key_b = _key(db, GRID_A), _key(db, GRID_B)
    app = create_app(Settings(database_url=db.url, load_sample_city=False), db=db)
    with TestClient(app) as client:
        yield City(client, db, key_a, key_b)


def _post(
    city: City, *, key: str | None = None, at: tuple[float, float] = IN_A, **fields: str
) -> tuple[int, object]:
    form = {
        "api_key": key or city.key_a,
        "service_code": "0101",
        "lat": str(at[1]),
        "long": str(at[0]),
        "description": "人行道上有流动摊贩占道经营",
        "first_name": "张",
        "phone": "13800000000",
        **fields,
    }
    headers = {}
    if "idempotency_key" in form:
        headers["Idempotency-Key"] = form.pop("idempotency_key")
    answer = city.client.post(f"{BASE}/requests.json", data=form, headers=headers)
    return answer.status_code, answer.json()


def _error(answer: object, status: int) -> str:
    # The standard's error list: [{"code": ..., "description": ...}].
    assert isinstance(answer, list) and len(answer) >= 1, answer
    assert answer[0]["code"] == status
    assert set(answer[0]) == {"code", "description"}
    return str(answer[0]["description"])


def test_services_are_public_in_json_and_xml(city: City) -> None:
    client = city.client
    services = client.get(f"{BASE}/services.json")
    assert services.status_code == 200
    by_code = {s["service_code"]: s for s in services.json()}
    assert by_code["0202"]["service_name"].startswith("井盖缺失")
    assert by_code["0202"]["type"] == "realtime" and by_code["0202"]["metadata"] is False
    assert by_code["0202"]["group"].startswith("公共设施")

    xml = client.get(f"{BASE}/services.xml")
    assert xml.headers["content-type"].startswith("text/xml")
    parsed = xmltodict.parse(xml.content)["services"]["service"]
    assert [s["service_code"] for s in parsed] == list(by_code)

    definition = client.get(f"{BASE}/services/0202.json")
    assert definition.json() == {"service_code": "0202", "attributes": []}
    missing = client.get(f"{BASE}/services/9999.json")
    assert missing.status_code == 404
    assert "9999" in _error(missing.json(), 404)
    assert client.get(f"{BASE}/services.yaml").status_code == 400
    missing_xml = client.get(f"{BASE}/services/9999.xml")
    assert missing_xml.status_code == 404
    assert missing_xml.headers["content-type"].startswith("text/xml")
    error = xmltodict.parse(missing_xml.content)["errors"]["error"]
    assert error["code"] == "404" and "9999" in error["description"]
    discovery = client.get(f"{BASE}/discovery.json").json()
    assert discovery["endpoints"][0]["url"].endswith(BASE)
    assert "text/xml" in discovery["endpoints"][0]["formats"]


def test_post_then_read_back_within_the_key_s_jurisdiction(city: City) -> None:
    status, answer = _post(city)
    assert status == 201
    assert isinstance(answer, list)
    request_id = answer[0]["service_request_id"]
    assert answer[0]["service_notice"]

    one = city.client.get(f"{BASE}/requests/{request_id}.json", params={"api_key": city.key_a})
    assert one.status_code == 200
    [item] = one.json()
    assert item["service_request_id"] == request_id
    assert item["status"] == "open" and item["service_code"] == "0101"
    assert item["description"] == "人行道上有流动摊贩占道经营"
    assert item["agency_responsible"] == f"governance:{MICRO_A[0]}"
    assert item["lat"] == pytest.approx(IN_A[1]) and item["long"] == pytest.approx(IN_A[0])
    assert item["requested_datetime"].endswith("+08:00")
    # The key of grid B does not see it: not found, as if it did not exist.
    other = city.client.get(f"{BASE}/requests/{request_id}.json", params={"api_key": city.key_b})
    assert other.status_code == 404
    _error(other.json(), 404)
    listed_b = city.client.get(f"{BASE}/requests.json", params={"api_key": city.key_b})
    assert listed_b.json() == []
    listed_a = city.client.get(f"{BASE}/requests.json", params={"api_key": city.key_a})
    assert [i["service_request_id"] for i in listed_a.json()] == [request_id]
    # The usual header works as well as the parameter.
    by_header = city.client.get(
        f"{BASE}/requests/{request_id}.xml", headers={"X-API-Key": city.key_a}
    )
    request = xmltodict.parse(by_header.content)["service_requests"]["request"]
    assert request["service_request_id"] == request_id


def test_keys_are_required_and_checked(city: City) -> None:
    client = city.client
    for answer in (
        client.get(f"{BASE}/requests.json"),
        client.get(f"{BASE}/requests.json", params={"api_key": "tg_nope.nope"}),
        client.post(f"{BASE}/requests.json", data={"service_code": "0101", "lat": "24.94"}),
        client.get(f"{BASE}/tokens/abc.json"),
    ):
        assert answer.status_code == 403
        _error(answer.json(), 403)
    # A viewer's key may not post (its role has no incidents:report).
    viewer = _key(city.db, GRID_A, role="viewer")
    status, answer = _post(city, key=viewer)
    assert status == 403 and "incidents:report" in _error(answer, 403)


def test_idempotency_key_returns_the_same_request_and_refuses_another_body(city: City) -> None:
    status, first = _post(city, idempotency_key="app-42-0001")
    assert status == 201 and isinstance(first, list)
    status, again = _post(city, idempotency_key="app-42-0001")
    assert status == 200 and isinstance(again, list)
    assert again[0]["service_request_id"] == first[0]["service_request_id"]
    assert again[0]["token"] == "app-42-0001"
    status, conflict = _post(city, idempotency_key="app-42-0001", description="另一件事")
    assert status == 409
    _error(conflict, 409)
    # The token (the key) names the request, for the key's own caller only.
    token = city.client.get(f"{BASE}/tokens/app-42-0001.json", params={"api_key": city.key_a})
    assert token.json() == [
        {"service_request_id": first[0]["service_request_id"], "token": "app-42-0001"}
    ]
    assert (
        city.client.get(
            f"{BASE}/tokens/app-42-0001.json", params={"api_key": city.key_b}
        ).status_code
        == 404
    )
    listed = city.client.get(f"{BASE}/requests.json", params={"api_key": city.key_a}).json()
    assert len(listed) == 1


def test_racing_posts_with_one_key_make_one_request(city: City) -> None:
    answers: list[tuple[int, object]] = []
    start = threading.Barrier(6)

    def post() -> None:
        start.wait()
        answers.append(_post(city, idempotency_key="race-open311"))

    threads = [threading.Thread(target=post) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    # Each arrived at its own time: the retries take the first one's, no 409.
    assert sorted(status for status, _ in answers) == [200, 200, 200, 200, 200, 201]
    ids = {answer[0]["service_request_id"] for _, answer in answers}  # type: ignore[index]
    assert len(ids) == 1
    listed = city.client.get(f"{BASE}/requests.json", params={"api_key": city.key_a}).json()
    assert [i["service_request_id"] for i in listed] == list(ids)


def test_a_retry_sent_later_is_the_same_request(city: City) -> None:
    form = {"service_code": "0101", "lat": str(IN_A[1]), "long": str(IN_A[0])}
    first_time = datetime.now(UTC) - timedelta(minutes=5)
    taxonomy = load_taxonomy(None)

    def post(at: datetime, **extra: str) -> IntakeResult:
        return spec.intake_request(
            city.db,
            SYSTEM,
            {**form, **extra},
            taxonomy=taxonomy,
            idempotency_key="k1",
            now=at,
        )

    first = post(first_time)
    again = post(first_time + timedelta(seconds=3))
    assert (first.created, again.created) == (True, False)
    assert again.incident.id == first.incident.id
    # No event time in the standard's POST: the incident's is when it was received.
    assert first.incident.event_time == first.incident.received_at == first_time
    with pytest.raises(IdempotencyConflict):
        post(first_time + timedelta(seconds=5), description="another")


def test_gcj02_and_bd09_coordinates_are_declared_with_datum(city: City) -> None:
    lon, lat = (float(v[0]) for v in wgs84_to_gcj02([IN_B[0]], [IN_B[1]]))
    status, answer = _post(city, key=city.key_b, at=(lon, lat), datum="gcj02")
    assert status == 201 and isinstance(answer, list)
    [item] = city.client.get(
        f"{BASE}/requests/{answer[0]['service_request_id']}.json", params={"api_key": city.key_b}
    ).json()
    assert item["agency_responsible"].startswith(f"governance:{GRID_B}")
    assert item["long"] == pytest.approx(IN_B[0], abs=1e-5)
    # The same numbers taken as WGS84 lie ~500 m away: not silently "corrected".
    status, answer = _post(city, key=city.key_b, at=(lon, lat), datum="gps")
    assert status == 400 and "datum" in _error(answer, 400)


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"service_code": "9999"}, "9999"),
        ({"service_code": ""}, "service_code"),
        ({"lat": "", "long": ""}, "lat"),
        ({"lat": "north"}, "lat"),
        ({"long": "200"}, "long"),
        ({"lat": ""}, "lat"),
        ({"media_url": "javascript:alert(1)"}, "media_url"),
        ({"phone": "350502199001011234"}, "ID number"),
        ({"description": "身份证 35050219900101123X 的人"}, "ID number"),
        ({"description": "x" * 4001}, "description"),
        ({"address_id": "A1", "lat": "", "long": ""}, "address_id"),
    ],
)
def test_bad_posts_are_400_and_store_nothing(
    city: City, fields: dict[str, str], field: str
) -> None:
    status, answer = _post(city, **fields)  # type: ignore[arg-type]
    assert status == 400, answer
    assert field in _error(answer, 400)
    assert city.client.get(f"{BASE}/requests.json", params={"api_key": city.key_a}).json() == []


def test_an_oversize_body_is_413_in_the_standard_s_form(city: City) -> None:
    answer = city.client.post(
        f"{BASE}/requests.json",
        data={"api_key": city.key_a, "service_code": "0101", "description": "x" * 2_000_000},
    )
    assert answer.status_code == 413
    _error(answer.json(), 413)


def test_requests_filters_status_service_code_dates_and_ids(city: City) -> None:
    ids = []
    for code in ("0101", "0202", "0303"):
        status, answer = _post(city, service_code=code)
        assert status == 201 and isinstance(answer, list)
        ids.append(answer[0]["service_request_id"])
    # Close the first through its lifecycle (as the grid's people would).
    incident = service.search(city.db, SYSTEM, category="0101")[0]
    for action in ("accept", "resolve", "close"):
        score = 5 if action == "close" else None
        incident = service.transition(city.db, SYSTEM, incident.id, action, feedback_score=score)
    assert incident.status == "closed"

    def ids_for(**params: str) -> list[str]:
        answer = city.client.get(f"{BASE}/requests.json", params={"api_key": city.key_a, **params})
        assert answer.status_code == 200, answer.text
        return sorted(i["service_request_id"] for i in answer.json())

    assert ids_for(status="closed") == [ids[0]]
    assert ids_for(status="open") == sorted(ids[1:])
    assert ids_for(status="open,closed") == sorted(ids)
    assert ids_for(service_code="0202,0303") == sorted(ids[1:])
    assert ids_for(service_request_id=f"{ids[2]},{ids[0]},nope") == sorted([ids[0], ids[2]])
    now = datetime.now(UTC)
    assert ids_for(start_date=(now - timedelta(hours=1)).isoformat()) == sorted(ids)
    assert ids_for(end_date=(now - timedelta(days=1)).isoformat()) == []
    closed = city.client.get(
        f"{BASE}/requests/{ids[0]}.json", params={"api_key": city.key_a}
    ).json()[0]
    assert closed["status"] == "closed" and closed["status_notes"].startswith("已结案")
    for params, field in (
        ({"status": "pending"}, "status"),
        ({"start_date": "2026-13-45"}, "start_date"),
        ({"start_date": "2026-01-01", "end_date": "2026-06-01"}, "90 days"),
        ({"service_code": "9999"}, "9999"),
        ({"page_size": "0"}, "page_size"),
    ):
        answer = city.client.get(f"{BASE}/requests.json", params={"api_key": city.key_a, **params})
        assert answer.status_code == 400, params
        assert field in _error(answer.json(), 400)


def test_public_read_mode_shows_status_category_and_unit_only(db: Database, tmp_path: Path) -> None:
    load_two_grids(db, tmp_path)
    key = _key(db, GRID_A)
    settings = Settings(database_url=db.url, load_sample_city=False, open311_public_read=True)
    with TestClient(create_app(settings, db=db)) as client:
        posted = client.post(
            f"{BASE}/requests.json",
            data={
                "api_key": key,
                "service_code": "0202",
                "lat": str(IN_A[1]),
                "long": str(IN_A[0]),
                "description": "井盖丢了",
                "first_name": "王",
                "phone": "13900000009",
            },
        )
        assert posted.status_code == 201
        request_id = posted.json()[0]["service_request_id"]
        for answer in (
            client.get(f"{BASE}/requests.json"),
            client.get(f"{BASE}/requests/{request_id}.json"),
        ):
            assert answer.status_code == 200
            [item] = answer.json()
            assert item == {
                "service_request_id": request_id,
                "status": "open",
                "service_code": "0202",
                "service_name": item["service_name"],
                "agency_responsible": f"governance:{MICRO_A[0]}",
            }
            assert "井盖丢了" not in answer.text and "13900000009" not in answer.text
        # Still no anonymous posts or tokens.
        anonymous = client.post(f"{BASE}/requests.json", data={"service_code": "0202"})
        assert anonymous.status_code == 403
        assert client.get(f"{BASE}/tokens/{request_id}.json").status_code == 403


@dataclass(frozen=True)
class Served:
    url: str
    db: Database
    key: str


@pytest.fixture
def served(db: Database, tmp_path: Path) -> Iterator[Served]:
    """Serve the city on a free loopback port (public-read mode on), for a client library."""
    load_two_grids(db, tmp_path)
    key = _key(db, GRID_A)
    with serve(db, ready=False, open311_public_read=True) as url:
        yield Served(f"{url}{BASE}", db, key)


@pytest.mark.parametrize("output", ["json", "xml"])
def test_the_georeport_client_from_pypi_reads_us_unchanged(served: Served, output: str) -> None:
    """``georeport`` (PyPI) reads services and requests; it posts nothing and sends no key."""
    posted = httpx.post(
        f"{served.url}/requests.json",
        data={
            "api_key": served.key,
            "service_code": "0203",
            "lat": str(IN_A[1]),
            "long": str(IN_A[0]),
            "description": "路灯不亮",
        },
    )
    assert posted.status_code == 201, posted.text
    request_id = posted.json()[0]["service_request_id"]

    client = GeoReport(served.url, output_format=output)
    services = client.get_service_list()
    assert "0203" in [s["service_code"] for s in services]
    definition = client.get_service_definition("0203")
    assert definition["service_code"] == "0203"
    # Reads without a key: the public-read mode's status, category and unit.
    requests = client.get_service_requests(status="open", service_code="0203")
    if isinstance(requests, dict):  # xmltodict: one element is not a list
        requests = [requests]
    assert [r["service_request_id"] for r in requests] == [request_id]
    one = client.get_service_request(request_id)
    assert one["status"] == "open" and one["service_code"] == "0203"
    assert one["agency_responsible"] == f"governance:{MICRO_A[0]}"
    assert "description" not in one
