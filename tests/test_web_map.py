"""The web map's foundations in a real headless Chromium: basemap, labels, links, images.

- an external basemap in GCJ-02, served by this test on loopback: the overlay
  tiles are asked for in GCJ-02 and what the page sends back is CGCS2000;
- labels (unit names and codes, street names) drawn from the glyphs this
  server ships, CJK from the local font, with no other request;
- the URL holds the view (centre, zoom, layer, level, selected unit) and a
  link opens the same view; the view saves as a PNG and prints.
"""

from __future__ import annotations

import http.server
import json
import re
import shutil
import struct
import threading
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from playwright.sync_api import Browser, Page

from gis.datum import wgs84_to_gcj02
from gis.repository import Database
from tests._client import add_user
from tests._webserver import free_port
from tests._webserver import serve as serve_url
from tests.test_web import (  # noqa: F401  (browser: fixture)
    POINT,
    SCREENSHOTS,
    Server,
    browser,
    rendered_units,
    sign_in,
    token,
)


@contextmanager
def serve(db: Database, **settings: Any) -> Iterator[Server]:
    """Run the API on ``db`` with ``settings`` on a free loopback port."""
    with serve_url(db, **settings) as url:
        yield Server(url=url, db=db)


@pytest.fixture(scope="module")
def city(sample_city_file: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Database]:
    path = tmp_path_factory.mktemp("webmap") / "city.sqlite"
    shutil.copyfile(sample_city_file, path)
    db = Database(f"sqlite:///{path}")
    yield db
    db.dispose()


@pytest.fixture(scope="module")
def server(city: Database) -> Iterator[Server]:
    """Serve the default, offline configuration."""
    with serve(city) as running:
        yield running


