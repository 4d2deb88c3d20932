"""From finishing a drawn split line to the preview shown, in the real web map (issue 14).

Loads the sample city into a temporary SpatiaLite file, starts the API on it
(uvicorn in a child process, loopback only), signs a planner of district
``350502`` in to the web map in headless Chromium (Playwright) and, for
``--count`` different micro-grids spread over the district, draws a split
line with terra-draw across each one (boundary to boundary, between its
buildings, as ``tests/test_web.py`` does) and, once the map has drawn the
line's last click (as a person sees it before pressing Enter), finishes it
with Enter.

The time is taken in the page with ``performance.now()``: from the ``keyup``
of that Enter (terra-draw finishes a line on it; a listener in the capture
phase sees it before terra-draw does) to the first animation frame after the
UI marks the preview as shown (``#edit-status[data-preview=preview]``, set
once the impact panel is rendered and the preview's lines are in the SVG
overlay). Also reported: ``browser_map``, to the frame after the one that first
showed the preview's lines on the map, whichever way they are drawn: the SVG
overlay over the map (``browser_map_overlay``) or the map's own WebGL layers
(``browser_map_gl``, reported apart; the only way in bundles before the
overlay); the map's redraws between the Enter and the marker; when the page's
request ended. A refusal (``data-kind=error…``, or a 422 of the API on the
line before it is drawn) is counted, not timed.

Right after each draw, the very request the page sent (its
``tonggeEditor.body(true)``) is posted again through the HTTP API alone
(``POST /api/v1/layers/governance/edits``, ``dry_run``), so ``ratio`` shows
what the browser adds: drawing, request, JSON, rendering the panel.

Prints one JSON object (p50/p95 of both, ratio, counts, load average);
progress to stderr. Target: ``browser.p95_ms`` ≤ 300.
Run: ``python benchmarks/web_preview.py [--count 15]``.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import shapely

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import free_port, logger  # noqa: E402

from api.bootstrap import open_database  # noqa: E402
from gis.access import SYSTEM  # noqa: E402
from gis.access.accounts import create_user  # noqa: E402
from gis.settings import Settings  # noqa: E402

CHROMIUM = "/usr/bin/chromium"
LAYER, LEVEL, DISTRICT = "governance", "micro_grid", "350502"
PASSWORD = "web-preview-benchmark-password"
TARGET_P95_MS = 300.0
log = logger("web-preview-bench")

# Installed in the page just before Enter: resolves with the times (ms) from
# the Enter keyup to the preview marker, to the next animation frame (the panel
# painted), to the frame after the one that first showed the preview's lines in
# the SVG overlay (``.preview-overlay path``, web/src/overlay.js; none in older
# bundles) and to the frame after the map's WebGL canvas first drew them; the
# map's redraws before the marker; the page's own request (Resource Timing).
WATCH = """() => {
  const status = document.getElementById("edit-status");
  const map = window.tonggeMap;
  delete status.dataset.preview;  // the marker of the previous draw
  window.tonggeBench = new Promise((resolve) => {
    let start = null;
    let marked = null;
    let frame = null;
    let loaded = false;
    let renders = 0;  // the map's redraws from the Enter to the marker
    let overlay = null;  // the frame after the overlay's lines were painted
    let overlayPaths = 0;
    // The overlay's paths, with their coordinates, in the DOM: the next frame
    // paints them; the one after it starts once that one is on the screen.
    const onOverlay = () => {
      if (start === null || overlayPaths) return;
      const paths = [...document.querySelectorAll(".preview-overlay path")]
        .filter((path) => path.getAttribute("d"));
      if (!paths.length) return;
      overlayPaths = paths.length;
      overlayWatcher.disconnect();
      requestAnimationFrame(() => requestAnimationFrame(() => {
        overlay = performance.now() - start;
      }));
    };
    const overlayWatcher = new MutationObserver(onOverlay);
    overlayWatcher.observe(
      map.getContainer(), { childList: true, subtree: true, attributes: true });
    const onKey = (event) => {
      if (event.key === "Enter" && start === null) start = performance.now();
    };
    document.addEventListener("keyup", onKey, true);
    const onRender = () => {
      if (start === null) return;
      if (marked === null) renders += 1;
      else if (loaded) painted();
    };
    // The preview's tiles made (the source was set before the marker).
    const onData = (event) => {
      if (marked === null || event.sourceId !== "preview" || !event.tile) return;
      if (map.isSourceLoaded("preview")) loaded = true;
    };
    map.on("render", onRender);
    map.on("sourcedata", onData);
    const done = (result) => {
      map.off("render", onRender);
      map.off("sourcedata", onData);
      overlayWatcher.disconnect();
      document.removeEventListener("keyup", onKey, true);
      const sent = performance.getEntriesByType("resource")
        .filter((entry) => entry.name.includes("/edits"));
      const request = sent[sent.length - 1];
      resolve({
        ...result, text: status.textContent, renders_before_marker: renders,
        overlay_ms: overlay, overlay_paths: overlayPaths,
        request_ms: request ? request.duration : null,
        request_end_ms: request ? request.responseEnd - start : null,
      });
    };
    // The map drew a frame with the preview in it: the next animation frame
    // starts once that one is on the screen.
    let painting = false;
    const painted = () => {
      if (painting) return;
      painting = true;
      requestAnimationFrame(() => done({
        refused: false, marker_ms: marked - start, frame_ms: frame - start,
        map_gl_ms: performance.now() - start,
      }));
    };
    const watcher = new MutationObserver(() => {
      const shown = status.dataset.preview === "preview";
      const refused = (status.dataset.kind || "").startsWith("error");
      if (!shown && !refused) return;
      marked = performance.now();
      watcher.disconnect();
      if (refused) {
        done({ refused: true, marker_ms: null, frame_ms: null, map_gl_ms: null });
        return;
      }
      requestAnimationFrame(() => { frame = performance.now(); });
      // Not drawn within 10 s (should not happen): the map's time is left out.
      setTimeout(() => {
        if (painting) return;
        painting = true;
        done({
          refused: false, marker_ms: marked - start, frame_ms: frame - start, map_gl_ms: null,
        });
      }, 10_000);
    });
    watcher.observe(status, { attributes: true, attributeFilter: ["data-preview", "data-kind"] });
  });
}"""


# Resolves once the map has drawn what is pending (its next "idle"), or after 1 s
# when nothing was (then no "idle" comes).
SETTLE = """() => new Promise((resolve) => {
  window.tonggeMap.once("idle", resolve);
  setTimeout(resolve, 1000);
})"""


def percentiles(ms: list[float]) -> dict[str, Any]:
    """Return p50/p95/max of a list of milliseconds (``None`` when empty)."""
    if not ms:
        return {"n": 0, "p50_ms": None, "p95_ms": None, "max_ms": None}
    values = np.asarray(ms)
    return {
        "n": len(values),
        "p50_ms": round(float(np.percentile(values, 50)), 1),
        "p95_ms": round(float(np.percentile(values, 95)), 1),
        "max_ms": round(float(values.max()), 1),
    }


def split_line(polygon: Any, footprints: Any) -> Any | None:
    """Return a straight segment across ``polygon``, boundary to boundary, missing buildings."""
    minx, miny, maxx, maxy = polygon.bounds
    shares = np.linspace(0.3, 0.7, 41)
    lines = [((minx - 1, y), (maxx + 1, y)) for y in miny + shares * (maxy - miny)]
    lines += [((x, miny - 1), (x, maxy + 1)) for x in minx + shares * (maxx - minx)]
    for start, end in lines:
        across = shapely.LineString([start, end]).intersection(polygon)
        span = maxy - miny if start[0] == end[0] else maxx - minx
        parts = [p for p in shapely.get_parts(across) if p.length > span / 3]
        if len(parts) == 1 and not parts[0].intersects(footprints):
            return parts[0]
    return None


def candidates(db: Any, count: int) -> list[tuple[str, Any, Any]]:
    """Return up to ``count`` micro-grids of the district, spread over its codes, with a line."""
    from gis.units import units_page

    units, _ = units_page(db, layer=LAYER, level=LEVEL, limit=100_000)
    units = units[units["code"].str.startswith(DISTRICT)].sort_values("code")
    found: list[tuple[str, Any, Any]] = []
    # Three times as many tried as needed: some have no straight line between buildings.
    step = max(1, len(units) // (count * 3))
    for code, polygon in zip(units["code"][::step], units.geometry.values[::step], strict=True):
        with db.reader() as repo:
            buildings = repo.places.buildings_frame(bbox=polygon.bounds)
        footprints = shapely.union_all(np.asarray(buildings.geometry.values)).buffer(2e-5)
        segment = split_line(polygon, footprints)
        if segment is not None:
            found.append((code, polygon, segment))
        if len(found) == count:
            break
    return found


def start_server(url: str, port: int) -> subprocess.Popen[bytes]:
    """Start the API on ``url`` (loopback only); return once it is ready."""
    env = {
        **os.environ,
        "TONGGE_DATABASE_URL": url,
        "TONGGE_LOAD_SAMPLE_CITY": "false",
        "TONGGE_SECRET_KEY": secrets.token_urlsafe(48),
        "PYTHONPATH": str(ROOT),
    }
    command = [sys.executable, "-m", "uvicorn", "api.app:create_server_app", "--factory"]
    command += ["--host", "127.0.0.1", "--port", str(port), "--no-access-log"]
    process = subprocess.Popen([*command, "--log-level", "warning"], cwd=ROOT, env=env)
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/health/ready", timeout=60).status_code == 200:
                return process
        except httpx.TransportError:
            pass
        if process.poll() is not None:
            raise SystemExit("the server stopped while starting")
        time.sleep(0.5)
    process.terminate()
    raise SystemExit("the server did not become ready")


def draw_all(
    base: str, username: str, grids: list[tuple[str, Any, Any]], *, pause: bool = True
) -> dict[str, Any]:
    """Draw each split in the web map; time it there and through the API alone."""
    from playwright.sync_api import sync_playwright

    answer = httpx.post(
        f"{base}/api/v1/auth/token", data={"username": username, "password": PASSWORD}, timeout=60
    )
    headers = {"Authorization": f"Bearer {answer.json()['access_token']}"}
    edits = f"{base}/api/v1/layers/{LAYER}/edits"
    browser_ms: list[float] = []
    marker_ms: list[float] = []
    map_ms: list[float] = []
    map_gl_ms: list[float] = []
    overlay_ms: list[float] = []
    overlay_paths: list[int] = []
    request_end_ms: list[float] = []
    renders: list[int] = []
    request_ms: list[float] = []
    api_ms: list[float] = []
    api_before_ms: list[float] = []
    first_ms: float | None = None
    refused: list[dict[str, str]] = []
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=CHROMIUM,
            args=["--no-sandbox", "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1"],
        )
        page = chromium.new_page(viewport={"width": 1280, "height": 800})
        page.on("console", lambda m: log(f"console: {m.text}") if m.type == "error" else None)
        page.on("pageerror", lambda error: log(f"page error: {error}"))
        page.goto(f"{base}/")
        page.fill("input[name=username]", username)
        page.fill("input[name=password]", PASSWORD)
        page.click("#signin-form button[type=submit]")
        page.wait_for_selector("body[data-ready=true]", timeout=60_000)
        page.click("#edit-toggle")
        page.select_option("#edit-op", "split")
        for number, (code, polygon, segment) in enumerate(grids, 1):
            page.click("#edit-reset")
            minx, miny, maxx, maxy = polygon.bounds
            page.evaluate(
                "(b) => window.tonggeMap.fitBounds(b, {padding: 120, animate: false})",
                [[minx, miny], [maxx, maxy]],
            )
            page.wait_for_function(
                "() => window.tonggeMap.loaded() && window.tonggeMap.areTilesLoaded()",
                timeout=60_000,
            )
            box = page.locator("#map").bounding_box()
            assert box is not None
            origin = (box["x"], box["y"])

            def pixel(
                lon: float, lat: float, origin: tuple[float, float] = origin
            ) -> tuple[float, float]:
                point = page.evaluate("(p) => window.tonggeMap.project(p)", [lon, lat])
                return origin[0] + point["x"], origin[1] + point["y"]

            (x0, y0), (x1, y1) = segment.coords[0], segment.coords[-1]
            inner = segment.interpolate(0.5, normalized=True)
            # Pick the unit off the line: north of a west-east line, east of a north-south one.
            away = (maxx + 1, inner.y) if x0 == x1 else (inner.x, maxy + 1)
            above = shapely.LineString([(inner.x, inner.y), away]).intersection(polygon)
            reach = max(shapely.get_parts(above), key=lambda part: part.length)
            inside = reach.interpolate(0.5, normalized=True)
            page.mouse.click(*pixel(inside.x, inside.y))
            picked = page.inner_text("#edit-units")
            if picked != code:
                log(f"{number}/{len(grids)} {code}: the click picked {picked!r}, skipped")
                continue
            # The API alone first, on the same line (the page's copy, after, is its body).
            line = {"type": "LineString", "coordinates": [[x0, y0], [x1, y1]]}
            before = {"op": "split", "level": LEVEL, "units": [code], "dry_run": True}
            start = time.perf_counter()
            direct = httpx.post(
                edits,
                json={**before, "cascade": "new", "geometry": line},
                headers=headers,
                timeout=120,
            )
            api_before = (time.perf_counter() - start) * 1000
            if direct.status_code == 422:  # the server sees the line touch a building
                refused.append({"code": code, "status": direct.text[:200]})
                log(f"{number}/{len(grids)} {code}: refused by the API, not drawn")
                continue
            assert direct.status_code == 200, direct.text
            page.click("#edit-draw")
            page.mouse.click(*pixel(x0, y0))
            page.mouse.click(*pixel(x1, y1))
            # A person sees the line reach its last point before pressing Enter:
            # the map draws that click first (the next time it is idle; at most 1 s).
            if pause:
                page.evaluate(SETTLE)
            page.evaluate(WATCH)
            page.keyboard.press("Enter")
            seen = page.evaluate("() => window.tonggeBench")
            if seen["refused"]:
                refused.append({"code": code, "status": seen["text"][:200]})
                log(f"{number}/{len(grids)} {code}: refused: {seen['text'][:120]}")
                continue
            if first_ms is None:  # the first preview of the page: a warm-up, not counted
                first_ms = seen["frame_ms"]
                log(f"{number}/{len(grids)} {code}: first preview {first_ms:.0f} ms (warm-up)")
                continue
            browser_ms.append(seen["frame_ms"])
            marker_ms.append(seen["marker_ms"])
            renders.append(seen["renders_before_marker"])
            # On the map, drawn either way: the SVG overlay or the map's own layers.
            shown = [seen[key] for key in ("overlay_ms", "map_gl_ms") if seen[key] is not None]
            if shown:
                map_ms.append(min(shown))
            if seen["map_gl_ms"] is not None:
                map_gl_ms.append(seen["map_gl_ms"])
            if seen["overlay_ms"] is not None:
                overlay_ms.append(seen["overlay_ms"])
            overlay_paths.append(seen["overlay_paths"])
            if seen["request_ms"] is not None:
                request_ms.append(seen["request_ms"])
                request_end_ms.append(seen["request_end_ms"])
            api_before_ms.append(api_before)
            body = page.evaluate("() => window.tonggeEditor.body(true)")
            start = time.perf_counter()
            direct = httpx.post(edits, json=body, headers=headers, timeout=120)
            api_ms.append((time.perf_counter() - start) * 1000)
            assert direct.status_code == 200, direct.text
            api_ms.append(api_before)
            log(
                f"{number}/{len(grids)} {code}: browser {seen['frame_ms']:.0f} ms "
                f"(its request {seen['request_ms'] or 0:.0f} ms, map "
                f"{map_ms[-1] if shown else 0:.0f} ms (overlay {seen['overlay_ms'] or 0:.0f}, "
                f"GL {seen['map_gl_ms'] or 0:.0f}), {seen['renders_before_marker']} redraws "
                "before the answer was shown), API alone "
                f"{api_before:.0f} ms before, {api_ms[-2]:.0f} ms after"
            )
        chromium.close()
    return {
        "browser": percentiles(browser_ms),
        "browser_marker": percentiles(marker_ms),
        "browser_request": percentiles(request_ms),
        "browser_request_end": percentiles(request_end_ms),
        "browser_map": percentiles(map_ms),
        "browser_map_gl": percentiles(map_gl_ms),
        "browser_map_overlay": percentiles(overlay_ms),
        "overlay_paths": overlay_paths,
        "map_redraws_before_marker": renders,
        "api": percentiles(api_ms),
        "api_before_draw": percentiles(api_before_ms),
        "first_preview_ms": None if first_ms is None else round(first_ms, 1),
        "refused": refused,
    }


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and print the JSON result."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=15, help="micro-grids to split")
    parser.add_argument(
        "--city", type=Path, help="a SQLite file of the sample city to copy instead of loading it"
    )
    parser.add_argument(
        "--no-pause",
        action="store_true",
        help="press Enter right after the last click, the map still drawing it (as before)",
    )
    args = parser.parse_args(argv)
    folder = Path(tempfile.mkdtemp(prefix="tongge-web-preview-"))
    url = f"sqlite:///{folder / 'city.sqlite'}"
    if args.city is not None:
        shutil.copyfile(args.city, folder / "city.sqlite")
    else:
        log("loading the sample city (about a minute)")
    db = open_database(Settings(database_url=url, load_sample_city=args.city is None), create=True)
    username = f"planner-web-preview-{secrets.token_hex(4)}"
    create_user(
        db,
        username=username,
        role="planner",
        units=[f"{LAYER}:{DISTRICT}"],
        password=PASSWORD,
        actor=SYSTEM,
    )
    grids = candidates(db, args.count + 1)  # the first one warms the page up
    db.dispose()
    log(f"{len(grids)} micro-grids with a line between their buildings")
    port = free_port()
    server = start_server(url, port)
    try:
        timings = draw_all(f"http://127.0.0.1:{port}", username, grids, pause=not args.no_pause)
    finally:
        server.terminate()
        server.wait(timeout=30)
        shutil.rmtree(folder, ignore_errors=True)
    browser, api = timings["browser"], timings["api"]
    ratio = (
        {key: round(browser[key] / max(api[key], 1e-6), 2) for key in ("p50_ms", "p95_ms")}
        if browser["n"]
        else None
    )
    result = {
        "benchmark": "web_preview",
        "count": browser["n"],
        "refused_count": len(timings["refused"]),
        "pause_before_enter": not args.no_pause,
        "browser": browser,
        "browser_marker": timings["browser_marker"],
        "browser_request": timings["browser_request"],
        "browser_request_end": timings["browser_request_end"],
        "browser_map": timings["browser_map"],
        "browser_map_gl": timings["browser_map_gl"],
        "browser_map_overlay": timings["browser_map_overlay"],
        "overlay_paths": timings["overlay_paths"],
        "map_redraws_before_marker": timings["map_redraws_before_marker"],
        "first_preview_ms": timings["first_preview_ms"],
        "api": api,
        "api_before_draw": timings["api_before_draw"],
        "ratio_browser_over_api": ratio,
        "target_p95_ms": TARGET_P95_MS,
        "meets_target": browser["p95_ms"] is not None and browser["p95_ms"] <= TARGET_P95_MS,
        "refused": timings["refused"],
        "load_average": [round(value, 2) for value in os.getloadavg()],
        "machine": {"cpus": os.cpu_count(), "python": sys.version.split()[0]},
    }
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
