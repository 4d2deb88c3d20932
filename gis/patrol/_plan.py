"""Patrol plans: postman tours for a unit, with start, checkpoints and shift length.

:func:`plan_patrol` covers every street segment of a unit (a segment whose
midpoint lies in the unit; streets crossing its edge were split there when
the network was built) with closed routes:

1. a postman tour over those segments, deadheading on any street of the
   network, inside the unit or not, when that is shorter (:mod:`._postman`);
2. the start (the network node nearest to it) and each must-visit checkpoint
   not on the tour are joined by the shortest detour there and back from
   the nearest tour node (heuristic; the lower bound ignores them);
3. with ``max_length_m`` the tour is cut, in order, into pieces each of which,
   with the shortest way from the start to it and back, fits a shift.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import networkx as nx
import numpy as np
import shapely
from pyproj import CRS
from shapely.geometry.base import BaseGeometry

from gis.crs import transformer
from gis.errors import InputError
from gis.patrol._network import StreetNetwork
from gis.patrol._postman import postman_tour

__all__ = ["Checkpoint", "PatrolPlan", "Route", "plan_patrol", "route_line"]

#: Speeds used for the time estimates (m/s): 4.3 km/h on foot, 30 km/h by car.
SPEEDS = {"walk": 1.2, "drive": 8.33}

Step = tuple[int, bool]


@dataclass(frozen=True)
class Checkpoint:
    """A must-visit place (派出所, school gate, shop...) in WGS84 lon/lat."""

    name: str
    lon: float
    lat: float


@dataclass(frozen=True)
class Route:
    """One closed route from the start.

    Attributes
    ----------
    steps : list of (int, bool)
        ``(segment row, forward)`` traversals in order.
    covers : list of bool
        Per step: it is the first pass over a street of the unit.
    length_m, street_m, deadhead_m : float
        Total, first passes over the unit's streets, everything else.
    checkpoints : list of str
        Names of the checkpoints the route passes.
    time_s : float
        At the mode's speed (:data:`SPEEDS`).
    """

    steps: list[Step]
    covers: list[bool]
    length_m: float
    street_m: float
    deadhead_m: float
    checkpoints: list[str]
    time_s: float

    @property
    def segments(self) -> int:
        """Street segments of the unit this route covers first."""
        return int(sum(self.covers))


@dataclass(frozen=True)
class PatrolPlan:
    """Routes covering a unit's streets, with the figures to judge them."""

    network: StreetNetwork
    required: np.ndarray
    routes: list[Route]
    street_length_m: float
    covered_share: float
    lower_bound_m: float
    exact: bool
    method: str
    start_node: int
    checkpoints: list[Checkpoint] = field(default_factory=list)

    @property
    def length_m(self) -> float:
        """Total length of all routes."""
        return float(sum(r.length_m for r in self.routes))

    def to_dict(self) -> dict[str, Any]:
        """Return the JSON answer (the contract of issue 16 plus details)."""
        return {
            "routes": [
                {
                    "length_m": round(r.length_m, 1),
                    "deadhead_m": round(r.deadhead_m, 1),
                    "street_m": round(r.street_m, 1),
                    "segments": r.segments,
                    "checkpoints": r.checkpoints,
                    "time_s": round(r.time_s),
                }
                for r in self.routes
            ],
            "street_length_m": round(self.street_length_m, 1),
            "covered_share": round(self.covered_share, 6),
            "lower_bound_m": round(self.lower_bound_m, 1),
            "length_m": round(self.length_m, 1),
            "deadhead_m": round(self.length_m - self.street_length_m, 1),
            "ratio_to_streets": round(self.length_m / self.street_length_m, 4),
            "exact": self.exact,
            "method": self.method,
            "mode": self.network.mode,
            "segments": int(self.required.sum()),
            "network": {
                "segments": len(self.network.segments),
                "zero_length_dropped": self.network.dropped,
                "unconnected_m": round(self.network.islands_m, 1),
            },
        }


