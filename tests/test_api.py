"""HTTP API on both dialects: health, layers, paged GeoJSON units, unit detail, errors."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import shapely
from fastapi.testclient import TestClient
from httpx import Response

from api.app import create_app
from api.permissions import ENDPOINTS, PUBLIC
from gis.repository import Database
from gis.settings import Settings
from tests._client import signed_in
from tests.fixtures_governance import COMMUNITIES, load_governance


@pytest.fixture
def client(db: Database) -> Iterator[TestClient]:
    load_governance(db)
    app = create_app(Settings(database_url=db.url, load_sample_city=False), db=db)
    with signed_in(db, app=app) as test_client:
        yield test_client


def assert_problem(response: Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body = response.json()
    assert body["status"] == status and body["title"] and body["detail"]
    return body


def test_health(client: TestClient, db: Database) -> None:
    body = client.get("/health").json()
    assert body["status"] == "ok" and body["database"] == db.dialect


def test_layers_list_levels_in_order_with_counts(client: TestClient) -> None:
    layers = client.get("/api/v1/layers").json()
    governance = next(layer for layer in layers if layer["name"] == "governance")
    assert [lv["name"] for lv in governance["levels"]][:3] == ["county", "street", "community"]
    assert [lv["unit_count"] for lv in governance["levels"]] == [1, 2, 4, 0, 0]


def test_units_are_geojson_pages(client: TestClient) -> None:
    first = client.get("/api/v1/layers/governance/units", params={"level": "community", "limit": 3})
    body = first.json()
    assert body["type"] == "FeatureCollection"
    assert body["numberMatched"] == 4 and body["numberReturned"] == 3
    assert [link["rel"] for link in body["links"]] == ["next"]
    feature = body["features"][0]
    assert feature["id"] == "350502001001"
    assert feature["properties"]["parent_code"] == "350502001"
    assert feature["properties"]["valid_from"] == "2025-12-31T16:00:00Z"  # 2026-01-01 China time
    geometry = shapely.geometry.shape(feature["geometry"])
    assert geometry.equals(COMMUNITIES["350502001001"])
    rest = client.get(body["links"][0]["href"]).json()
    assert [f["id"] for f in rest["features"]] == ["350502002002"]


def test_units_filter_by_parent_and_bbox(client: TestClient) -> None:
    children = client.get("/api/v1/layers/governance/units", params={"parent": "350502002"}).json()
    assert [f["id"] for f in children["features"]] == ["350502002001", "350502002002"]
    boxed = client.get(
        "/api/v1/layers/governance/units",
        params={"level": "community", "bbox": "118.52,24.93,118.54,24.94"},
    ).json()
    assert [f["id"] for f in boxed["features"]] == ["350502001001"]


def test_unit_detail_has_ancestors_and_children(client: TestClient) -> None:
    body = client.get("/api/v1/units/350502001").json()
    assert body["type"] == "Feature" and body["id"] == "350502001"
    assert [a["code"] for a in body["ancestors"]] == ["350502"]
    assert [c["code"] for c in body["children"]] == ["350502001001", "350502001002"]


def test_versions_by_time(client: TestClient) -> None:
    assert client.get("/api/v1/units/350502", params={"at": "2025-06-01"}).status_code == 404
    assert client.get("/api/v1/units/350502", params={"at": "2026-06-01"}).status_code == 200


@pytest.mark.parametrize(
    ("path", "params", "status"),
    [
        ("/api/v1/units/999", {}, 404),
        ("/api/v1/layers/nope/units", {}, 404),
        ("/api/v1/layers/governance/units", {"level": "beat"}, 404),
        ("/api/v1/layers/governance/units", {"bbox": "1,2,3"}, 400),
        ("/api/v1/layers/governance/units", {"bbox": "10,20,5,30"}, 400),
        ("/api/v1/layers/governance/units", {"bbox": "a,b,c,d"}, 400),
        ("/api/v1/layers/governance/units", {"limit": 0}, 422),
        ("/api/v1/layers/governance/units", {"limit": 5000}, 422),
        ("/api/v1/layers/governance/units", {"offset": -1}, 422),
        ("/api/v1/layers/governance/units", {"at": "yesterday"}, 400),
        ("/api/v1/nothing-here", {}, 404),
    ],
)
def test_bad_requests_get_problem_json(
    client: TestClient, path: str, params: dict, status: int
) -> None:
    assert_problem(client.get(path, params=params), status)


def test_openapi_documents_every_route(client: TestClient) -> None:
    spec = client.get("/openapi.json").json()
    documented = {
        (method.upper(), path)
        for path, operations in spec["paths"].items()
        for method in operations
    }
    assert documented == set(ENDPOINTS) | PUBLIC
    assert "GeocodeRequest" in spec["components"]["schemas"]
    assert set(spec["components"]["securitySchemes"]) == {"OAuth2", "ApiKey"}
    for path, operations in spec["paths"].items():
        for method, operation in operations.items():
            assert operation.get("summary"), path
            assert operation.get("description"), path
            assert {"200", "201", "204"} & set(operation["responses"]), path
            if (method.upper(), path) not in PUBLIC:
                assert "401" in operation["responses"], path


def test_page_size_limit_is_the_configured_one(db: Database) -> None:
    load_governance(db)
    settings = Settings(database_url=db.url, load_sample_city=False, page_size_limit=2)
    with signed_in(db, app=create_app(settings, db=db)) as small:
        page = small.get("/api/v1/layers/governance/units", params={"limit": 2})
        assert page.status_code == 200 and len(page.json()["features"]) == 2
        body = assert_problem(
            small.get("/api/v1/layers/governance/units", params={"limit": 3}), 422
        )
        assert body["errors"][0]["field"] == "limit" and "TONGGE_PAGE_SIZE_LIMIT" in body["detail"]
        # Without a limit the page is the default one, cut to this server's largest.
        assert len(small.get("/api/v1/layers/governance/units").json()["features"]) == 2
