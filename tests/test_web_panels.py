"""The web map's views in headless Chromium: tree, search, unit panel, same grid, roles.

Hierarchy tree, search, the unit panel (workload, staff, other layers,
history with revert), the same-grid view, workload colours — and what each
role is offered, on the sample city.

Every answer on screen is compared with what the API gives the same user; every
request the page makes must go to the server itself. Screenshots go to
``$TONGGE_SCREENSHOTS`` (default ``var/screenshots``); the README shows copies.
"""

from __future__ import annotations

from datetime import date
from typing import Any

import httpx
import shapely
from playwright.sync_api import Browser, Page

from tests._client import add_user
from tests.test_web import (  # noqa: F401  (browser and server: fixtures)
    POINT,
    SCREENSHOTS,
    Recorder,
    Server,
    browser,
    server,
    sign_in,
    token,
)

#: Long enough for a loaded machine (the first workload after a change is computed).
WAIT = 120_000


def get(site: Server, headers: dict[str, str], path: str, **params: Any) -> Any:
    answer = httpx.get(f"{site.url}{path}", params=params, headers=headers, timeout=60)
    assert answer.status_code == 200, answer.text
    return answer.json()


def grid_at_point(site: Server, headers: dict[str, str]) -> str:
    located = httpx.post(
        f"{site.url}/api/v1/geocode",
        json={"x": POINT[0], "y": POINT[1], "crs": "cgcs2000"},
        headers=headers,
        timeout=60,
    ).json()
    return next(u["code"] for u in located["layers"]["governance"]["units"] if u["level"] == "grid")


def open_page(chromium: Browser, site: Server, username: str) -> tuple[Page, Recorder]:
    page = chromium.new_page(viewport={"width": 1280, "height": 860})
    recorder = sign_in(page, site, username)
    return page, recorder


def settle(page: Page) -> None:
    page.wait_for_function(
        "() => { const m = window.tonggeMap;"
        " return !m.isMoving() && m.loaded() && m.areTilesLoaded(); }",
        timeout=WAIT,
    )


def search(page: Page, text: str) -> None:
    page.fill("#query", text)
    page.click("#search button[type=submit]")
    page.wait_for_selector("#panel [data-result]", timeout=WAIT)


def result_codes(page: Page) -> set[tuple[str, str]]:
    return {
        (link.get_attribute("data-layer") or "", link.get_attribute("data-code") or "")
        for link in page.locator("#panel a[data-result=unit]").all()
    }


def open_unit_by_search(page: Page, code: str) -> None:
    search(page, code)
    page.click(f"#panel a[data-result=unit][data-code='{code}']")
    page.wait_for_selector(f"#panel[data-loaded='{code}'] h2[data-unit='{code}']", timeout=WAIT)


def clean(recorder: Recorder, site: Server, *, refused: tuple[int, ...] = ()) -> None:
    """No request left the server; no error in the page but the refusals the test provoked."""
    assert not recorder.outside(site.url), recorder.outside(site.url)
    provoked = tuple(f"status of {status} " for status in refused)
    errors = [e for e in recorder.errors if not (provoked and any(p in e for p in provoked))]
    assert not errors, errors


def test_tree_loads_children_on_demand_and_flies_to_the_unit(
    server: Server,  # noqa: F811
    browser: Browser,  # noqa: F811
) -> None:
    username = add_user(server.db, role="admin")
    headers = token(server, username)
    grid = grid_at_point(server, headers)
    page, recorder = open_page(browser, server, username)
    page.click("#view-tree")
    page.wait_for_selector("#tree-box li[data-code='350502']")
    roots = page.locator("#tree-box > ul > li").all()
    assert [r.get_attribute("data-code") for r in roots] == ["350502"]
    asked = lambda: [u for u in recorder.urls if "parent=" in u]  # noqa: E731
    assert asked() == []  # nothing below the roots until a branch opens
    for code in ("350502", grid[:9], grid[:12]):
        page.click(f"#tree-box li[data-code='{code}'] > button.toggle")
        page.wait_for_selector(f"#tree-box li[data-code='{code}'] > ul > li")
        shown = page.locator(f"#tree-box li[data-code='{code}'] > ul > li").all()
        expected = get(server, headers, "/api/v1/layers/governance/units", parent=code, limit=1000)
        assert [li.get_attribute("data-code") for li in shown] == [
            f["properties"]["code"] for f in expected["features"]
        ]
    assert len(asked()) == 3
    page.click(f"#tree-box a[data-code='{grid}']")
    page.wait_for_selector(f"#panel[data-loaded='{grid}']", timeout=WAIT)
    assert page.input_value("#level") == "grid"
    settle(page)
    unit = get(server, headers, f"/api/v1/units/{grid}", layer="governance")
    inside = shapely.geometry.shape(unit["geometry"]).representative_point()
    bounds = page.evaluate("() => window.tonggeMap.getBounds().toArray()")
    assert bounds[0][0] < inside.x < bounds[1][0] and bounds[0][1] < inside.y < bounds[1][1]
    selected = page.evaluate("() => window.tonggeMap.getFilter('units-selected')")
    assert grid in str(selected)
    page.screenshot(path=SCREENSHOTS / "tree.png")
    clean(recorder, server)