def _png(size: int = 256) -> bytes:
    # A checkered test tile (no imaging library needed): 8-bit RGB, one filter byte per row.
    rows = b"".join(
        b"\x00"
        + b"".join(
            (b"\xd8\xe8\xf0" if ((x // 32) + (y // 32)) % 2 else b"\xf0\xf0\xe0")
            for x in range(size)
        )
        for y in range(size)
    )

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    header = struct.pack(">IIBBBBB", size, size, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(rows))
        + chunk(b"IEND", b"")
    )


class TileServer:
    """A raster tile server on loopback: every /{z}/{x}/{y}.png is a checkered tile."""

    def __init__(self) -> None:
        self.requests: list[str] = []
        tile = _png()
        requests = self.requests

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                requests.append(self.path)
                if not re.fullmatch(r"/tiles/\d+/\d+/\d+\.png", self.path):
                    self.send_error(404)
                    return
                self.send_response(200)
                self.send_header("Content-Type", "image/png")
                self.send_header("Content-Length", str(len(tile)))
                self.send_header("Access-Control-Allow-Origin", "*")
                self.end_headers()
                self.wfile.write(tile)

            def log_message(self, *args: object) -> None:
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
        self.origin = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self) -> TileServer:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def wait_drawn(page: Page) -> None:
    page.wait_for_function("() => window.tonggeMap.loaded() && window.tonggeMap.areTilesLoaded()")


def test_map_config_is_offline_by_default(server: Server) -> None:
    username = add_user(server.db, role="grid_worker", units=["governance:350502"])
    answer = httpx.get(
        f"{server.url}/api/v1/map/config", headers=token(server, username), timeout=60
    )
    assert answer.status_code == 200
    body = answer.json()
    assert body["basemap"] is None and body["fonts"] == ["Noto Sans Regular", "Noto Sans Bold"]
    assert httpx.get(f"{server.url}/api/v1/map/config", timeout=60).status_code == 401
    # The page may load from this server only.
    csp = httpx.get(f"{server.url}/", timeout=60).headers["content-security-policy"]
    assert "http" not in csp


def test_glyphs_are_served_offline(server: Server) -> None:
    latin = httpx.get(f"{server.url}/glyphs/Noto Sans Regular/0-255.pbf", timeout=60)
    assert latin.status_code == 200 and len(latin.content) > 10_000
    # Glyph "0" (id 48) is in the range, with an SDF bitmap.
    assert b"Noto Sans Regular" in latin.content and b"0-255" in latin.content
    # A range not shipped (CJK is drawn locally) is an empty glyph set, not an error.
    cjk = httpx.get(f"{server.url}/glyphs/Noto Sans Regular/19968-20223.pbf", timeout=60)
    assert cjk.status_code == 200 and cjk.content == b""
    for bad in ("Comic Sans/0-255", "Noto Sans Regular/1-256", "Noto Sans Regular/65536-65791"):
        assert httpx.get(f"{server.url}/glyphs/{bad}.pbf", timeout=60).status_code == 404


def test_labels_render_with_no_network(server: Server, browser: Browser) -> None:  # noqa: F811
    username = add_user(server.db, role="admin")
    page = browser.new_page(viewport={"width": 1280, "height": 800})
    recorder = sign_in(
        page,
        server,
        username,
        hash_=f"#map=16.5/{POINT[1]}/{POINT[0]}&layer=governance&level=micro_grid",
    )
    wait_drawn(page)
    # Symbols are placed a few layers per frame, after the tiles have loaded.
    page.wait_for_function(
        "() => ['unit-labels', 'street-labels'].every(id =>"
        " window.tonggeMap.queryRenderedFeatures({layers: [id]}).length > 0)",
        timeout=30_000,
    )
    labels = page.evaluate(
        "() => window.tonggeMap.queryRenderedFeatures({layers: ['unit-labels', 'street-labels']})"
        ".map(f => [f.layer.id, f.properties.name, f.properties.code])"
    )
    units = {code for layer, _, code in labels if layer == "unit-labels"}
    streets = {name for layer, name, _ in labels if layer == "street-labels"}
    assert units and streets, labels
    assert units <= {u["code"] for u in rendered_units(page, "micro_grid")}
    page.screenshot(path=SCREENSHOTS / "labels.png")
    glyphs = [u for u in recorder.urls if "/glyphs/" in u]
    assert glyphs, "no glyphs asked for"
    # Latin ranges only: Chinese comes from the local font, not the server.
    shipped = ("/0-255.pbf", "/256-511.pbf", "/8192-8447.pbf")
    assert all(u.endswith(shipped) for u in glyphs), glyphs
    assert not recorder.outside(server.url) and not recorder.errors, recorder.errors


def test_a_link_opens_the_same_view_with_the_selected_unit(
    server: Server,
    browser: Browser,  # noqa: F811
    tmp_path: Path,
) -> None:
    username = add_user(server.db, role="admin")
    page = browser.new_page(viewport={"width": 1280, "height": 800})
    recorder = sign_in(page, server, username, hash_="#layer=governance&level=grid")
    # Locate a point: its grid is selected, and the URL says so.
    page.fill("#query", f"{POINT[0]},{POINT[1]}")
    page.click("#search button[type=submit]")
    page.wait_for_selector("[data-status]")
    expected = httpx.post(
        f"{server.url}/api/v1/geocode",
        json={"x": POINT[0], "y": POINT[1], "crs": "cgcs2000"},
        headers=token(server, username),
        timeout=60,
    ).json()
    grid = next(u for u in expected["layers"]["governance"]["units"] if u["level"] == "grid")
    page.wait_for_function("(code) => location.hash.includes(`unit=${code}`)", arg=grid["code"])
    page.evaluate("(c) => window.tonggeMap.jumpTo({center: c, zoom: 15.25})", list(POINT))
    page.wait_for_function("() => location.hash.includes('map=15.25/')")
    link = page.url
    params = parse_qs(urlsplit(link).fragment)
    zoom, lat, lon = (float(v) for v in params["map"][0].split("/"))
    assert (zoom, params["layer"], params["level"]) == (15.25, ["governance"], ["grid"])
    assert abs(lat - POINT[1]) < 1e-5 and abs(lon - POINT[0]) < 1e-5
    # Save the view as a PNG: the canvas as drawn (not blank).
    with page.expect_download() as download:
        page.click("#png")
    saved = tmp_path / "view.png"
    download.value.save_as(saved)
    data = saved.read_bytes()
    assert (
        data.startswith(b"\x89PNG\r\n\x1a\n") and grid["code"] in download.value.suggested_filename
    )
    width, height = struct.unpack(">II", data[16:24])
    assert width >= 800 and height >= 600 and len(data) > 30_000  # a one-colour image is tiny
    # Print: only the map is printed.
    page.emulate_media(media="print")
    assert not page.is_visible("#side") and not page.is_visible("#bar") and page.is_visible("#map")
    page.emulate_media(media="screen")
    # A colleague opens the link: same layer, level, centre, zoom, and the unit is open.
    other = browser.new_page(viewport={"width": 1280, "height": 800})
    again = sign_in(other, server, username, hash_="#" + urlsplit(link).fragment)
    other.wait_for_selector(f"h2[data-unit='{grid['code']}']")
    assert other.input_value("#layer") == "governance" and other.input_value("#level") == "grid"
    view = other.evaluate(
        "() => ({c: window.tonggeMap.getCenter().toArray(), z: window.tonggeMap.getZoom(),"
        " f: window.tonggeMap.getFilter('units-selected')})"
    )
    assert abs(view["z"] - 15.25) < 1e-6 and abs(view["c"][0] - POINT[0]) < 1e-5
    assert view["f"][2] == grid["code"]
    for rec in (recorder, again):
        assert not rec.outside(server.url) and not rec.errors, rec.errors


def test_gcj02_basemap_gets_gcj02_overlays_and_sends_cgcs2000(
    city: Database,
    browser: Browser,  # noqa: F811
) -> None:
    with (
        TileServer() as tiles,
        serve(
            city,
            basemap_url=f"{tiles.origin}/tiles/{{z}}/{{x}}/{{y}}.png",
            basemap_datum="gcj02",
            basemap_attribution="测试底图 test tiles",
        ) as server,
    ):
        csp = httpx.get(f"{server.url}/", timeout=60).headers["content-security-policy"]
        assert f"img-src 'self' data: blob: {tiles.origin};" in csp
        assert f"connect-src 'self' {tiles.origin};" in csp
        username = add_user(server.db, role="dispatcher", units=["governance:350502"])
        page = browser.new_page(viewport={"width": 1280, "height": 800})
        recorder = sign_in(page, server, username)
        wait_drawn(page)
        assert tiles.requests, "the basemap was not drawn"
        overlays = [u for u in recorder.urls if "/api/v1/tiles/" in u]
        assert overlays and all(u.endswith("?datum=gcj02") for u in overlays), overlays
        assert "测试底图" in page.inner_text(".maplibregl-ctrl-attrib")
        # Click where POINT is drawn on this basemap (its GCJ-02 position): the
        # page asks the server about POINT itself, in CGCS2000.
        gx, gy = wgs84_to_gcj02([POINT[0]], [POINT[1]])
        shown = [float(gx[0]), float(gy[0])]
        page.evaluate("(c) => window.tonggeMap.jumpTo({center: c, zoom: 16})", shown)
        wait_drawn(page)
        at = page.evaluate("(c) => window.tonggeMap.project(c)", shown)
        box = page.locator("#map").bounding_box()
        assert box is not None
        with page.expect_request("**/api/v1/geocode") as request:
            page.mouse.click(box["x"] + at["x"], box["y"] + at["y"])
        sent = json.loads(request.value.post_data or "{}")
        assert sent["crs"] == "cgcs2000"
        # A pixel is ~2 m at zoom 16: the point comes back within a few metres.
        assert abs(sent["x"] - POINT[0]) < 5e-5 and abs(sent["y"] - POINT[1]) < 5e-5
        page.wait_for_selector("[data-status=ok]")
        # The micro-grid under the click, as drawn on the GCJ-02 tiles, is POINT's.
        expected = httpx.post(
            f"{server.url}/api/v1/geocode",
            json={"x": POINT[0], "y": POINT[1], "crs": "cgcs2000"},
            headers=token(server, username),
            timeout=60,
        ).json()
        micro = next(
            u for u in expected["layers"]["governance"]["units"] if u["level"] == "micro_grid"
        )
        under = page.evaluate(
            "(p) => window.tonggeMap.queryRenderedFeatures([p.x, p.y], {layers: ['units-fill']})"
            ".map(f => f.properties.code)",
            at,
        )
        assert under == [micro["code"]]
        # The link keeps the centre in CGCS2000, whatever the basemap.
        page.wait_for_function("() => location.hash.includes('map=16.00/')")
        zoom, lat, lon = (
            float(v) for v in parse_qs(urlsplit(page.url).fragment)["map"][0].split("/")
        )
        assert zoom == 16 and abs(lat - POINT[1]) < 1e-5 and abs(lon - POINT[0]) < 1e-5
        page.screenshot(path=SCREENSHOTS / "basemap_gcj02.png")
        outside = [u for u in recorder.outside(server.url) if not u.startswith(tiles.origin)]
        assert not outside and not recorder.errors, (outside, recorder.errors)
        # A planner draws on the GCJ-02 basemap: the line reaches the server in CGCS2000.
        planner = add_user(server.db, role="planner", units=["governance:350502"])
        page = browser.new_page(viewport={"width": 1280, "height": 800})
        link = f"#map=17/{POINT[1]}/{POINT[0]}&layer=governance&level=micro_grid"
        recorder = sign_in(page, server, planner, hash_=link)
        wait_drawn(page)
        box = page.locator("#map").bounding_box()
        assert box is not None

        def pixel(lon: float, lat: float) -> tuple[float, float]:
            gx, gy = wgs84_to_gcj02([lon], [lat])
            at = page.evaluate("(c) => window.tonggeMap.project(c)", [float(gx[0]), float(gy[0])])
            return box["x"] + at["x"], box["y"] + at["y"]

        page.click("#edit-toggle")
        page.select_option("#edit-op", "split")
        page.mouse.click(*pixel(*POINT))
        assert page.inner_text("#edit-units") == micro["code"]
        page.click("#edit-draw")
        ends = [(POINT[0] - 3e-4, POINT[1]), (POINT[0] + 3e-4, POINT[1])]
        page.mouse.click(*pixel(*ends[0]))
        page.mouse.click(*pixel(*ends[1]))
        with page.expect_request("**/api/v1/layers/governance/edits") as request:
            page.keyboard.press("Enter")
        sent = json.loads(request.value.post_data or "{}")
        assert sent["dry_run"] is True and sent["units"] == [micro["code"]]
        drawn = sent["geometry"]["coordinates"]
        # A pixel is ~1 m at zoom 17; unconverted, the line would be ~500 m off.
        assert len(drawn) == 2
        for (lon, lat), (x, y) in zip(drawn, ends, strict=True):
            assert abs(lon - x) < 3e-5 and abs(lat - y) < 3e-5, (drawn, ends)
        outside = [u for u in recorder.outside(server.url) if not u.startswith(tiles.origin)]
        assert not outside
