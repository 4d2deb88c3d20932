"""Property-based API tests: schemathesis against the live OpenAPI spec, in-process.

Every operation of the served ``/openapi.json`` is called with generated
valid and invalid requests (examples, coverage and fuzzing phases) through
schemathesis's ASGI transport - no server, no network - on a SpatiaLite and
a PostGIS copy of the tiny two-grid city, as an administrator (the widest
surface). Any 5xx answer fails: a 4xx (400, 401, 403, 404, 409, 413, 422,
429...) is how the API is meant to refuse what it cannot do.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import schemathesis
from fastapi import FastAPI
from fastapi.testclient import TestClient
from schemathesis.checks import not_a_server_error

from api.app import create_app
from gis.access import SYSTEM
from gis.access.accounts import create_api_key
from gis.repository import Database
from gis.settings import Settings
from tests.fixtures_access import load_two_grids

#: Generated requests per operation in the fuzzing phase (coverage adds its own).
MAX_EXAMPLES = 20
SEED = 20260101
REVOKE = "/api/v1/admin/api-keys/{key_id}"


def _served_spec() -> dict[str, object]:
    # The document the app serves; without its lifespan no database is opened.
    app = create_app(Settings(database_url="sqlite://", load_sample_city=False))
    spec: dict[str, object] = TestClient(app).get("/openapi.json").json()
    return spec


CONFIG = schemathesis.Config.from_dict(
    {
        "seed": SEED,
        "suppress-health-check": ["all"],
        "generation": {
            "mode": "all",
            "max-examples": MAX_EXAMPLES,
            "deterministic": True,
            "no-shrink": True,
            "database": "none",
        },
    }
)
schema = schemathesis.openapi.from_dict(_served_spec(), config=CONFIG)


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def st_city(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Database]:
    """Yield the two-grid city on one dialect, shared by every operation's test."""
    folder = tmp_path_factory.mktemp("schemathesis")
    if request.param == "sqlite":
        db = Database(f"sqlite:///{folder / 'st.sqlite'}")
        db.migrate()
    else:
        db = request.getfixturevalue("postgres_database")
        db.truncate()
    load_two_grids(db, folder)
    yield db
    if request.param == "sqlite":
        db.dispose()
    else:
        db.truncate()


@pytest.fixture(scope="module")
def st_app(st_city: Database) -> FastAPI:
    """Return an app on the city; schemathesis's ASGI transport runs its lifespan."""
    return create_app(Settings(database_url=st_city.url, load_sample_city=False), db=st_city)


@pytest.fixture(scope="module")
def st_key(st_city: Database) -> tuple[str, str]:
    """Return the id and token of the admin key every generated request carries.

    A key, not a user: generated requests may disable users or reset their
    passwords, but a key has no password and is not rate-limited here.
    """
    key, token = create_api_key(
        st_city, name="schemathesis", role="admin", rate_per_minute=100_000, actor=SYSTEM
    )
    return key.key_id, token


@schema.parametrize()
def test_no_server_errors(case: schemathesis.Case, st_app: FastAPI, st_key: tuple[str, str]) -> None:
    key_id, token = st_key
    if case.operation.path == REVOKE and case.path_parameters.get("key_id") == key_id:
        # Revoking the very key of the run would turn every later request into a 401.
        case.path_parameters["key_id"] = "0" * 12
    response = case.call_and_validate(
        app=st_app, headers={"X-API-Key": token}, checks=[not_a_server_error]
    )
    open("/tmp/st_status.log","a").write(f"{case.operation.label}\t{response.status_code}\t{response.text[:150]!r}\n")
    assert response.status_code < 500, f"{case.operation.label}: {response.text[:2000]}"