def test_search_by_code_name_and_address(
    server: Server,  # noqa: F811
    browser: Browser,  # noqa: F811
) -> None:
    username = add_user(server.db, role="dispatcher", units=["governance:350502"])
    headers = token(server, username)
    grid = grid_at_point(server, headers)
    page, recorder = open_page(browser, server, username)
    name = get(server, headers, f"/api/v1/units/{grid[:12]}")["properties"]["name"]
    for text in (name, grid[:12]):
        search(page, text)
        expected = set()
        for layer in ("governance", "police"):
            found = get(server, headers, f"/api/v1/layers/{layer}/units", q=text, limit=20)
            expected |= {(layer, f["properties"]["code"]) for f in found["features"]}
        assert expected and result_codes(page) == expected, text
    assert all(code.startswith(grid[:12]) for _, code in result_codes(page))
    page.screenshot(path=SCREENSHOTS / "search.png")
    page.click(f"#panel a[data-result=unit][data-code='{grid}']")
    page.wait_for_selector(f"#panel[data-loaded='{grid}']", timeout=WAIT)
    assert page.input_value("#level") == "grid"
    # An address: the geocoder's match, then the units at every level.
    building = get(server, headers, f"/api/v1/units/{grid}/buildings", limit=1)["buildings"][0]
    search(page, building["address"])
    page.click("#panel a[data-result=address]")
    page.wait_for_selector("[data-status]")
    answer = httpx.post(
        f"{server.url}/api/v1/geocode",
        json={"address": building["address"]},
        headers=headers,
        timeout=60,
    ).json()
    assert page.get_attribute("[data-status]", "data-status") == answer["status"]
    row = page.locator("tr[data-layer='governance'][data-level='grid']")
    grid_found = next(u for u in answer["layers"]["governance"]["units"] if u["level"] == "grid")
    assert grid_found["code"] in row.inner_text()
    search(page, "没有这个地方的名字")
    assert page.locator("#panel [data-result=none]").count() == 1
    clean(recorder, server)


def _neighbours_over(site: Server, headers: dict[str, str], grid: str) -> tuple[str, str]:
    """Two touching micro-grids of ``grid`` whose households add up to over 100."""
    micro = get(site, headers, "/api/v1/layers/governance/units", parent=grid, limit=1000)
    load = {
        row["code"]: row["households"]
        for row in get(site, headers, "/api/v1/workload", level="micro_grid")["units"]
    }
    shapes = {
        f["properties"]["code"]: shapely.geometry.shape(f["geometry"]) for f in micro["features"]
    }
    pairs = [
        (a, b)
        for a in shapes
        for b in shapes
        if a < b
        and shapes[a].intersection(shapes[b]).length > 0
        and load.get(a, 0) + load.get(b, 0) > 100
    ]
    assert pairs, f"no two touching micro-grids of {grid} over 100 households"
    return pairs[0]


