"""Weekly visit schedules (周走访): every household and shop of a unit once a week.

:func:`plan_week` spreads the visits over the working days and routes each
day on the street network ("route first, cluster second", Beasley 1983):

1. every place is tied to the street segment nearest to it (the street in
   front of its door: walking that segment passes the door);
2. one postman tour covers the unit's streets and those segments
   (:func:`gis.patrol.plan_patrol`); the visits are put in the order the
   tour first passes their segments — neighbours on the tour are neighbours
   on the ground, so consecutive visits form compact clusters;
3. visits carried over (not made last week) come first, in tour order, then
   the others: the sequence is cut into ``days`` consecutive pieces with
   about equal work (walking time plus ``visit_minutes`` per visit);
4. each day is routed as a rural postman tour over its segments from the
   start (the office), and the cuts are moved, a few visits at a time, from
   the busiest day to a neighbouring day while that lowers the busier of the
   two (the order, hence the carry-over, is kept).

The result states its tolerance: the schedule is ``balanced`` when every
day's work is within ``tolerance`` of the mean day (default ±15 %).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any, Literal

import numpy as np
import pandas as pd
import shapely
from pyproj import CRS
from shapely.geometry.base import BaseGeometry

from gis.crs import transformer
from gis.errors import InputError
from gis.patrol._network import StreetNetwork
from gis.patrol._plan import SPEEDS, Route, plan_patrol

__all__ = ["Balance", "ScheduleDay", "WeekSchedule", "plan_week"]

Balance = Literal["time", "walk"]
#: Largest move of visits between two days tried at once (then halved).
_MAX_ITERATIONS = 400


@dataclass(frozen=True)
class ScheduleDay:
    """One working day: its visits in walking order and its closed route.

    Attributes
    ----------
    day : int
        1 for the first working day.
    date : datetime.date or None
        The calendar day, when the week's start is given.
    visits : list of str
        Place ids (household and shop keys), in the order the route passes them.
    carried : int
        How many of them were carried over from last week.
    route : Route
        The day's closed walk (from and back to the start).
    walk_s, visit_s : float
        Walking time and time spent at the doors.
    """

    day: int
    date: date | None
    visits: list[str]
    carried: int
    route: Route
    walk_s: float
    visit_s: float

    @property
    def length_m(self) -> float:
        """Walking length of the day (m)."""
        return self.route.length_m

    @property
    def time_s(self) -> float:
        """Walking plus visiting time (s)."""
        return self.walk_s + self.visit_s

    def to_dict(self) -> dict[str, Any]:
        """Return the day as JSON."""
        return {
            "day": self.day,
            "date": None if self.date is None else self.date.isoformat(),
            "visits": len(self.visits),
            "carried": self.carried,
            "length_m": round(self.length_m, 1),
            "walk_s": round(self.walk_s),
            "visit_s": round(self.visit_s),
            "time_s": round(self.time_s),
            "places": list(self.visits),
        }


@dataclass(frozen=True)
class WeekSchedule:
    """A week of visits: the days, and how evenly the work is spread."""

    network: StreetNetwork
    days: list[ScheduleDay]
    balance: Balance
    tolerance: float
    start_node: int
    carried: list[str] = field(default_factory=list)

    def work(self) -> np.ndarray:
        """Each day's balanced quantity: time (s) or walking length (m)."""
        if self.balance == "walk":
            return np.array([d.length_m for d in self.days])
        return np.array([d.time_s for d in self.days])

    @property
    def spread(self) -> float:
        """Largest relative deviation of a day from the mean day."""
        work = self.work()
        mean = float(work.mean()) if len(work) else 0.0
        return 0.0 if mean == 0 else float(np.abs(work - mean).max() / mean)

    @property
    def balanced(self) -> bool:
        """Whether every day is within :attr:`tolerance` of the mean day."""
        return self.spread <= self.tolerance + 1e-9

    def to_dict(self) -> dict[str, Any]:
        """Return the schedule as JSON (per day: visits, length, time)."""
        return {
            "days": [d.to_dict() for d in self.days],
            "visits": sum(len(d.visits) for d in self.days),
            "carried": len(self.carried),
            "length_m": round(sum(d.length_m for d in self.days), 1),
            "time_s": round(sum(d.time_s for d in self.days)),
            "balance": self.balance,
            "tolerance": self.tolerance,
            "spread": round(self.spread, 4),
            "balanced": self.balanced,
            "mode": self.network.mode,
        }


