"""The incidents layer of the web map (web/src/incidents.js) in a real headless Chromium, offline.

Open incidents of the units in view as points, and the evaluation of the
level as a choropleth; every request goes to the server that serves the map.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from playwright.sync_api import Browser

from gis.access import SYSTEM
from gis.incidents import IncidentDraft, IncidentLocation, service
from gis.repository import Database
from tests._client import PASSWORD, add_user
from tests._webserver import offline_chromium, serve

SCREENSHOTS = Path("var/screenshots")
# Points in the old city (开元街道), in CGCS2000, and one far outside every unit.
IN_CITY = [(118.5856, 24.9112), (118.5858, 24.9113), (118.5790, 24.9080)]
OUTSIDE = (118.20, 24.50)


@dataclass(frozen=True)
class Server:
    url: str
    db: Database
    located: list[str]
    review: str


@pytest.fixture(scope="module")
def server(sample_city_file: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """Serve a copy of the sample city with a few incidents on a free loopback port."""
    path = tmp_path_factory.mktemp("web-incidents") / "city.sqlite"
    shutil.copyfile(sample_city_file, path)
    db = Database(f"sqlite:///{path}")
    when = datetime.now(UTC) - timedelta(days=3)
    public = []
    for x, y in [*IN_CITY, OUTSIDE]:
        draft = IncidentDraft(
            channel="12345",
            category="0202",  # 4-hour deadline: overdue by now
            description="井盖缺失",
            location=IncidentLocation(x=x, y=y, datum="cgcs2000"),
            address=None,
            event_time=when,
        )
        public.append(service.intake(db, SYSTEM, draft, now=when).incident.public_id)
    with serve(db) as url:
        yield Server(url=url, db=db, located=public[:3], review=public[3])
    db.dispose()


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with offline_chromium() as chromium:
        yield chromium


def test_dispatcher_sees_open_incidents_and_the_evaluation_choropleth(
    server: Server, browser: Browser
) -> None:
    username = add_user(server.db, role="dispatcher", units=["governance:350502"])
    page = browser.new_page(viewport={"width": 1280, "height": 800})
    urls: list[str] = []
    errors: list[str] = []
    page.on("request", lambda request: urls.append(request.url))
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.goto(f"{server.url}/#map=15/24.9112/118.5856&layer=governance&level=grid")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", PASSWORD)
    page.click("#signin-form button[type=submit]")
    page.wait_for_selector("body[data-ready=true]", timeout=30_000)
    page.wait_for_function("() => window.tonggeMap.loaded() && window.tonggeMap.areTilesLoaded()")

    page.check("#incidents-open")
    page.wait_for_function("() => window.tonggeIncidents && window.tonggeIncidents.units > 0")
    page.wait_for_function("() => window.tonggeMap.areTilesLoaded()")
    page.evaluate("() => window.tonggeMap.fire('moveend')")
    shown = page.evaluate("() => window.tonggeIncidents.shown")
    # The two incidents at the same corner are in view; the one outside every unit
    # (in review, no unit) is outside the dispatcher's district: not sent at all.
    assert set(server.located[:2]) <= set(shown)
    assert server.review not in page.evaluate("() => window.tonggeIncidents.loaded")
    drawn = page.evaluate(
        "() => window.tonggeMap.queryRenderedFeatures({layers: ['incidents-open']})"
        ".map(f => f.properties.state)"
    )
    assert "overdue" in drawn

    page.select_option("#incidents-measure", "incidents")
    page.wait_for_function("() => window.tonggeEvaluation && window.tonggeEvaluation.units > 0")
    evaluation = page.evaluate("() => window.tonggeEvaluation")
    assert evaluation["measure"] == "incidents" and evaluation["top"] >= 2
    legend = page.inner_text("#incidents-legend")
    assert "事件数" in legend
    # Switching the level keeps the layers working (the units source is replaced).
    page.select_option("#level", "community")
    page.wait_for_function("() => window.tonggeMap.getLayer('incidents-evaluation') !== undefined")
    assert not errors, errors
    assert not [u for u in urls if not u.startswith((server.url, "data:", "blob:"))]
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / "incidents.png"))
    page.close()