def test_unit_panel_counts_staff_other_layers_and_history_with_revert(
    server: Server,  # noqa: F811
    browser: Browser,  # noqa: F811
) -> None:
    admin = token(server, add_user(server.db, role="admin"))
    grid = grid_at_point(server, admin)
    staff = httpx.post(
        f"{server.url}/api/v1/staff",
        json={"layer": "governance", "unit_code": grid, "role": "grid_worker", "name": "张网格"},
        headers=admin,
        timeout=60,
    )
    assert staff.status_code == 201, staff.text
    first, second = _neighbours_over(server, admin, grid)
    merged = httpx.post(
        f"{server.url}/api/v1/layers/governance/edits",
        json={"op": "merge", "level": "micro_grid", "units": [first, second], "reason": "测试合并"},
        headers=admin,
        timeout=60,
    )
    assert merged.status_code == 200, merged.text
    changeset = merged.json()["changeset"]
    unit = (merged.json()["created"] + merged.json()["changed"])[0]
    username = add_user(server.db, role="planner", units=["governance:350502"])
    headers = token(server, username)
    page, recorder = open_page(browser, server, username)
    # The grid: workload against 300-500, its staff, the beats covering it.
    open_unit_by_search(page, grid)
    row = next(
        r
        for r in get(server, headers, "/api/v1/workload", level="grid")["units"]
        if r["code"] == grid
    )
    load = page.locator("#panel [data-load]")
    assert load.get_attribute("data-households") == str(row["households"])
    expected = "over" if row["over"] else "under" if row["under"] else "within"
    assert load.get_attribute("data-load") == expected
    assert "张网格" in page.inner_text("[data-section=staff]")
    overlaps = get(server, headers, f"/api/v1/units/{grid}/overlaps", layer="governance")
    shown = {
        (r.get_attribute("data-code"), float(r.get_attribute("data-share") or "nan"))
        for r in page.locator("[data-section=overlaps] tr").all()
    }
    assert shown == {(o["code"], o["share"]) for o in overlaps["overlaps"]}
    assert any(o["level"] == "beat" for o in overlaps["overlaps"])
    settle(page)
    page.screenshot(path=SCREENSHOTS / "unit_panel.png")
    # The merged micro-grid: over its 20-100 target, its change set, the planner reverts it.
    open_unit_by_search(page, unit)
    assert page.get_attribute("#panel [data-load]", "data-load") == "over"
    item = page.locator(f"[data-section=history] li[data-changeset='{changeset}']")
    assert "测试合并" in item.inner_text()
    # Cancelling the dialog sends nothing.
    page.once("dialog", lambda dialog: dialog.dismiss())
    item.locator("button.revert").click()
    page.wait_for_timeout(300)
    assert not [u for u in recorder.urls if "/revert" in u]
    page.once("dialog", lambda dialog: dialog.accept())
    item.locator("button.revert").click()
    page.wait_for_selector("#history-status[data-kind]", timeout=WAIT)
    status = page.inner_text("#history-status")
    assert page.get_attribute("#history-status", "data-kind") == "ok", status
    assert f"#{changeset}" in status
    restored = get(server, admin, "/api/v1/layers/governance/units", parent=grid, limit=1000)
    assert {first, second} <= {f["properties"]["code"] for f in restored["features"]}
    # Reverting it again is refused, and the panel says why (409).
    page.once("dialog", lambda dialog: dialog.accept())
    item.locator("button.revert").click()
    page.wait_for_selector("#history-status[data-kind=error-409]", timeout=WAIT)
    assert "409" in page.inner_text("#history-status")
    clean(recorder, server, refused=(409,))


def test_same_grid_view_draws_violations_and_only_admins_apply(
    server: Server,  # noqa: F811
    browser: Browser,  # noqa: F811
) -> None:
    planner = add_user(server.db, role="planner", units=["governance:350502"])
    page, recorder = open_page(browser, server, planner)
    page.click("#view-samegrid")
    page.click("#sg-run")
    page.wait_for_selector("#sg-result[data-ready=true]", timeout=WAIT)
    report = get(server, token(server, planner), "/api/v1/alignment", proposal="true")
    assert page.locator("[data-violation]").count() == len(report["violations"]) > 0
    assert page.locator("#sg-apply").count() == 0  # planners review, administrators apply
    clean(recorder, server)

    admin = add_user(server.db, role="admin")
    headers = token(server, admin)
    page, recorder = open_page(browser, server, admin)
    page.click("#view-samegrid")
    page.click("#sg-run")
    page.wait_for_selector("#sg-result[data-ready=true]", timeout=WAIT)
    report = get(server, headers, "/api/v1/alignment", proposal="true")
    kinds = [li.get_attribute("data-violation") for li in page.locator("[data-violation]").all()]
    assert kinds == [v["kind"] for v in report["violations"]]
    moves = [m["a_code"] for m in report["proposal"]["moves"]]
    assert [li.get_attribute("data-move") for li in page.locator("[data-move]").all()] == moves
    highlighted = page.evaluate("() => window.tonggeMap.getFilter('sg-a-violation')")
    assert set(highlighted[2][1]) == {c for v in report["violations"] for c in v["a_codes"]}
    drawn = page.evaluate("() => window.tonggeMap.getFilter('sg-a-move')")
    assert drawn[2][1] == moves
    split = next(v for v in report["violations"] if v["kind"] == "grid_split_across_beats")
    label = " / ".join(f"{s * 100:.1f}%" for s in split["shares"].values())
    assert label in page.locator(".sg-marker.sg-violation").all_inner_texts()
    assert page.input_value("#level") == "grid"
    settle(page)
    page.screenshot(path=SCREENSHOTS / "same_grid.png")
    page.fill("#sg-from", date.today().isoformat())
    page.once("dialog", lambda dialog: dialog.accept())
    page.click("#sg-apply")
    page.wait_for_selector("#sg-status[data-kind=ok]", timeout=WAIT)
    assert get(server, headers, "/api/v1/alignment")["aligned"]
    clean(recorder, server)