def plan_week(
    network: StreetNetwork,
    places: pd.DataFrame,
    *,
    days: int = 5,
    visited: Sequence[str] | None = None,
    area: BaseGeometry | None = None,
    area_crs: CRS | str = "EPSG:4326",
    start: tuple[float, float] | None = None,
    start_date: date | None = None,
    visit_minutes: float = 5.0,
    balance: Balance = "time",
    tolerance: float = 0.15,
) -> WeekSchedule:
    """Spread one visit to every place over ``days`` working days, each day a route.

    Parameters
    ----------
    network : StreetNetwork
        Streets of the unit and around it.
    places : DataFrame
        ``id`` (unique), ``lon``, ``lat`` (WGS84/CGCS2000 degrees) of each
        household and shop to visit; households of one building share its point.
    days : int
        Working days (1–7).
    visited : sequence of str, optional
        Ids visited last week: the places *not* in it are carried over and
        visited first. ``None``: nothing is carried over.
    area, area_crs : geometry and CRS, optional
        The unit: its streets are part of the ordering tour.
    start : (lon, lat), optional
        The office (WGS84); every day starts and ends there.
    start_date : date, optional
        The first working day (the days after it are consecutive).
    visit_minutes : float
        Time at each door.
    balance : {"time", "walk"}
        Balance walking plus visiting time, or the walking length alone.
    tolerance : float
        A day may differ from the mean day by this share.

    Raises
    ------
    InputError
        No places, duplicate ids, a bad number of days, minutes or tolerance.
    """
    if not 1 <= days <= 7:
        raise InputError("days must be between 1 and 7", field="days")
    if not 0 <= visit_minutes <= 240:
        raise InputError("visit_minutes must be between 0 and 240", field="visit_minutes")
    if not 0 < tolerance < 1:
        raise InputError("tolerance must be a share between 0 and 1", field="tolerance")
    if balance not in ("time", "walk"):
        raise InputError(f"balance {balance!r} is not one of time, walk", field="balance")
    if len(places) == 0:
        raise InputError("the unit has no household or shop to visit", field="unit")
    ids = places["id"].astype(str).to_numpy()
    if len(set(ids)) != len(ids):
        raise InputError("place ids must be unique", field="places")
    seg_of, along = _fronting(network, places)
    front = np.zeros(len(network.segments), dtype=bool)
    front[seg_of] = True
    whole = plan_patrol(network, area=area, area_crs=area_crs, start=start)
    required = whole.required | front
    tour = plan_patrol(network, start=start, required=required)
    position = _positions(tour.routes[0], len(network.segments))
    seen = set(visited) if visited is not None else set(ids)
    carried = np.array([i not in seen for i in ids])
    order = np.lexsort((ids, along, position[seg_of], ~carried))
    to_wgs = transformer(network.crs, CRS.from_epsg(4326))
    home = tuple(float(c) for c in to_wgs.transform(*network.nodes[tour.start_node]))
    router = _DayRouter(network, home, visit_minutes * 60.0, balance)
    cuts = _initial_cuts(order, seg_of, position, tour.routes[0], router, days)
    cuts = _rebalance(order, seg_of, cuts, router)
    out = []
    bounds = [0, *cuts, len(order)]
    for number in range(days):
        members = order[bounds[number] : bounds[number + 1]]
        route = router.route(frozenset(seg_of[members].tolist()))
        walked = _walking_order(members, seg_of, along, route)
        out.append(
            ScheduleDay(
                day=number + 1,
                date=None if start_date is None else start_date + timedelta(days=number),
                visits=[str(ids[i]) for i in walked],
                carried=int(carried[members].sum()),
                route=route,
                walk_s=route.time_s,
                visit_s=len(members) * visit_minutes * 60.0,
            )
        )
    return WeekSchedule(
        network=network,
        days=out,
        balance=balance,
        tolerance=tolerance,
        start_node=tour.start_node,
        carried=[str(i) for i in ids[carried]],
    )


