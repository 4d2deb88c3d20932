"""A boundary change valid *now* is seen at once by every answer of a serving API.

Regression (security issue, item 2): a naive time was parsed twice on the
single-locate and places paths, moving the lookup 8 hours back, so for 8
hours after each change incidents went to the old units. Here the A/B grid
boundary of :mod:`tests.fixtures_access` moves west while the API serves;
within 2 s single, batch and address locates, the workload and the
jurisdiction of grid B's worker all see the new version::

    before   118.50        118.525                 118.55
               | A1  | A2  | B1        | B2        |
    after      |A1|A2| B1 (BA-1 now here) | B2      |
             118.50 118.5025
"""

from __future__ import annotations

import io
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd
from fastapi.testclient import TestClient

from gis.repository import Database
from gis.settings import Settings
from gis.times import parse_time, utc_now
from tests._client import sign_in, signed_in
from tests.fixtures_access import GRID_A, GRID_B, load_two_grids, move_edge

STRIP_POINT = {"x": 118.51, "y": 24.94}  # in A before, in B after


def _eventually(check: Callable[[], bool], *, seconds: float = 2.0) -> bool:
    deadline = time.monotonic() + seconds
    while True:
        if check():
            return True
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)


def _grid_of(client: TestClient, body: dict[str, Any]) -> str | None:
    answer = client.post("/api/v1/geocode", json=body).json()
    units = answer.get("layers", {}).get("governance", {}).get("units", [])
    return next((u["code"] for u in units if u["level"] == "grid"), None)


def _batch_grid(client: TestClient) -> str:
    upload = pd.DataFrame([STRIP_POINT]).to_csv(index=False).encode()
    response = client.post(
        "/api/v1/geocode/batch",
        params={"x": "x", "y": "y"},
        files={"file": ("points.csv", upload, "text/csv")},
    )
    assert response.status_code == 200, response.text
    return str(pd.read_csv(io.BytesIO(response.content), dtype=str)["governance_grid"][0])


def _serving_revision(client: TestClient) -> int | None:
    answer = client.get("/health/ready")
    assert answer.status_code == 200, answer.text
    revision: int | None = answer.json()["boundaries_revision"]
    return revision


def _households(client: TestClient, code: str) -> int:
    body = client.get("/api/v1/workload", params={"level": "grid"}).json()
    return next(int(u["households"]) for u in body["units"] if u["code"] == code)


def test_a_change_valid_now_is_seen_by_every_answer_within_two_seconds(
    db: Database, tmp_path: Path
) -> None:
    load_two_grids(db, tmp_path)
    settings = Settings(database_url=db.url, load_sample_city=False, index_refresh_seconds=0.2)
    with signed_in(db, settings=settings) as admin:
        worker_b = sign_in(admin, db, role="grid_worker", units=[f"governance:{GRID_B}"])
        assert _grid_of(admin, STRIP_POINT) == GRID_A
        assert _grid_of(admin, {"address": "中山南路1号"}) == GRID_A
        assert _batch_grid(admin) == GRID_A
        assert _households(admin, GRID_B) == 2
        assert admin.get("/api/v1/buildings/BA-1", headers=worker_b).status_code == 404
        # What the web map watches after a save to fetch its tiles again.
        assert _eventually(lambda: _serving_revision(admin) is not None)
        before = _serving_revision(admin)

        move_edge(db, utc_now())  # valid from this very second, while the API serves

        assert _eventually(lambda: _serving_revision(admin) not in (None, before))

        assert _eventually(lambda: _grid_of(admin, STRIP_POINT) == GRID_B)
        assert _eventually(lambda: _grid_of(admin, {"address": "中山南路1号"}) == GRID_B)
        assert _eventually(lambda: _batch_grid(admin) == GRID_B)
        assert _eventually(lambda: _households(admin, GRID_B) == 4)
        assert _eventually(
            lambda: admin.get("/api/v1/buildings/BA-1", headers=worker_b).status_code == 200
        )
        households = admin.get(f"/api/v1/units/{GRID_B}/households", headers=worker_b).json()
        assert {h["key"] for h in households["households"]} == {"HA-1", "HA-2", "HB-1", "HB-2"}


def test_a_change_valid_later_is_not_seen_before_its_time(db: Database, tmp_path: Path) -> None:
    load_two_grids(db, tmp_path)
    tomorrow = utc_now().replace(microsecond=0) + pd.Timedelta(days=1).to_pytimedelta()
    move_edge(db, tomorrow)
    settings = Settings(database_url=db.url, load_sample_city=False, index_refresh_seconds=0)
    with signed_in(db, settings=settings) as admin:
        assert _grid_of(admin, STRIP_POINT) == GRID_A
        assert _grid_of(admin, {**STRIP_POINT, "at": tomorrow.isoformat()}) == GRID_B
        # A date means 00:00 China time, parsed once: two days on sees it (one
        # day on is earlier than ``tomorrow`` from 16:00 UTC on).
        later = (tomorrow + pd.Timedelta(days=2).to_pytimedelta()).date().isoformat()
        assert _grid_of(admin, {**STRIP_POINT, "at": later}) == GRID_B


def test_parse_time_is_idempotent_and_aware() -> None:
    for text in ("2026-07-01", "2026-07-01T08:30:00", "2026-07-01T00:30:00Z"):
        once = parse_time(text)
        assert once.tzinfo is not None and once.utcoffset() == pd.Timedelta(0)
        assert parse_time(once) == once
    assert parse_time("2026-07-01").isoformat() == "2026-06-30T16:00:00+00:00"
