"""The web map and the docs in a real headless Chromium, offline, on the sample city.

The server runs for real (uvicorn on a free loopback port, the sample city in
SpatiaLite); every request the pages make is recorded and must go to that
server. Screenshots of the main views go to ``$TONGGE_SCREENSHOTS`` (default
``var/screenshots``); the README shows copies of them.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Browser, Page

from gis.datum import wgs84_to_gcj02
from gis.repository import Database
from tests._client import PASSWORD, add_user
from tests._webserver import offline_chromium, serve

SCREENSHOTS = Path(os.environ.get("TONGGE_SCREENSHOTS", "var/screenshots"))
# A point in the old city (鲤中街道), in CGCS2000.
POINT = (118.5856, 24.9112)
# A point in a micro-grid of the old city with room for a straight line between
# its buildings (the split test draws one).
SPLIT_POINT = (118.5863, 24.9116)


@dataclass(frozen=True)
class Server:
    url: str
    db: Database


@pytest.fixture(scope="module")
def server(sample_city_file: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """Serve a copy of the sample city on a free loopback port."""
    path = tmp_path_factory.mktemp("web") / "city.sqlite"
    shutil.copyfile(sample_city_file, path)
    db = Database(f"sqlite:///{path}")
    with serve(db) as url:
        yield Server(url=url, db=db)
    db.dispose()


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with offline_chromium() as chromium:
        yield chromium


class Recorder:
    """Every URL a page asks for (the browser itself cannot reach any other host)."""

    def __init__(self, page: Page, origin: str) -> None:
        self.urls: list[str] = []
        self.errors: list[str] = []
        page.on("console", lambda m: self.errors.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: self.errors.append(str(e)))
        page.on("request", lambda request: self.urls.append(request.url))

    def outside(self, origin: str) -> list[str]:
        return [u for u in self.urls if not u.startswith((origin, "data:", "blob:"))]


def sign_in(page: Page, server: Server, username: str, *, hash_: str = "") -> Recorder:
    recorder = Recorder(page, server.url)
    page.goto(f"{server.url}/{hash_}")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", PASSWORD)
    page.click("#signin-form button[type=submit]")
    page.wait_for_selector("body[data-ready=true]", timeout=30_000)
    page.wait_for_function("() => window.tonggeMap.loaded() && window.tonggeMap.areTilesLoaded()")
    return recorder


def token(server: Server, username: str) -> dict[str, str]:
    answer = httpx.post(
        f"{server.url}/api/v1/auth/token",
        data={"username": username, "password": PASSWORD},
        timeout=60,
    )
    return {"Authorization": f"Bearer {answer.json()['access_token']}"}


def rendered_units(page: Page, level: str) -> list[dict[str, object]]:
    return page.evaluate(
        "(level) => window.tonggeMap.querySourceFeatures('units', {sourceLayer: level})"
        ".map(f => f.properties)",
        level,
    )


def test_dispatcher_locates_a_gcj02_point_like_the_api(server: Server, browser: Browser) -> None:
    username = add_user(server.db, role="dispatcher", units=["governance:350502"])
    page = browser.new_page(viewport={"width": 1280, "height": 800})
    recorder = sign_in(page, server, username)
    # The full-district view again, from the start of loading the page:
    # reported, not asserted (issue target 2 s).
    page.reload()
    page.wait_for_selector("body[data-ready=true]", timeout=30_000)
    page.wait_for_function("() => window.tonggeMap.loaded() && window.tonggeMap.areTilesLoaded()")
    drawn = page.evaluate("() => performance.now()") / 1000
    units = rendered_units(page, "micro_grid")
    assert len({u["code"] for u in units}) > 100  # the whole district's micro-grids
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=SCREENSHOTS / "district.png")
    # Type the point as a GCJ-02 coordinate (what a phone map app gives).
    gx, gy = wgs84_to_gcj02([POINT[0]], [POINT[1]])
    page.select_option("#datum", "gcj02")
    page.fill("#query", f"{gx[0]:.6f},{gy[0]:.6f}")
    page.click("#search button[type=submit]")
    page.wait_for_selector("[data-status]")
    expected = httpx.post(
        f"{server.url}/api/v1/geocode",
        json={"x": float(gx[0]), "y": float(gy[0]), "crs": "gcj02"},
        headers=token(server, username),
        timeout=60,
    ).json()
    assert page.get_attribute("[data-status]", "data-status") == expected["status"] == "ok"
    for layer, answer in expected["layers"].items():
        for unit in answer["units"]:
            row = page.locator(f"tr[data-layer='{layer}'][data-level='{unit['level']}']")
            assert (unit["code"] or "") in row.inner_text()
            assert row.locator(f".status-{unit['status']}").count() == 1
    page.screenshot(path=SCREENSHOTS / "locate.png")
    # Open the grid from the panel: the unit view with its children.
    grid = next(u for u in expected["layers"]["governance"]["units"] if u["level"] == "grid")
    page.click(f"#panel a[data-code='{grid['code']}']")
    page.wait_for_selector(f"h2[data-unit='{grid['code']}']")
    assert not recorder.outside(server.url), recorder.outside(server.url)
    assert not recorder.errors, recorder.errors
    print(json.dumps({"district_drawn_s": round(drawn, 2)}))


def test_grid_worker_sees_only_their_grid(server: Server, browser: Browser) -> None:
    located = httpx.post(
        f"{server.url}/api/v1/geocode",
        json={"x": POINT[0], "y": POINT[1], "crs": "cgcs2000"},
        headers=token(server, add_user(server.db, role="admin")),
        timeout=60,
    ).json()
    grid = next(u for u in located["layers"]["governance"]["units"] if u["level"] == "grid")
    username = add_user(server.db, role="grid_worker", units=[f"governance:{grid['code']}"])
    page = browser.new_page(viewport={"width": 1280, "height": 800})
    recorder = sign_in(page, server, username)
    units = rendered_units(page, "micro_grid")
    assert units and {u["parent_code"] for u in units} == {grid["code"]}
    page.screenshot(path=SCREENSHOTS / "grid_worker.png")
    assert not recorder.outside(server.url)


def test_english_switch_and_shareable_url(server: Server, browser: Browser) -> None:
    username = add_user(server.db, role="admin")
    page = browser.new_page()
    sign_in(page, server, username, hash_="#layer=police&level=beat&lang=en")
    assert page.input_value("#layer") == "police" and page.input_value("#level") == "beat"
    assert page.inner_text("#signout") == "Sign out"
    assert rendered_units(page, "beat")
    # The sample city is generated: the map says so, in both languages.
    assert page.is_visible("#synthetic")
    assert page.inner_text("#synthetic") == "Synthetic sample data"
    assert "police" in (page.get_attribute("#synthetic", "data-layers") or "").split()
    page.click("#lang")
    assert page.inner_text("#signout") == "退出" and "lang=zh" in page.url
    assert page.inner_text("#synthetic").startswith("示例数据")
    # Open panels are drawn again in the language chosen: a unit's panel…
    page.fill("#query", f"{POINT[0]},{POINT[1]}")
    page.press("#query", "Enter")
    page.wait_for_selector("#panel [data-status=ok]", timeout=30_000)
    assert page.inner_text("#panel [data-status=ok]") == "已定位"
    page.click("#lang")
    page.wait_for_function(
        "() => document.querySelector('#panel [data-status=ok]')?.textContent === 'located'"
    )
    assert page.inner_text("#panel [data-section=routes] h2") == "Patrol routes"
    page.click("#panel a[data-code]")
    page.wait_for_selector("#panel[data-loaded] [data-section=overlaps] h2", timeout=30_000)
    assert page.inner_text("#panel [data-section=overlaps] h2") == "Other layers covering it"
    page.click("#lang")
    page.wait_for_function(
        "() => document.querySelector('#panel [data-section=overlaps] h2')?.textContent"
        " === '同格单元(其他图层)'"
    )
    # …and a search's results.
    page.fill("#query", "350502")
    page.press("#query", "Enter")
    page.wait_for_selector("#panel a[data-result=unit]", timeout=30_000)
    assert page.inner_text("#panel h2").startswith("单元")
    page.click("#lang")
    page.wait_for_function(
        "() => document.querySelector('#panel h2')?.textContent.startsWith('Units')"
    )


@pytest.mark.parametrize("path", ["/docs", "/redoc"])
def test_docs_render_with_no_network(server: Server, browser: Browser, path: str) -> None:
    page = browser.new_page()
    recorder = Recorder(page, server.url)
    page.goto(f"{server.url}{path}")
    title = ".swagger-ui .info .title" if path == "/docs" else "h1"
    page.wait_for_selector(title, timeout=30_000)
    assert "tongge" in page.inner_text(title)
    page.screenshot(path=SCREENSHOTS / f"{path.strip('/')}.png")
    assert not recorder.outside(server.url)


def test_align_map_renders_with_no_network(
    server: Server, browser: Browser, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from typer.testing import CliRunner

    from api.cli import app
    from gis.settings import get_settings

    monkeypatch.setenv("TONGGE_DATABASE_URL", server.db.url)
    get_settings.cache_clear()
    try:
        target = tmp_path / "align.html"
        result = CliRunner().invoke(app, ["align", "--map", str(target)])
        assert result.exit_code == 1, result.output  # the sample city's seeded misalignments
    finally:
        get_settings.cache_clear()
    html = target.read_text(encoding="utf-8")
    assert "cdn." not in html and "openstreetmap" not in html.lower()
    page = browser.new_page(viewport={"width": 1000, "height": 700})
    recorder = Recorder(page, "file://")
    page.goto(target.as_uri())
    page.wait_for_selector(".leaflet-interactive", timeout=30_000)
    assert page.locator(".leaflet-interactive").count() > 10  # units and violations drawn
    assert page.locator(".leaflet-control-layers").count() == 1
    page.screenshot(path=SCREENSHOTS / "align_map.png")
    assert not recorder.outside("file://") and not recorder.errors, recorder.errors


# In the page, from the keyup of the Enter that finishes a drawn line (terra-draw
# finishes on it; the capture phase sees it first) to the first animation frame
# after the UI marks the preview as shown: ``window.lineToPreview`` (ms). Also,
# as they are when the marker is set: the SVG overlay's paths (the preview's
# lines until the map draws them) as lists of points on the map, with their
# side and unit code (``window.previewOverlay``), and whether the map's preview
# source had any feature (``window.previewSourceAtMarker``).
LINE_TO_PREVIEW = """() => {
  const status = document.getElementById("edit-status");
  let start = null;
  const onKey = (e) => { if (e.key === "Enter") start ??= performance.now(); };
  document.addEventListener("keyup", onKey, true);
  const watcher = new MutationObserver(() => {
    if (status.dataset.preview !== "preview") return;
    watcher.disconnect();
    const svg = document.querySelector(".preview-overlay");
    window.previewOverlay = {
      label: svg?.getAttribute("aria-label") ?? null,
      role: svg?.getAttribute("role") ?? null,
      paths: [...document.querySelectorAll(".preview-overlay path")].map((path) => ({
        side: path.dataset.side,
        code: path.dataset.code,
        points: [...path.getAttribute("d").matchAll(/[ML]([-\\d.]+) ([-\\d.]+)/g)]
          .map((m) => [Number(m[1]), Number(m[2])]),
      })),
    };
    window.previewSourceAtMarker = window.tonggeMap.querySourceFeatures("preview").length;
    requestAnimationFrame(() => { window.lineToPreview = performance.now() - start; });
  });
  watcher.observe(status, { attributes: true, attributeFilter: ["data-preview"] });
}"""

# Of the overlay's points (the middles of its segments, inside the map), how
# many the map's own preview layer covers once drawn (within 3 px).
OVERLAY_ON_MAP = """(paths) => {
  const map = window.tonggeMap;
  const { width, height } = map.getCanvas().getBoundingClientRect();
  let inside = 0;
  let hits = 0;
  for (const { points } of paths) {
    for (let i = 1; i < points.length; i++) {
      const x = (points[i - 1][0] + points[i][0]) / 2;
      const y = (points[i - 1][1] + points[i][1]) / 2;
      if (x < 5 || y < 5 || x > width - 5 || y > height - 5) continue;
      inside += 1;
      const found = map.queryRenderedFeatures([[x - 3, y - 3], [x + 3, y + 3]],
        { layers: ["preview-after"] });
      if (found.length) hits += 1;
    }
  }
  return { inside, hits };
}"""


def test_planner_splits_a_micro_grid_by_drawing_a_line(server: Server, browser: Browser) -> None:
    import numpy as np
    import shapely

    admin = token(server, add_user(server.db, role="admin"))
    located = httpx.post(
        f"{server.url}/api/v1/geocode",
        json={"x": SPLIT_POINT[0], "y": SPLIT_POINT[1], "crs": "cgcs2000"},
        headers=admin,
        timeout=60,
    ).json()
    micro = next(u for u in located["layers"]["governance"]["units"] if u["level"] == "micro_grid")
    unit = httpx.get(
        f"{server.url}/api/v1/units/{micro['code']}",
        params={"layer": "governance"},
        headers=admin,
        timeout=60,
    ).json()
    polygon = shapely.geometry.shape(unit["geometry"])
    # A line across the micro-grid, boundary to boundary, between its buildings
    # (one through a building is refused unless forced).
    with server.db.reader() as repo:
        buildings = repo.places.buildings_frame(bbox=polygon.bounds)
    footprints = shapely.union_all(np.asarray(buildings.geometry.values)).buffer(2e-5)
    minx, miny, maxx, maxy = polygon.bounds
    segment = None
    # West-east lines first, then north-south ones.
    shares = np.linspace(0.3, 0.7, 41)
    lines = [((minx - 1, y), (maxx + 1, y)) for y in miny + shares * (maxy - miny)]
    lines += [((x, miny - 1), (x, maxy + 1)) for x in minx + shares * (maxx - minx)]
    for start, end in lines:
        across = shapely.LineString([start, end]).intersection(polygon)
        span = maxy - miny if start[0] == end[0] else maxx - minx
        parts = [p for p in shapely.get_parts(across) if p.length > span / 3]
        if len(parts) == 1 and not parts[0].intersects(footprints):
            segment = parts[0]
            break
    assert segment is not None, "no line between the buildings of this micro-grid"
    (x0, y0), (x1, y1) = segment.coords[0], segment.coords[-1]
    inner = segment.interpolate(0.5, normalized=True)
    username = add_user(server.db, role="planner", units=["governance:350502"])
    page = browser.new_page(viewport={"width": 1280, "height": 800})
    recorder = sign_in(page, server, username)
    page.evaluate(
        "(b) => window.tonggeMap.fitBounds(b, {padding: 120, animate: false})",
        [[polygon.bounds[0], polygon.bounds[1]], [polygon.bounds[2], polygon.bounds[3]]],
    )
    page.wait_for_function("() => window.tonggeMap.loaded() && window.tonggeMap.areTilesLoaded()")

    def pixel(lon: float, lat: float) -> tuple[float, float]:
        point = page.evaluate("(p) => window.tonggeMap.project(p)", [lon, lat])
        box = page.locator("#map").bounding_box()
        assert box is not None
        return box["x"] + point["x"], box["y"] + point["y"]

    page.click("#edit-toggle")
    page.select_option("#edit-op", "split")
    # Pick the unit by clicking inside it, off the line to be drawn (north of
    # a west-east line, east of a north-south one).
    away = (maxx + 1, inner.y) if x0 == x1 else (inner.x, maxy + 1)
    above = shapely.LineString([(inner.x, inner.y), away]).intersection(polygon)
    reach = max(shapely.get_parts(above), key=lambda part: part.length)
    inside = reach.interpolate(0.5, normalized=True)
    page.mouse.click(*pixel(inside.x, inside.y))
    assert page.inner_text("#edit-units") == micro["code"]
    page.click("#edit-draw")
    page.mouse.click(*pixel(x0, y0))
    page.mouse.click(*pixel(x1, y1))
    page.evaluate(LINE_TO_PREVIEW)
    page.keyboard.press("Enter")
    page.wait_for_selector("#edit-status[data-preview=preview]", timeout=30_000)
    # Reported, not asserted (issue target 300 ms p95; benchmarks/web_preview.py).
    preview_ms = page.wait_for_function("() => window.lineToPreview").json_value()
    assert micro["code"] in page.inner_text("#edit-impact")
    # On the map: the preview's lines, and the drawn line (terra-draw's redraw of
    # it, held while the preview was fetched, done since).
    page.wait_for_function(
        "() => window.tonggeEditor.adapter.held === null"
        " && window.tonggeMap.querySourceFeatures('preview').length > 0"
        " && window.tonggeMap.querySourceFeatures('td-linestring').length > 0",
        timeout=30_000,
    )
    # The preview's new boundaries were on the map with the marker, in the SVG
    # overlay (the map's own layers draw them a redraw or two later): one path
    # per unit after the split, where the map's preview layer then drew them.
    overlay = page.evaluate("() => window.previewOverlay")
    answer = page.evaluate("() => window.tonggeEditor.lastPreview")
    after = [
        f["properties"]["code"]
        for f in answer["geometry"]["features"]
        if f["properties"]["side"] == "after"
    ]
    assert overlay["role"] == "img" and overlay["label"]
    assert sorted(p["code"] for p in overlay["paths"]) == sorted(after)
    assert {p["side"] for p in overlay["paths"]} == {"after"}
    assert len(after) >= 2  # the two halves at least
    assert page.evaluate("() => window.previewSourceAtMarker") == 0  # not the map's yet
    page.wait_for_selector(".preview-overlay", state="detached", timeout=30_000)  # handed over
    covered = page.evaluate(OVERLAY_ON_MAP, overlay["paths"])
    assert covered["inside"] >= 4 and covered["hits"] == covered["inside"], covered
    page.screenshot(path=SCREENSHOTS / "edit_preview.png")
    # Someone else changes the micro-grid meanwhile (the same split, then
    # reverted: it is back as a new version). Saving is refused (412) with a
    # clear message, and one more preview lets the planner save.
    edits = f"{server.url}/api/v1/layers/governance/edits"
    body = page.evaluate("() => window.tonggeEditor.body(false)")
    seen = ", ".join(page.evaluate("() => Object.values(window.tonggeEditor.lastPreview.etags)"))
    other = httpx.post(edits, json={**body, "reason": "someone else"}, headers=admin, timeout=120)
    assert other.status_code == 200, other.text
    undone = httpx.post(
        f"{server.url}/api/v1/layers/governance/changesets/{other.json()['changeset']}/revert",
        json={},
        headers=admin,
        timeout=120,
    )
    assert undone.status_code == 200, undone.text
    for _ in range(150):  # until the server's edit state holds the new version
        probe = httpx.post(
            edits, json={**body, "dry_run": True}, headers={**admin, "If-Match": seen}, timeout=120
        )
        if probe.status_code == 412:
            break
        time.sleep(0.2)
    assert probe.status_code == 412, probe.text
    page.fill("#edit-reason", "浏览器测试 browser test")
    page.click("#edit-save")
    page.wait_for_selector("#edit-status[data-kind=error-412]", timeout=30_000)
    assert micro["code"] in page.inner_text("#edit-status")
    assert "预览" in page.inner_text("#edit-status") and page.is_disabled("#edit-save")
    page.screenshot(path=SCREENSHOTS / "edit_stale.png")
    page.click("#edit-preview")
    page.wait_for_selector("#edit-status[data-preview=preview]", timeout=30_000)
    assert micro["code"] in page.inner_text("#edit-impact")
    page.click("#edit-save")
    page.wait_for_selector("#edit-status[data-preview=applied]", timeout=30_000)
    saved = page.evaluate("() => window.tonggeEditor.lastSaved")
    assert saved["applied"] and saved["changeset"] and saved["created"]
    assert micro["code"] in saved["changed"] + saved["retired"]
    # Through the API: the grid has the new micro-grids (the change set takes
    # effect within a second or two of now).
    grid = next(u for u in located["layers"]["governance"]["units"] if u["level"] == "grid")
    for _ in range(60):
        children = httpx.get(
            f"{server.url}/api/v1/units/{grid['code']}",
            params={"layer": "governance"},
            headers=admin,
            timeout=60,
        ).json()["children"]
        codes = {c["code"] for c in children}
        if set(saved["created"]) <= codes:
            break
        time.sleep(0.5)
    assert set(saved["created"]) <= codes
    # On the map: the new micro-grids appear (tiles follow the change).
    page.wait_for_function(
        "(now) => { const fs = window.tonggeMap.querySourceFeatures('units', "
        "{sourceLayer: 'micro_grid'}).map(f => f.properties.code);"
        " return now.every(c => fs.includes(c)); }",
        arg=saved["created"],
        timeout=30_000,
    )
    page.screenshot(path=SCREENSHOTS / "edit_saved.png")
    # A new drawing clears the last answer: no stale marker, no stale impact (issue 14).
    page.click("#edit-draw")
    assert page.get_attribute("#edit-status", "data-preview") is None
    assert page.inner_text("#edit-impact").strip() == ""
    # The console notes the refused save (412) the test provoked, nothing else.
    errors = [e for e in recorder.errors if "status of 412" not in e]
    assert not recorder.outside(server.url) and not errors, errors
    print(json.dumps({"line_to_preview_ms": round(preview_ms, 1)}))


def test_grid_worker_sees_and_downloads_their_routes(server: Server, browser: Browser) -> None:
    located = httpx.post(
        f"{server.url}/api/v1/geocode",
        json={"x": POINT[0], "y": POINT[1], "crs": "cgcs2000"},
        headers=token(server, add_user(server.db, role="admin")),
        timeout=60,
    ).json()
    grid = next(u for u in located["layers"]["governance"]["units"] if u["level"] == "grid")
    username = add_user(server.db, role="grid_worker", units=[f"governance:{grid['code']}"])
    saved = httpx.post(
        f"{server.url}/api/v1/patrol/routes",
        json={"unit": grid["code"], "shift": "早班"},
        headers=token(server, username),
        timeout=120,
    )
    assert saved.status_code == 201, saved.text
    route = saved.json()["routes"][0]["id"]
    page = browser.new_page(viewport={"width": 1280, "height": 800})
    recorder = sign_in(page, server, username)
    page.fill("#query", grid["code"])
    page.press("#query", "Enter")
    page.click(f"#panel a[data-result=unit][data-code='{grid['code']}']")
    page.wait_for_selector(f"#patrol li[data-route='{route}']", timeout=30_000)
    drawn = page.evaluate(
        "() => window.tonggeMap.getSource('patrol-routes')._data.features.map(f => f.properties.id)"
    )
    assert route in drawn
    with page.expect_download() as caught:
        page.click(f"#patrol button[data-route='{route}'][data-format=gpx][data-datum=wgs84]")
    text = Path(caught.value.path()).read_text(encoding="utf-8")
    assert "<rte>" in text and grid["code"] in text
    page.screenshot(path=SCREENSHOTS / "grid_worker_routes.png")
    # Locating a place of the grid lists the routes covering it, like the API's answer.
    page.fill("#query", f"{POINT[0]},{POINT[1]}")
    page.press("#query", "Enter")
    page.wait_for_selector(
        f"#panel [data-section=routes] li[data-route='{route}'][data-unit='{grid['code']}']",
        timeout=30_000,
    )
    assert not recorder.outside(server.url) and not recorder.errors
