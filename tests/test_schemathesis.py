"""Property-based API tests: schemathesis against the live OpenAPI spec, in-process.

Every operation of the served ``/openapi.json`` gets generated valid and
invalid requests (the examples, coverage and fuzzing phases) through
schemathesis's ASGI transport - no server, no network - against the tiny
two-grid city of :mod:`tests.fixtures_access`: as an administrator (the
widest surface) on SpatiaLite and on PostGIS, and as a grid worker of grid
A on SpatiaLite. Any 5xx answer fails; a 4xx (400, 401, 403, 404, 409, 413,
422, 429...) is how the API is meant to refuse what it cannot do.

Random strings rarely name an existing unit, so hooks swap some generated
values for ones the city knows (codes, layers, levels, CRSs, dates, files):
the requests then reach the code behind the 404s too.
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import pandas as pd
import pytest
import schemathesis
from fastapi import FastAPI
from fastapi.testclient import TestClient
from hypothesis import strategies as st
from schemathesis.checks import not_a_server_error

from api.app import create_app
from gis.access import SYSTEM
from gis.access.accounts import create_api_key, create_user
from gis.repository import Database
from gis.settings import Settings
from gis.staff import list_staff
from tests._client import PASSWORD
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

#: Generated requests per operation in the fuzzing phase (coverage adds its own).
MAX_EXAMPLES = 20
SEED = 20260101
REVOKE = "/api/v1/admin/api-keys/{key_id}"
BATCH = "/api/v1/geocode/batch"
USER = "schemathesis-user"


def _served_spec() -> dict[str, Any]:
    # The document the app serves; without its lifespan no database is opened.
    # The schema is loaded at import (``schema.parametrize`` needs it at collection)
    # and each request goes to the app of the ``target`` fixture: the lazy loader
    # ``schemathesis.pytest.from_fixture`` fails on pytest 9 (``Function._nodeid``).
    app = create_app(Settings(database_url="sqlite://", load_sample_city=False))
    spec: dict[str, Any] = TestClient(app).get("/openapi.json").json()
    return spec


schema = schemathesis.openapi.from_dict(
    _served_spec(),
    config=schemathesis.Config.from_dict(
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
    ),
)


# -- values the city knows --------------------------------------------------

CODES = ("350502", COMMUNITY, GRID_A, GRID_B, MICRO_A[0], STATION, BEAT_X, BEAT_Y)
LAYERS = ("governance", "police")
LEVELS = ("county", "street", "community", "grid", "micro_grid", "station", "beat")
CRSS = ("cgcs2000", "wgs84", "gcj02", "bd09", "EPSG:4326", "EPSG:3857", "EPSG:4490")
TIMES = ("2026-06-01", "2025-12-31", "2026-01-01T08:00:00+08:00")
UNITS: tuple[list[str], ...] = (
    [f"governance:{GRID_A}"],
    [f"police:{BEAT_X}"],
    [f"governance:{COMMUNITY}"],
    [],
)


def _parquet() -> bytes:
    buffer = io.BytesIO()
    pd.DataFrame({"x": [118.51, 118.53, None], "y": [24.94, 24.94, 24.0]}).to_parquet(buffer)
    return buffer.getvalue()


FILES = (
    b"id,x,y\n1,118.51,24.94\n2,118.53,24.94\n3,,\n4,east,24.9\n5,200,95\n",
    "lon,lat,名称\n118.51,24.94,甲\n118.53,24.94,乙\n".encode(),
    b"x,y\n",
    json.dumps(
        {
            "type": "FeatureCollection",
            "features": [
                {"type": "Feature", "properties": {"id": i}, "geometry": geometry}
                for i, geometry in enumerate(
                    [
                        {"type": "Point", "coordinates": [118.51, 24.94]},
                        {"type": "Point", "coordinates": [118.53, 24.94]},
                        None,
                    ]
                )
            ],
        }
    ).encode(),
    _parquet(),
)

PATH_VALUES: dict[str, tuple[Any, ...]] = {
    "layer": LAYERS,
    "code": CODES,
    "key": ("BA-1", "BB-1"),
    "username": (USER,),
}
QUERY_VALUES: dict[str, tuple[Any, ...]] = {
    "layer": LAYERS,
    "level": LEVELS,
    "parent": CODES,
    "unit": CODES,
    "bbox": ("118.5,24.9,118.6,24.95", "118.52,24.93,118.53,24.94"),
    "at": TIMES,
    "since": TIMES,
    "until": TIMES,
    "crs": CRSS,
    "x": ("x", "lon"),
    "y": ("y", "lat"),
    "layer_a": ("governance:grid", "governance:micro_grid", "police:beat"),
    "layer_b": ("police:beat", "police:station", "governance:community"),
    "action": ("households", "households.read", "user.create"),
    "actor": ("system",),
}
BODY_VALUES: dict[str, tuple[Any, ...]] = {
    "layer": LAYERS,
    "unit_code": CODES,
    "units": UNITS,
    "role": ("admin", "viewer", "grid_worker", "police", "community_police"),
    "x": (118.51, 118.53, 118.6),
    "y": (24.94, 24.93),
    "crs": CRSS,
    "accuracy_m": (5.0, 800.0),
    "address": ("中山南路1号", "中山南路"),
    "at": TIMES,
    "username": (USER, "schemathesis-new"),
    "password": (PASSWORD,),
    "name": ("王丙", "12345 hotline"),
    "phone": ("13900000003", "+86 592 1234567", None),
    "file": FILES,
}
#: Ids of the city's staff, known once the city is loaded.
STAFF_IDS: list[int] = []
#: The id of the run's own key: generated requests try to revoke it (the API must refuse).
KEY_IDS: list[str] = []


def _blend(values: Any, known: Mapping[str, tuple[Any, ...]]) -> st.SearchStrategy[Any]:
    """Keep each generated value, or swap in one the city knows."""
    if not isinstance(values, dict):
        return st.just(values)
    return st.fixed_dictionaries(
        {
            name: st.sampled_from((*known[name], value)) if name in known else st.just(value)
            for name, value in values.items()
        }
    )


@schema.hook
def flatmap_path_parameters(
    context: schemathesis.HookContext, path_parameters: dict[str, Any]
) -> st.SearchStrategy[Any]:
    return _blend(
        path_parameters,
        {**PATH_VALUES, "staff_id": tuple(STAFF_IDS), "key_id": tuple(KEY_IDS)},
    )


@schema.hook
def flatmap_query(
    context: schemathesis.HookContext, query: dict[str, Any]
) -> st.SearchStrategy[Any]:
    return _blend(query, QUERY_VALUES)


@schema.hook
def flatmap_body(context: schemathesis.HookContext, body: Any) -> st.SearchStrategy[Any]:
    return _blend(body, BODY_VALUES)


# -- the city and who calls -------------------------------------------------


@dataclass(frozen=True)
class Target:
    """An app on a loaded city and the API key the generated requests carry."""

    app: FastAPI
    key_id: str
    token: str


@pytest.fixture(
    scope="module",
    params=[("sqlite", "admin"), ("postgresql", "admin"), ("sqlite", "grid_worker")],
    ids=lambda param: "-".join(param),
)
def target(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Target]:
    """Yield an app on a fresh two-grid city, and a key of the role.

    A key, not a signed-in user: generated requests may disable users or
    reset their passwords, but a key has no password, and its rate here is
    the highest there is. Schemathesis's ASGI transport runs the lifespan.
    """
    dialect, role = request.param
    folder = tmp_path_factory.mktemp("schemathesis")
    if dialect == "sqlite":
        db = Database(f"sqlite:///{folder / 'city.sqlite'}")
        db.migrate()
    else:
        db = request.getfixturevalue("postgres_database")
        db.truncate()
    load_two_grids(db, folder)
    create_user(
        db,
        username=USER,
        role="viewer",
        units=[f"governance:{GRID_A}"],
        password=PASSWORD,
        actor=SYSTEM,
    )
    STAFF_IDS[:] = [member.id for member in list_staff(db)]
    units = [f"governance:{GRID_A}"] if role == "grid_worker" else []
    key, token = create_api_key(
        db, name="schemathesis", role=role, units=units, rate_per_minute=100_000, actor=SYSTEM
    )
    KEY_IDS[:] = [key.key_id]
    app = create_app(Settings(database_url=db.url, load_sample_city=False), db=db)
    yield Target(app=app, key_id=key.key_id, token=token)
    if dialect == "sqlite":
        db.dispose()
    else:
        db.truncate()


def _named_file(body: Any) -> list[tuple[str, tuple[str, bytes]]] | None:
    """Return the upload with a file name whose suffix fits the content."""
    if not isinstance(body, dict) or "file" not in body:
        return None
    content = getattr(body["file"], "data", body["file"])
    if isinstance(content, str):
        content = content.encode()
    if not isinstance(content, bytes):
        return None
    suffix = (
        "parquet" if content.startswith(b"PAR1") else "geojson" if content[:1] == b"{" else "csv"
    )
    return [("file", (f"rows.{suffix}", content))]


@schema.parametrize()
def test_no_server_errors(case: schemathesis.Case, target: Target) -> None:
    extra: dict[str, Any] = {}
    if case.operation.path == BATCH and (files := _named_file(case.body)) is not None:
        # Schemathesis names a generated file after the field only; the route picks the
        # reader by suffix, so without one it would never get past the file name. Extra
        # generated form fields are dropped (the route reads only ``file``).
        extra["files"] = files
    response = case.call_and_validate(
        app=target.app,
        headers={"X-API-Key": target.token},
        checks=[not_a_server_error],
        **extra,
    )
    assert response.status_code < 500, f"{case.operation.label}: {response.content[:2000]!r}"
    if case.operation.path == REVOKE and case.path_parameters.get("key_id") == target.key_id:
        # The API refuses a key revoking itself (which would 401 every later request).
        assert response.status_code in (403, 409), response.content[:2000]