def plan_patrol(
    network: StreetNetwork,
    *,
    area: BaseGeometry | None = None,
    area_crs: CRS | str = "EPSG:4326",
    start: tuple[float, float] | None = None,
    checkpoints: Sequence[Checkpoint] = (),
    max_length_m: float | None = None,
    required: np.ndarray | None = None,
) -> PatrolPlan:
    """Plan closed routes covering every street segment of ``area``.

    Parameters
    ----------
    network : StreetNetwork
        Streets of the unit and around it (see :func:`read_network`).
    area : shapely geometry, optional
        The unit (default: cover the whole network).
    area_crs : CRS or str
        The CRS of ``area`` (default WGS84).
    start : (lon, lat), optional
        WGS84; routes start and end at the nearest network node.
    checkpoints : sequence of Checkpoint
        Places every plan passes (their nearest node).
    max_length_m : float, optional
        Longest route allowed; the tour is split into several.
    required : ndarray of bool, optional
        The segments to cover, instead of those of ``area`` (the streets in
        front of a day's visits, :mod:`gis.patrol._schedule`).

    Returns
    -------
    PatrolPlan

    Raises
    ------
    InputError
        No street in the area, streets no street connects, a shift too short
        for one street and the way there and back.
    """
    seg = network.segments
    if max_length_m is not None and not max_length_m > 0:
        raise InputError("max_length_m must be a positive number of metres", field="max_length_m")
    if required is None:
        required = _inside(network, area, area_crs)
    if not required.any():
        raise InputError("no street of the network lies in the area", field="area")
    u = seg["u"].to_numpy()
    v = seg["v"].to_numpy()
    length = seg["length"].to_numpy()
    directed = network.mode == "drive" and bool(seg["oneway"].to_numpy()[required].any())
    to_wgs = transformer(network.crs, CRS.from_epsg(4326))

    def where(node: int) -> str:
        lon, lat = to_wgs.transform(*network.nodes[node])
        return f"{lon:.6f},{lat:.6f}"

    start_node = _snap(network, start) if start is not None else None
    tour = postman_tour(
        u,
        v,
        length,
        seg["oneway"].to_numpy() & (network.mode == "drive"),
        required,
        directed=directed,
        start=start_node,
        where=where,
    )
    ways = _Ways(u, v, length, seg["oneway"].to_numpy(), directed=directed)
    steps = tour.steps
    if start_node is None:
        start_node = _begin(steps[0], u, v)
    marks = {cp.name: _snap(network, (cp.lon, cp.lat)) for cp in checkpoints}
    for node in [start_node, *marks.values()]:
        steps = ways.visit(steps, node)
    steps = _rotate(steps, start_node, u, v)
    covers = _first_passes(steps, required)
    speed = SPEEDS[network.mode]
    if max_length_m is None:
        pieces = [(steps, covers)]
    else:
        pieces = _split(steps, covers, start_node, ways, max_length_m, where, length)
    routes = [_route(s, c, length, marks, u, v, speed) for s, c in pieces]
    street = float(length[required].sum())
    covered = float(sum(r.street_m for r in routes))
    return PatrolPlan(
        network=network,
        required=required,
        routes=routes,
        street_length_m=street,
        covered_share=covered / street,
        lower_bound_m=tour.lower_bound,
        exact=tour.exact and len(routes) == 1 and steps == tour.steps,
        method=tour.method,
        start_node=start_node,
        checkpoints=list(checkpoints),
    )


def route_line(route: Route, network: StreetNetwork) -> BaseGeometry:
    """Return the route as one LineString in the network's CRS."""
    geoms = network.segments.geometry.values
    parts = []
    for seg, forward in route.steps:
        coords = shapely.get_coordinates(geoms[seg])
        parts.append(coords if forward else coords[::-1])
    if not parts:
        return shapely.LineString()
    joined = np.concatenate([parts[0], *[p[1:] for p in parts[1:]]])
    return shapely.LineString(joined)


# -- pipeline ----------------------------------------------------------------


def _inside(network: StreetNetwork, area: BaseGeometry | None, area_crs: CRS | str) -> np.ndarray:
    if area is None:
        return np.ones(len(network.segments), dtype=bool)
    import geopandas as gpd

    unit = gpd.GeoSeries([area], crs=area_crs).to_crs(network.crs).iloc[0]
    mids = shapely.line_interpolate_point(network.segments.geometry.values, 0.5, normalized=True)
    inside: np.ndarray = shapely.covers(unit, mids)
    return inside


def _snap(network: StreetNetwork, lonlat: tuple[float, float]) -> int:
    lon, lat = lonlat
    if not (-180 <= lon <= 180 and -90 <= lat <= 90):
        raise InputError(f"{lon},{lat} is not a WGS84 lon,lat", field="start")
    x, y = transformer(CRS.from_epsg(4326), network.crs).transform(lon, lat)
    return network.nearest_node(x, y)


def _begin(step: Step, u: np.ndarray, v: np.ndarray) -> int:
    seg, forward = step
    return int(u[seg] if forward else v[seg])


def _end(step: Step, u: np.ndarray, v: np.ndarray) -> int:
    seg, forward = step
    return int(v[seg] if forward else u[seg])


def _rotate(steps: list[Step], node: int, u: np.ndarray, v: np.ndarray) -> list[Step]:
    for i, step in enumerate(steps):
        if _begin(step, u, v) == node:
            return steps[i:] + steps[:i]
    return steps


def _first_passes(steps: list[Step], required: np.ndarray) -> list[bool]:
    seen: set[int] = set()
    covers = []
    for seg, _ in steps:
        first = bool(required[seg]) and seg not in seen
        seen.add(seg)
        covers.append(first)
    return covers