def _fronting(network: StreetNetwork, places: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    # The nearest segment of each place and how far along it the door is.
    lon = pd.to_numeric(places["lon"], errors="coerce").to_numpy(dtype=float)
    lat = pd.to_numeric(places["lat"], errors="coerce").to_numpy(dtype=float)
    if not (np.isfinite(lon).all() and np.isfinite(lat).all()):
        raise InputError("every place needs a lon and a lat", field="places")
    x, y = transformer(CRS.from_epsg(4326), network.crs).transform(lon, lat)
    points = shapely.points(np.asarray(x), np.asarray(y))
    lines = network.segments.geometry.values
    found, seg = shapely.STRtree(lines).query_nearest(points, all_matches=False)
    seg_of = np.empty(len(points), dtype=np.int64)
    seg_of[found] = seg
    along = shapely.line_locate_point(lines[seg_of], points, normalized=True)
    return seg_of, np.asarray(along, dtype=float)


def _positions(route: Route, count: int) -> np.ndarray:
    # The step of the tour where each segment is first walked (after the end: never).
    position = np.full(count, len(route.steps), dtype=np.int64)
    for k, (seg, _) in enumerate(route.steps):
        if position[seg] == len(route.steps):
            position[seg] = k
    return position


class _DayRouter:
    """Routes of a day's segments from the start, remembered by their set."""

    def __init__(
        self, network: StreetNetwork, home: tuple[float, ...], visit_s: float, balance: Balance
    ) -> None:
        self.network = network
        self.home = (home[0], home[1])
        self.visit_s = visit_s
        self.balance = balance
        self.speed = SPEEDS[network.mode]
        self._routes: dict[frozenset[int], Route] = {}

    def route(self, segments: frozenset[int]) -> Route:
        if segments not in self._routes:
            if not segments:
                self._routes[segments] = Route([], [], 0.0, 0.0, 0.0, [], 0.0)
            else:
                mask = np.zeros(len(self.network.segments), dtype=bool)
                mask[list(segments)] = True
                plan = plan_patrol(self.network, start=self.home, required=mask)
                self._routes[segments] = plan.routes[0]
        return self._routes[segments]

    def work(self, members: np.ndarray, seg_of: np.ndarray) -> float:
        route = self.route(frozenset(seg_of[members].tolist()))
        if self.balance == "walk":
            return route.length_m
        return route.time_s + len(members) * self.visit_s


def _initial_cuts(
    order: np.ndarray,
    seg_of: np.ndarray,
    position: np.ndarray,
    tour: Route,
    router: _DayRouter,
    days: int,
) -> list[int]:
    # Cut where the estimated work (door time plus tour walking between
    # consecutive doors) reaches each multiple of the mean day.
    if days == 1:
        return []
    step_length = np.array([router.network.segments["length"].iloc[s] for s, _ in tour.steps])
    metres_at = np.concatenate([[0.0], np.cumsum(step_length)])
    at = metres_at[np.minimum(position[seg_of[order]], len(step_length))]
    gaps = np.abs(np.diff(np.concatenate([[at[0]], at])))
    per_metre = 1.0 if router.balance == "walk" else 1.0 / router.speed
    door = 0.0 if router.balance == "walk" else router.visit_s
    cost = np.cumsum(door + gaps * per_metre)
    total = cost[-1] if len(cost) else 0.0
    cuts = [int(np.searchsorted(cost, total * k / days)) for k in range(1, days)]
    # Every day keeps at least one visit when there are enough.
    fixed: list[int] = []
    low = 0
    for k, cut in enumerate(cuts):
        high = len(order) - (days - 1 - k)
        cut = min(max(cut, low + 1 if len(order) >= days else low), max(high, low))
        fixed.append(cut)
        low = cut
    return fixed


def _rebalance(
    order: np.ndarray, seg_of: np.ndarray, cuts: list[int], router: _DayRouter
) -> list[int]:
    cuts = list(cuts)
    days = len(cuts) + 1

    def bounds(c: list[int]) -> list[int]:
        return [0, *c, len(order)]

    def work_of(c: list[int], d: int) -> float:
        b = bounds(c)
        return router.work(order[b[d] : b[d + 1]], seg_of)

    work = [work_of(cuts, d) for d in range(days)]
    for _ in range(_MAX_ITERATIONS):
        moved = False
        for d in np.argsort(work)[::-1]:
            d = int(d)
            best: tuple[float, list[int], float, float, int] | None = None
            for nb in (d - 1, d + 1):
                if not 0 <= nb < days or work[nb] >= work[d]:
                    continue
                b = bounds(cuts)
                size = b[d + 1] - b[d]
                unit = router.visit_s if router.visit_s > 0 and router.balance == "time" else 1.0
                k = int(max(1, min(size - 1, (work[d] - work[nb]) / 2 / max(unit, 1e-9))))
                while k >= 1:
                    trial = list(cuts)
                    if nb < d:
                        trial[d - 1] = b[d] + k
                    else:
                        trial[d] = b[d + 1] - k
                    wd, wn = work_of(trial, d), work_of(trial, nb)
                    if max(wd, wn) < work[d] - 1e-6 and (best is None or max(wd, wn) < best[0]):
                        best = (max(wd, wn), trial, wd, wn, nb)
                        break
                    k //= 2
            if best is not None:
                _, cuts, wd, wn, nb = best
                work[d], work[nb] = wd, wn
                moved = True
                break
        if not moved:
            break
    return cuts


def _walking_order(
    members: np.ndarray, seg_of: np.ndarray, along: np.ndarray, route: Route
) -> np.ndarray:
    # The doors in the order the day's route first passes their street.
    first: dict[int, tuple[int, bool]] = {}
    for k, (seg, forward) in enumerate(route.steps):
        first.setdefault(seg, (k, forward))
    keys = []
    for i in members:
        k, forward = first.get(int(seg_of[i]), (len(route.steps), True))
        keys.append((k, along[i] if forward else 1 - along[i]))
    ranked = sorted(range(len(members)), key=lambda j: keys[j])
    return members[ranked]
