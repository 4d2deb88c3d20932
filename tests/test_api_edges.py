"""The HTTP edge: blocking work off the loop, no timing oracle, strict bodies, documented errors.

Regressions of the security issue: items 3 (a batch upload froze /health
and every locate), 6 (a hidden unit cost three times a missing one) and 13
(declared oversize bodies were read; ``"118.58"`` and ``true`` were coerced;
400 and problem+json 422 answers were undocumented).
"""

from __future__ import annotations

import asyncio
import io
import threading
from collections.abc import Iterator, MutableMapping
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import event

from api.app import create_app
from gis.repository import Database
from gis.settings import Settings
from tests._client import sign_in, signed_in
from tests.fixtures_access import GRID_A, GRID_B, load_two_grids


@pytest.fixture
def city(db: Database, tmp_path: Path) -> Database:
    load_two_grids(db, tmp_path)
    return db


@pytest.fixture
def admin(city: Database) -> Iterator[TestClient]:
    with signed_in(city) as client:
        yield client


def test_a_batch_job_in_a_thread_does_not_stop_other_requests(
    city: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With ``batch_processes=False`` the job runs in a thread, off the event loop."""
    import gis.locate.batch as batch_module

    settings = Settings(database_url=city.url, load_sample_city=False, batch_processes=False)
    with signed_in(city, settings=settings) as admin:
        _batch_while_others_ask(admin, monkeypatch, batch_module)


def test_a_batch_job_runs_in_a_worker_process(admin: TestClient) -> None:
    upload = pd.DataFrame({"x": [118.51, 118.53, 0.0], "y": [24.94, 24.94, 0.0]}).to_csv(
        index=False
    )
    response = admin.post(
        "/api/v1/geocode/batch",
        params={"x": "x", "y": "y"},
        files={"file": ("three.csv", upload.encode(), "text/csv")},
    )
    assert response.status_code == 200, response.text
    located = pd.read_csv(io.BytesIO(response.content), dtype=str)
    assert located["governance_grid"].tolist()[:2] == [GRID_A, GRID_B]
    assert located["status"].tolist() == ["ok", "ok", "outside"]
    # A worker's input errors come back as the same problem answers.
    bad = admin.post(
        "/api/v1/geocode/batch",
        params={"x": "lon", "y": "y"},
        files={"file": ("three.csv", upload.encode(), "text/csv")},
    )
    assert bad.status_code == 400 and "lon" in bad.json()["detail"]


def _batch_while_others_ask(
    admin: TestClient, monkeypatch: pytest.MonkeyPatch, batch_module: Any
) -> None:
    running = threading.Event()
    others_done = threading.Event()
    locate_table = batch_module.geocode_table

    def slow_table(*args: Any, **kwargs: Any) -> pd.DataFrame:
        # The batch is "long": it goes on until the other requests are answered
        # (or 10 s pass, which is what happens when it blocks the event loop).
        running.set()
        others_done.wait(10)
        return locate_table(*args, **kwargs)

    monkeypatch.setattr(batch_module, "geocode_table", slow_table)
    upload = pd.DataFrame({"x": [118.51], "y": [24.94]}).to_csv(index=False)
    finished: list[str] = []

    def batch() -> None:
        response = admin.post(
            "/api/v1/geocode/batch",
            params={"x": "x", "y": "y"},
            files={"file": ("one.csv", upload.encode(), "text/csv")},
        )
        assert response.status_code == 200, response.text[:300]
        finished.append("batch")

    worker = threading.Thread(target=batch)
    worker.start()
    assert running.wait(30)
    assert admin.get("/health").status_code == 200
    finished.append("health")
    assert admin.post("/api/v1/geocode", json={"x": 118.51, "y": 24.94}).status_code == 200
    finished.append("locate")
    others_done.set()
    worker.join(60)
    # The event loop answered while the batch was still running.
    assert finished == ["health", "locate", "batch"]


def _statements(db: Database) -> Iterator[list[str]]:
    seen: list[str] = []

    def count(*args: Any) -> None:
        seen.append(f"{args[2]} {args[3]!r}")  # the SQL and its parameters

    event.listen(db.engine, "before_cursor_execute", count)
    try:
        yield seen
    finally:
        event.remove(db.engine, "before_cursor_execute", count)


@pytest.mark.parametrize(
    "path",
    ["/api/v1/units/{code}", "/api/v1/units/{code}/buildings", "/api/v1/units/{code}/households"],
)
def test_hidden_and_missing_units_cost_the_same(
    admin: TestClient, city: Database, path: str
) -> None:
    """No timing oracle: the jurisdiction is checked before the database is asked."""
    worker = sign_in(admin, city, role="grid_worker", units=[f"governance:{GRID_A}"])
    admin.get(path.format(code=GRID_A), headers=worker)  # caches warm (jurisdiction, places)
    admin.post("/api/v1/geocode", json={"x": 118.51, "y": 24.94})  # start-up index build done
    answers = []
    for code in (GRID_B, "350502009009009", GRID_B):  # hidden, missing, hidden
        statements = _statements(city)
        seen = next(statements)
        response = admin.get(path.format(code=code), headers=worker)
        next(statements, None)
        # Background reads (the revision clock, a pool ping) come and go; what
        # a hidden unit must not cost is a look-up of that unit.
        looks = [q for q in seen if code in q]
        answers.append((response.status_code, response.json()["title"], len(looks)))
    hidden, missing, _ = answers
    assert hidden[:2] == missing[:2] == (404, "Not found")
    assert hidden[2] == missing[2], f"hidden unit took {hidden[2]} statements, missing {missing[2]}"


@pytest.mark.parametrize(
    "body",
    [
        {"x": "118.51", "y": 24.94},
        {"x": 118.51, "y": "24.94"},
        {"x": True, "y": 24.94},
        {"x": 118.51, "y": 24.94, "accuracy_m": "10"},
        {"address": 12},
    ],
)
def test_geocode_refuses_coercion(admin: TestClient, body: dict[str, Any]) -> None:
    response = admin.post("/api/v1/geocode", json=body)
    assert response.status_code == 422, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.json()["errors"][0]["field"]


def test_geocode_accepts_integers_as_numbers(admin: TestClient) -> None:
    assert admin.post("/api/v1/geocode", json={"x": 118, "y": 25}).status_code == 200


def test_served_fast_path_refuses_a_declared_oversize_body_before_reading(city: Database) -> None:
    settings = Settings(database_url=city.url, load_sample_city=False, max_body_bytes=4096)
    app = create_app(settings, db=city)
    with TestClient(app) as client:
        headers = sign_in(client, city, role="dispatcher", units=[f"governance:{GRID_A}"])
        sent: list[MutableMapping[str, Any]] = []

        async def receive() -> dict[str, Any]:
            raise AssertionError("the body was read")

        async def send(message: MutableMapping[str, Any]) -> None:
            sent.append(message)

        scope = {
            "type": "http",
            "method": "POST",
            "path": "/api/v1/geocode",
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", b"10000000"),
                *[(k.lower().encode(), v.encode()) for k, v in headers.items()],
            ],
        }
        asyncio.run(app(scope, receive, send))
        assert sent[0]["status"] == 413
        assert b"TONGGE_MAX_BODY_BYTES" in sent[1]["body"]
        # A body over the limit that did not declare its length is cut off too.
        big = {"address": "x" * 5000}
        assert client.post("/api/v1/geocode", json=big, headers=headers).status_code == 413


def test_every_operation_documents_its_errors_as_problem_json(admin: TestClient) -> None:
    spec = admin.get("/openapi.json").json()
    assert "Problem" in spec["components"]["schemas"]
    for path, operations in spec["paths"].items():
        for method, operation in operations.items():
            responses = operation["responses"]
            for status in ("400", "422"):
                assert status in responses, f"{method.upper()} {path} lacks {status}"
            # Open311 answers errors as its standard's list; everything else as problems.
            media = (
                "application/json" if path.startswith("/open311/") else "application/problem+json"
            )
            for status, response in responses.items():
                if status[0] in "45":
                    assert list(response["content"]) == [media], f"{method.upper()} {path} {status}"


def test_the_one_geocode_path_adds_cors_and_answers_errors_as_problems(
    city: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The served application: CORS headers and problem+json from the fast path itself."""
    from api.app import create_server_app
    from gis.settings import get_settings

    monkeypatch.setenv("TONGGE_DATABASE_URL", city.url)
    monkeypatch.setenv("TONGGE_CORS_ORIGINS", '["https://map.example.gov.cn"]')
    get_settings.cache_clear()
    try:
        app = create_server_app()
        with TestClient(app, raise_server_exceptions=False) as client:
            headers = sign_in(client, city, role="dispatcher", units=[f"governance:{GRID_A}"])
            allowed = {**headers, "Origin": "https://map.example.gov.cn"}
            answer = client.post("/api/v1/geocode", json={"x": 118.51, "y": 24.94}, headers=allowed)
            assert answer.status_code == 200
            assert answer.headers["access-control-allow-origin"] == "https://map.example.gov.cn"
            other = {**headers, "Origin": "https://evil.example.com"}
            answer = client.post("/api/v1/geocode", json={"x": 118.51, "y": 24.94}, headers=other)
            assert "access-control-allow-origin" not in answer.headers
            refused = client.post(
                "/api/v1/geocode", json={"x": 1}, headers={"Origin": allowed["Origin"]}
            )
            assert refused.status_code == 401 and refused.headers["access-control-allow-origin"]
            # The preflight goes to the application's CORS handling.
            preflight = client.options(
                "/api/v1/geocode",
                headers={
                    "Origin": allowed["Origin"],
                    "Access-Control-Request-Method": "POST",
                    "Access-Control-Request-Headers": "X-API-Key, Content-Type",
                },
            )
            assert preflight.status_code == 200

            def broken(*_args: object, **_kwargs: object) -> None:
                raise RuntimeError("the index is corrupt")

            monkeypatch.setattr(app.state.locator, "locate", broken)
            failed = client.post("/api/v1/geocode", json={"x": 118.51, "y": 24.94}, headers=allowed)
            assert failed.status_code == 500
            assert failed.headers["content-type"].startswith("application/problem+json")
            assert failed.json()["detail"] == "the server could not handle this request"
            assert "corrupt" not in failed.text
            assert failed.headers["x-content-type-options"] == "nosniff"
            assert failed.headers["access-control-allow-origin"] == allowed["Origin"]
    finally:
        get_settings.cache_clear()