class _Ways:
    """Shortest ways over every street of the network (one-way respected when directed)."""

    def __init__(
        self,
        u: np.ndarray,
        v: np.ndarray,
        length: np.ndarray,
        oneway: np.ndarray,
        *,
        directed: bool,
    ) -> None:
        self.u, self.v = u, v
        self.length = length
        self.graph: nx.Graph = nx.DiGraph() if directed else nx.Graph()
        for i in np.argsort(-length):
            a, b = int(u[i]), int(v[i])
            self.graph.add_edge(a, b, weight=float(length[i]), seg=(int(i), True))
            if directed and not oneway[i]:
                self.graph.add_edge(b, a, weight=float(length[i]), seg=(int(i), False))
        self._cache: dict[tuple[int, bool], tuple[dict[int, float], dict[int, list[int]]]] = {}

    def steps(self, path: list[int]) -> list[Step]:
        out = []
        for a, b in itertools.pairwise(path):
            seg, forward = self.graph[a][b]["seg"]
            if not self.graph.is_directed():
                forward = int(self.u[seg]) == a
            out.append((seg, forward))
        return out

    def tree(self, node: int, *, back: bool) -> tuple[dict[int, float], dict[int, list[int]]]:
        """Distances and paths from ``node`` (``back``: to it)."""
        key = (node, back)
        if key not in self._cache:
            graph = (
                self.graph.reverse(copy=False) if back and self.graph.is_directed() else self.graph
            )
            dist, paths = nx.single_source_dijkstra(graph, node, weight="weight")
            if back:
                # Found from ``node`` outwards (over reversed arcs): walked the other way.
                paths = {k: p[::-1] for k, p in paths.items()}
            self._cache[key] = (dist, paths)
        return self._cache[key]

    def visit(self, steps: list[Step], node: int) -> list[Step]:
        """Return ``steps`` with a detour to ``node`` and back, when it is not on them."""
        on = {_begin(s, self.u, self.v) for s in steps}
        if node in on:
            return steps
        there, there_paths = self.tree(node, back=True)
        back, back_paths = self.tree(node, back=False)
        best = min(
            (n for n in on if n in there and n in back),
            key=lambda n: there[n] + back[n],
            default=None,
        )
        if best is None:
            raise InputError(
                "the start or a checkpoint cannot be reached from the streets to cover",
                field="start",
            )
        detour = self.steps(there_paths[best]) + self.steps(back_paths[best])
        i = next(i for i, s in enumerate(steps) if _begin(s, self.u, self.v) == best)
        return steps[:i] + detour + steps[i:]


def _split(
    steps: list[Step],
    covers: list[bool],
    start: int,
    ways: _Ways,
    limit: float,
    where: Any,
    length: np.ndarray,
) -> list[tuple[list[Step], list[bool]]]:
    u, v = ways.u, ways.v
    out_d, out_p = ways.tree(start, back=False)
    in_d, in_p = ways.tree(start, back=True)
    pieces: list[tuple[list[Step], list[bool]]] = []
    i, n = 0, len(steps)
    while i < n:
        while i < n and not covers[i]:
            i += 1
        if i == n:
            break
        first = _begin(steps[i], u, v)
        run, j = 0.0, i
        while j < n:
            need = out_d[first] + run + length[steps[j][0]] + in_d[_end(steps[j], u, v)]
            if need > limit:
                break
            run += length[steps[j][0]]
            j += 1
        if j == i:
            need = out_d[first] + length[steps[i][0]] + in_d[_end(steps[i], u, v)]
            raise InputError(
                f"max_length_m {limit:g} is too short: the street near {where(first)} needs "
                f"{need:.0f} m with the way there and back",
                field="max_length_m",
            )
        while j > i and not covers[j - 1]:
            j -= 1
        last = _end(steps[j - 1], u, v)
        lead = ways.steps(out_p[first])
        tail = ways.steps(in_p[last])
        piece = lead + steps[i:j] + tail
        flags = [False] * len(lead) + covers[i:j] + [False] * len(tail)
        pieces.append((piece, flags))
        i = j
    return pieces


def _route(
    steps: list[Step],
    covers: list[bool],
    length: np.ndarray,
    marks: dict[str, int],
    u: np.ndarray,
    v: np.ndarray,
    speed: float,
) -> Route:
    total = float(sum(length[s] for s, _ in steps))
    street = float(sum(length[s] for (s, _), c in zip(steps, covers, strict=True) if c))
    nodes = {_begin(s, u, v) for s in steps} | {_end(s, u, v) for s in steps}
    passed = [name for name, node in marks.items() if node in nodes]
    return Route(steps, covers, total, street, total - street, passed, total / speed)
