"""One clock for every cache: the database's change counters, read at most once per interval.

The registry keeps commit-ordered counters (``boundaries``, ``places``,
``staff``, ``access``; see ``gis.repository``). Caches of derived data (locate
indexes, the address index, building assignments, jurisdictions) compare
the counters they were built at with the :class:`RevisionClock`'s current
ones instead of each querying the database on its own schedule.

Boundary versions also start and end by the calendar, with no write at
all: the clock keeps the *version window* around now (the interval in
which no version starts or ends) and treats leaving it like a change.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from datetime import datetime

from gis.repository import Database
from gis.times import utc_now

__all__ = ["RevisionClock", "Revisions"]


@dataclass(frozen=True)
class Revisions:
    """The counters at one moment, and the boundary version window around it.

    Attributes
    ----------
    boundaries, places, staff, access : int
        Change counters; each grows with every committed change of its tables.
    window_start, window_end : datetime or None
        The interval around now in which the valid boundary versions stay
        the same (``None``: unbounded).
    """

    boundaries: int
    places: int
    staff: int
    access: int
    window_start: datetime | None = None
    window_end: datetime | None = None

    @property
    def current_boundaries(self) -> tuple[int, datetime | None]:
        """What the boundaries valid *now* depend on: the counter and the window."""
        return self.boundaries, self.window_start


class RevisionClock:
    """Reads the change counters at most once per ``refresh_seconds``.

    Parameters
    ----------
    db : Database
        The registry.
    refresh_seconds : float
        How long an answer is trusted; ``0`` reads the database on every call.

    Examples
    --------
    >>> import tempfile
    >>> db = Database(f"sqlite:///{tempfile.mkdtemp()}/clock.sqlite")
    >>> db.migrate()
    >>> clock = RevisionClock(db, refresh_seconds=0)
    >>> before = clock.current()
    >>> from gis.layers import GOVERNANCE
    >>> with db.transaction() as repo:
    ...     repo.ensure_layer(GOVERNANCE)
    >>> clock.current().boundaries > before.boundaries
    True
    """

    def __init__(self, db: Database, *, refresh_seconds: float = 1.0) -> None:
        self._db = db
        self.refresh_seconds = refresh_seconds
        self._lock = threading.Lock()
        self._checked = float("-inf")
        self._current: Revisions | None = None

    def current(self) -> Revisions:
        """Return the counters, read again when the last reading is too old."""
        now = time.monotonic()
        found = self._current
        if (
            found is not None
            and now - self._checked < self.refresh_seconds
            and (found.window_end is None or utc_now() < found.window_end)
        ):
            return found
        with self._lock:
            if self._current is not found and self._current is not None:
                return self._current  # another thread has just read them
            self._current = self._read(found)
            self._checked = time.monotonic()
            return self._current

    def invalidate(self) -> None:
        """Forget the last reading (after a change made by this process)."""
        with self._lock:
            self._checked = float("-inf")

    def _read(self, previous: Revisions | None) -> Revisions:
        now = utc_now()
        with self._db.reader() as repo:
            counters = repo.revisions()
            boundaries = counters.get("boundaries", 0)
            if (
                previous is not None
                and previous.boundaries == boundaries
                and (previous.window_start is None or previous.window_start <= now)
                and (previous.window_end is None or now < previous.window_end)
            ):
                start, end = previous.window_start, previous.window_end
            else:
                start, end = repo.version_window(at=now)
        return Revisions(
            boundaries=boundaries,
            places=counters.get("places", 0),
            staff=counters.get("staff", 0),
            access=counters.get("access", 0),
            window_start=start,
            window_end=end,
        )
