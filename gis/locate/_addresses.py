"""Standard-address lookup for locate: address text → building → point (一标三实).

The index holds every stored building's standard address, parsed with an
administrative context built from the stored governance units (district,
street and community names), and is rebuilt when buildings or boundaries
change.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

import pandas as pd

from gis.address import AddressIndex, AdminContext, Match, parse_address
from gis.locate._indexes import IndexSet
from gis.repository import Database
from gis.revisions import RevisionClock

__all__ = ["AddressCache", "AddressHit"]

_ADMIN_LEVELS = 3  # county, street, community: the 行政区划 part of an address


@dataclass(frozen=True)
class AddressHit:
    """The ranked matches of an address, with the point of each matched building."""

    text: str
    parsed: dict[str, str]
    matches: list[Match]
    points: dict[str, tuple[float, float]]


class AddressCache:
    """Builds the address index on demand and keeps it while nothing changes."""

    def __init__(self, db: Database, *, clock: RevisionClock) -> None:
        self._db = db
        self._clock = clock
        self._key: tuple[object, ...] | None = None
        self._index: AddressIndex | None = None
        self._context: AdminContext | None = None
        self._points: dict[str, tuple[float, float]] = {}
        self._lock = threading.Lock()

    def match(self, text: str, *, indexes: IndexSet, limit: int = 5) -> AddressHit:
        """Return the ranked standard addresses matching ``text``."""
        index, context = self._current(indexes)
        parsed = parse_address(text, context=context).components()
        matches = index.match(text, limit=limit) if index is not None else []
        return AddressHit(text=text, parsed=parsed, matches=matches, points=self._points)

    def ready(self, indexes: IndexSet) -> bool:
        """Whether :meth:`match` would answer without rebuilding the index."""
        return self._key == self._key_for(indexes) and self._context is not None

    def _key_for(self, indexes: IndexSet) -> tuple[object, ...]:
        return (indexes.revision, indexes.start, self._clock.current().places)

    def _current(self, indexes: IndexSet) -> tuple[AddressIndex | None, AdminContext]:
        key = self._key_for(indexes)
        if key != self._key or self._context is None:
            with self._lock:
                context = _context(indexes)
                with self._db.reader() as repo:
                    table = repo.places.addresses()
                self._index = (
                    AddressIndex.from_records(table.to_dict("records"), context=context)
                    if len(table)
                    else None
                )
                self._points = {
                    str(k): (float(x), float(y))
                    for k, x, y in zip(table["key"], table["lon"], table["lat"], strict=True)
                }
                self._context = context
                self._key = key
        assert self._context is not None
        return self._index, self._context


def _context(indexes: IndexSet) -> AdminContext:
    rows: list[dict[str, object]] = []
    governance = indexes.layers().get("governance", [])
    for level in governance[:_ADMIN_LEVELS]:
        rows.extend(
            {"code": code, "name": name, "parent_code": parent}
            for code, name, parent in zip(level.codes, level.names, level.parents, strict=True)
            if isinstance(name, str)
        )
    frame = pd.DataFrame(rows)
    if frame.empty:
        return AdminContext.from_divisions([])
    return AdminContext.from_divisions(frame.to_dict("records"))
