"""The edit service's state cache, both databases: never stale, bounded, shared across threads.

Layer states are kept per boundaries revision (:mod:`gis.edits._cache`); a
write of this process derives the next revision's versions without reading
them. Each test compares the cached state with a fresh read of the database.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import shapely

from gis.edits import LayerState
from gis.edits._cache import state_cache
from gis.edits.service import edit, load_state, read_state, revert
from gis.repository import Database
from gis.times import parse_time
from tests.fixtures_edits import line
from tests.test_edits_service import _DRAWN, _load

_LATER = parse_time("2100-01-01")  # the newest versions


def _fresh(db: Database) -> LayerState:
    with db.reader() as repo:
        return read_state(repo, layer="test", at=_LATER)


def _assert_same(cached: LayerState, fresh: LayerState) -> None:
    assert cached.revision == fresh.revision
    assert dict(cached.etags) == dict(fresh.etags)
    for level in fresh.spec.levels:
        a, b = cached.frame(level.name), fresh.frame(level.name)
        assert list(a["code"]) == list(b["code"]), level.name
        assert list(a["parent_code"]) == list(b["parent_code"]), level.name
        assert all(
            shapely.equals_exact(x, y, tolerance=0.0)
            for x, y in zip(a.geometry.values, b.geometry.values, strict=True)
        ), level.name
        assert cached.codes_taken(level.name) == fresh.codes_taken(level.name)
    assert dict(cached.latest) == dict(fresh.latest)


def test_the_cached_state_follows_every_write_exactly(db: Database) -> None:
    _load(db)
    _assert_same(load_state(db, layer="test", at=_LATER), _fresh(db))
    first = edit(db, layer="test", op="transfer", level="grid", geometry=_DRAWN, to="1003")
    # Derived from this process's own write, not read: still what the database holds.
    fresh = _fresh(db)
    assert ("test", fresh.revision) in state_cache(db)._versions._items
    _assert_same(load_state(db, layer="test", at=_LATER), fresh)
    second = edit(db, layer="test", op="merge", level="grid", units=["2001", "2002"])
    _assert_same(load_state(db, layer="test", at=_LATER), _fresh(db))
    assert first.changeset_id is not None and second.changeset_id is not None
    revert(db, layer="test", changeset_id=second.changeset_id)
    _assert_same(load_state(db, layer="test", at=_LATER), _fresh(db))
    revert(db, layer="test", changeset_id=first.changeset_id)
    _assert_same(load_state(db, layer="test", at=_LATER), _fresh(db))


def test_a_write_by_another_process_is_seen(db: Database) -> None:
    _load(db)
    before = load_state(db, layer="test", at=_LATER)
    other = Database(db.url)  # another connection pool: its own cache, as another process
    try:
        edit(
            other,
            layer="test",
            op="split",
            level="grid",
            units=["1003"],
            geometry=line((30, -5), (30, 105)),
        )
    finally:
        other.dispose()
    after = load_state(db, layer="test", at=_LATER)
    assert after.revision != before.revision
    assert set(after.frame("grid")["code"]) != set(before.frame("grid")["code"])
    _assert_same(after, _fresh(db))


def test_unchanged_boundaries_are_served_from_memory_to_every_thread(db: Database) -> None:
    _load(db)
    first = load_state(db, layer="test")
    with ThreadPoolExecutor(max_workers=4) as pool:
        states = list(pool.map(lambda _: load_state(db, layer="test"), range(8)))
    # The very same frames (read once), with each caller's own instant.
    assert all(s.frame("grid") is first.frame("grid") for s in states)
    cache = state_cache(db)
    for _ in range(cache._versions.size // 2 + 2):
        done = edit(db, layer="test", op="transfer", level="grid", geometry=_DRAWN, to="1003")
        assert done.changeset_id is not None
        revert(db, layer="test", changeset_id=done.changeset_id)
        load_state(db, layer="test", at=_LATER)
    assert len(cache._versions._items) <= cache._versions.size
    assert len(cache._states._items) <= cache._states.size
    _assert_same(load_state(db, layer="test", at=_LATER), _fresh(db))
