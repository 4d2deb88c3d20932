"""Typed locate answers: ``to_dict()`` of real answers is valid against the geocode OpenAPI schema.

Every kind of answer — a point inside, a point outside every unit, an
uncertainty circle, an address (certain, unmatched), and answers cut to a
jurisdiction (restricted levels, outside the jurisdiction by point and by
address) — is validated with ``jsonschema`` against ``GeocodeAnswer`` as the
live application publishes it (``app.openapi()``), which forbids unknown
keys: the schema and the dataclasses cannot drift apart.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import jsonschema
import orjson
import pytest

from api.app import create_app
from gis.access import Jurisdiction, JurisdictionResolver, Principal, Role
from gis.locate import LocateService
from gis.locate.answers import LocateAnswer
from gis.repository import Database
from gis.revisions import RevisionClock
from gis.settings import Settings
from tests.fixtures_access import GRID_A, load_two_grids

IN_A = (118.51, 24.94)
IN_B = (118.53, 24.94)
SEA = (118.40, 24.80)


@pytest.fixture
def city(db: Database, tmp_path: Path) -> Database:
    load_two_grids(db, tmp_path)
    return db


def validator(city: Database) -> jsonschema.protocols.Validator:
    spec = create_app(Settings(database_url=city.url, load_sample_city=False), db=city).openapi()
    schema = {"$ref": "#/components/schemas/GeocodeAnswer", "components": spec["components"]}
    cls = jsonschema.validators.validator_for(
        {"$schema": "https://json-schema.org/draft/2020-12/schema"}
    )
    return cls(schema)


def answers(city: Database) -> dict[str, LocateAnswer]:
    locator = LocateService(city, refresh_seconds=0)
    resolver = JurisdictionResolver(city, clock=RevisionClock(city, refresh_seconds=0))
    worker = resolver.jurisdiction(
        Principal(kind="user", name="li", role=Role.GRID_WORKER, units=(f"governance:{GRID_A}",))
    )
    everyone = Jurisdiction.everything()
    return {
        "ok": locator.locate(*IN_A, viewer=everyone),
        "outside": locator.locate(*SEA, crs="wgs84"),
        "circle": locator.locate(118.525, 24.94, accuracy_m=50),
        "address": locator.locate_address("中山南路1号"),
        "unmatched": locator.locate_address("人民路9号"),
        "redacted": locator.locate(*IN_A, accuracy_m=30, viewer=worker),
        "outside_jurisdiction": locator.locate(*IN_B, viewer=worker),
        "sea_for_worker": locator.locate(*SEA, viewer=worker),
        "address_elsewhere": locator.locate_address("中山南路2号", viewer=worker),
    }


def test_every_kind_of_answer_matches_the_published_schema(city: Database) -> None:
    check = validator(city)
    found = answers(city)
    statuses = {name: answer.status for name, answer in found.items()}
    assert statuses == {
        "ok": "ok",
        "outside": "outside",
        "circle": "ambiguous",
        "address": "ok",
        "unmatched": "unmatched",
        "redacted": "ok",
        "outside_jurisdiction": "outside_jurisdiction",
        "sea_for_worker": "outside_jurisdiction",
        "address_elsewhere": "outside_jurisdiction",
    }
    for name, answer in found.items():
        body = orjson.loads(orjson.dumps(answer.to_dict()))  # exactly what goes on the wire
        errors = [e.message for e in check.iter_errors(body)]
        assert errors == [], (name, errors)
    # What makes each kind: shares, nearest units, restricted levels, people.
    circle = found["circle"].to_dict()["layers"]["governance"]["units"][-1]
    assert {c["share"] for c in circle["candidates"]} and circle["status"] == "ambiguous"
    assert found["outside"].to_dict()["layers"]["governance"]["nearest"]["distance_m"] > 0
    redacted = found["redacted"].to_dict()
    assert redacted["layers"]["governance"]["units"][0]["status"] == "restricted"
    assert [p["name"] for p in redacted["responsible"]] == ["李甲"]
    assert found["address"].to_dict()["address"]["building_key"] == "BA-1"


def test_a_schema_violation_is_caught(city: Database) -> None:
    # The check can fail: an unknown key or a wrong status is refused.
    check = validator(city)
    body: dict[str, Any] = found_ok(city)
    assert not list(check.iter_errors(body))
    assert list(check.iter_errors({**body, "secret": 1}))
    assert list(check.iter_errors({**body, "status": "maybe"}))


def found_ok(city: Database) -> dict[str, Any]:
    return LocateService(city, refresh_seconds=0).locate(*IN_A).to_dict()