def test_workload_colours_against_the_target_with_a_legend(
    server: Server,  # noqa: F811
    browser: Browser,  # noqa: F811
) -> None:
    username = add_user(server.db, role="dispatcher", units=["governance:350502"])
    page = browser.new_page(viewport={"width": 1280, "height": 860})
    recorder = sign_in(page, server, username, hash_="#layer=governance&level=grid")
    page.wait_for_selector("#legend[data-target='300-500']")
    colour = page.evaluate("() => window.tonggeMap.getPaintProperty('units-fill', 'fill-color')")
    assert colour[0] == "case" and 300 in colour[1] and 500 in colour[3]
    assert page.locator("#legend [data-kind]").count() == 3
    settle(page)
    page.screenshot(path=SCREENSHOTS / "workload.png")
    page.select_option("#level", "street")  # no target: a ramp up to the largest street
    page.wait_for_selector("#legend[data-target=none]")
    page.uncheck("#workload-on")
    assert page.locator("#legend").is_hidden()
    clean(recorder, server)


def test_each_role_is_offered_only_what_it_may_do_and_a_grid_worker_only_their_grid(
    server: Server,  # noqa: F811
    browser: Browser,  # noqa: F811
) -> None:
    admin = token(server, add_user(server.db, role="admin"))
    grid = grid_at_point(server, admin)
    dispatcher = add_user(server.db, role="dispatcher", units=["governance:350502"])
    page, recorder = open_page(browser, server, dispatcher)
    assert page.locator("#edit-toggle").is_hidden()
    assert page.locator("#view-samegrid").is_hidden()
    open_unit_by_search(page, grid)
    page.wait_for_selector("[data-section=history]")
    assert page.locator("button.revert").count() == 0
    clean(recorder, server)

    worker = add_user(server.db, role="grid_worker", units=[f"governance:{grid}"])
    headers = token(server, worker)
    page, recorder = open_page(browser, server, worker)
    assert page.locator("#edit-toggle").is_hidden()
    assert page.locator("#view-samegrid").is_hidden()
    page.click("#view-tree")
    page.wait_for_selector("#tree-box > ul > li")
    assert [li.get_attribute("data-code") for li in page.locator("#tree-box > ul > li").all()] == [
        grid
    ]
    page.click(f"#tree-box li[data-code='{grid}'] > button.toggle")
    page.wait_for_selector(f"#tree-box li[data-code='{grid}'] > ul > li")
    rows = page.locator(f"#tree-box li[data-code='{grid}'] > ul > li").all()
    below = [li.get_attribute("data-code") for li in rows]
    assert below and all(code and code.startswith(grid) for code in below)
    # Search: their own units only (the city has hundreds of 网格).
    search(page, "网格")
    found = result_codes(page)
    expected = set()
    for layer in ("governance", "police"):
        answer = get(server, headers, f"/api/v1/layers/{layer}/units", q="网格", limit=20)
        expected |= {(layer, f["properties"]["code"]) for f in answer["features"]}
    assert found == expected
    assert found and all(code.startswith(grid) for layer, code in found if layer == "governance")
    other = next(
        f["properties"]["code"]
        for f in get(server, admin, "/api/v1/layers/governance/units", parent=grid[:12])["features"]
        if f["properties"]["code"] != grid
    )
    search(page, other)
    assert page.locator("#panel [data-result=none]").count() == 1
    # Their grid's panel (from the tree, still open): households, history, but no revert.
    page.click(f"#tree-box a[data-code='{grid}']")
    page.wait_for_selector(f"#panel[data-loaded='{grid}']", timeout=WAIT)
    assert page.locator("[data-section=workload] [data-load]").count() == 1
    assert page.locator("button.revert").count() == 0
    page.screenshot(path=SCREENSHOTS / "grid_worker_panel.png")
    clean(recorder, server)
