"""Chinese postman tours: closed walks covering every required street segment.

Three cases, chosen from the data:

``undirected`` (walking, or driving without one-way streets) — exact
    (Edmonds–Johnson): the odd-degree nodes of the required streets are
    paired by a minimum-weight perfect matching (:func:`networkx.min_weight_matching`)
    on shortest-path distances over *all* available streets (outside the unit
    too); the paths are walked twice; an Eulerian circuit of the result is
    the tour.
``directed`` (every required street one-way) — exact: the deadheading that
    balances in- and out-degree is a min-cost flow (:func:`networkx.network_simplex`)
    from nodes with surplus in-degree to nodes with surplus out-degree.
``mixed`` (one-way and two-way streets) — heuristic. Two-way streets are first
    oriented arbitrarily; the flow may *flip* one at no cost (an arc of
    capacity 2 and cost 0: two units turn u→v into v→u). The optimum of that
    flow is a lower bound of the mixed postman tour; the tour is the flow
    with every half-flipped street (one unit) driven both ways, which costs
    its length once more. Without half flips the tour is optimal.

When the required streets fall apart into several pieces (a rural unit, a
unit cut by a railway) the problem is the NP-hard *rural* postman. The pieces
are joined by a minimum spanning tree of shortest paths between them
(Frederickson's heuristic: the connecting paths are added once, then the
parity is fixed by the matching; directed: walked there and back). The lower
bound is then the street length plus the larger of the matching (or flow)
over the required streets alone and half the spanning tree. Pieces that no
available street connects are an :class:`~gis.errors.InputError` naming
where they are.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Any

import networkx as nx
import numpy as np

from gis.errors import InputError

__all__ = ["Tour", "postman_tour"]

#: Up to this many odd nodes the matching is exact (complete graph).
EXACT_MATCHING = 120
#: Beyond, each odd node is offered this many nearest odd nodes.
NEIGHBOURS = 10
#: Flow costs are integers (network simplex is exact on integers): centimetres.
_SCALE = 100


@dataclass(frozen=True)
class Tour:
    """A closed walk as segment traversals.

    Attributes
    ----------
    steps : list of (int, bool)
        ``(segment row, forward)`` in walking order; ``forward`` is u→v.
    lower_bound : float
        No closed walk covering the required segments is shorter (m).
    exact : bool
        The tour is proven optimal (its length equals ``lower_bound``).
    method : str
        ``undirected``, ``directed`` or ``mixed``, with ``+rural`` when
        separate pieces had to be joined.
    """

    steps: list[tuple[int, bool]]
    lower_bound: float
    exact: bool
    method: str


def postman_tour(
    u: np.ndarray,
    v: np.ndarray,
    length: np.ndarray,
    oneway: np.ndarray,
    required: np.ndarray,
    *,
    directed: bool,
    start: int | None = None,
    where: Any = None,
) -> Tour:
    """Return a shortest (or heuristic, see the module) closed walk over the required segments.

    Parameters
    ----------
    u, v : ndarray of int
        Segment end nodes.
    length : ndarray of float
        Segment lengths (m), > 0.
    oneway : ndarray of bool
        Segment may be used only u→v (ignored unless ``directed``).
    required : ndarray of bool
        Segments the walk must cover; the others may be used to deadhead.
    directed : bool
        Respect ``oneway``.
    start : int, optional
        A node of the required streets to begin and end at.
    where : callable, optional
        ``where(node) -> str`` describing a node for error messages.

    Raises
    ------
    InputError
        No required segment, or required streets no available street connects.
    """
    if not required.any():
        raise InputError("no street segment to cover in this area", field="network")
    describe = where or (lambda node: f"node {node}")
    if directed and oneway[required].any():
        return _directed(u, v, length, oneway, required, start, describe)
    return _undirected(u, v, length, required, start, describe)


# -- undirected --------------------------------------------------------------


def _undirected(
    u: np.ndarray,
    v: np.ndarray,
    length: np.ndarray,
    required: np.ndarray,
    start: int | None,
    describe: Any,
) -> Tour:
    avail = nx.Graph()
    for i in np.argsort(-length):  # shortest parallel segment wins
        avail.add_edge(int(u[i]), int(v[i]), weight=float(length[i]), seg=int(i))
    euler = nx.MultiGraph()
    req = np.flatnonzero(required)
    for i in req:
        euler.add_edge(int(u[i]), int(v[i]), seg=int(i))
    street = float(length[req].sum())
    pieces = [set(c) for c in nx.connected_components(euler)]
    method = "undirected"
    tree_cost = 0.0
    if len(pieces) > 1:
        method += "+rural"
        tree_cost = _join_pieces(avail, euler, pieces, describe)
    odd = [n for n, d in euler.degree() if d % 2]
    for path in _paths(avail, _match(avail, odd, describe)):
        _add_path(avail, euler, path)
    total = sum(float(length[d["seg"]]) for _, _, d in euler.edges(data=True))
    if len(pieces) == 1 and len(odd) <= EXACT_MATCHING:
        bound = total
    elif len(pieces) == 1:
        method += "+near-matching"
        bound = street + _matching_bound(avail, odd, describe)
    else:
        alone = [n for n, d in _degree_of(u[req], v[req]) if d % 2]
        bound = street + max(_matching_bound(avail, alone, describe), tree_cost / 2)
    steps = _circuit(euler, u, start)
    return Tour(steps, bound, abs(total - bound) < 1e-6, method)


def _degree_of(u: np.ndarray, v: np.ndarray) -> list[tuple[int, int]]:
    nodes, counts = np.unique(np.concatenate([u, v]), return_counts=True)
    return [(int(n), int(c)) for n, c in zip(nodes, counts, strict=True)]


def _match(
    avail: nx.Graph, odd: list[int], describe: Any, dist: np.ndarray | None = None
) -> list[tuple[int, int]]:
    """Pair the odd nodes at least total shortest-path distance.

    Exact (matching on the complete graph of distances) up to
    :data:`EXACT_MATCHING` nodes; beyond, each node is offered its
    :data:`NEIGHBOURS` nearest odd nodes only (pure-Python blossom is cubic):
    in street grids the optimal partner is near, but optimality is no longer
    proven and the tour is not marked exact.
    """
    if not odd:
        return []
    if dist is None:
        dist = _distances(avail, odd)
    unreachable = ~np.isfinite(dist)
    if unreachable.any():
        a, b = np.argwhere(unreachable)[0]
        raise InputError(
            "the streets fall apart into pieces no street connects "
            f"(near {describe(odd[a])} and near {describe(odd[b])})",
            field="network",
        )
    complete = nx.Graph()
    k = len(odd)
    pairs: list[tuple[int, int]]
    if k <= EXACT_MATCHING:
        pairs = list(itertools.combinations(range(k), 2))
    else:
        near = np.argsort(dist, axis=1)[:, 1 : NEIGHBOURS + 1]
        pairs = [(a, int(b)) for a in range(k) for b in near[a]]
    for a, b in pairs:
        complete.add_edge(odd[a], odd[b], weight=float(dist[a, b]))
    matching = nx.min_weight_matching(complete, weight="weight")
    if 2 * len(matching) != k:  # pragma: no cover - near pairs admit no perfect matching
        complete = nx.Graph()
        for a, b in itertools.combinations(range(k), 2):
            complete.add_edge(odd[a], odd[b], weight=float(dist[a, b]))
        matching = nx.min_weight_matching(complete, weight="weight")
    return [(int(a), int(b)) for a, b in matching]


def _matching_bound(avail: nx.Graph, odd: list[int], describe: Any) -> float:
    # A valid lower bound of the matching: exact when small, else each odd
    # node pays half its distance to the nearest other odd node.
    if not odd:
        return 0.0
    dist = _distances(avail, odd)
    if len(odd) <= EXACT_MATCHING:
        # The matched pairs' distances from the same matrix (one Dijkstra
        # per odd node, not one more per pair).
        at = {node: k for k, node in enumerate(odd)}
        pairs = _match(avail, odd, describe, dist)
        return float(sum(dist[at[a], at[b]] for a, b in pairs))
    np.fill_diagonal(dist, np.inf)
    return float(dist.min(axis=1).sum() / 2)


def _paths(avail: nx.Graph, pairs: list[tuple[int, int]]) -> list[list[int]]:
    if not pairs:
        return []
    from scipy.sparse.csgraph import dijkstra

    order, index, matrix = _csr(avail)
    _, pred = dijkstra(
        matrix, directed=False, indices=[index[a] for a, _ in pairs], return_predecessors=True
    )
    out = []
    for row, (a, b) in enumerate(pairs):
        path = [index[b]]
        while path[-1] != index[a]:
            path.append(int(pred[row, path[-1]]))
        out.append([order[i] for i in reversed(path)])
    return out


def _distances(avail: nx.Graph, odd: list[int]) -> np.ndarray:
    from scipy.sparse.csgraph import dijkstra

    _, index, matrix = _csr(avail)
    full = dijkstra(matrix, directed=False, indices=[index[n] for n in odd])
    out: np.ndarray = full[:, [index[n] for n in odd]]
    return out


def _csr(avail: nx.Graph) -> tuple[list[int], dict[int, int], Any]:
    from scipy.sparse import csr_matrix

    order = list(avail.nodes)
    index = {n: i for i, n in enumerate(order)}
    rows, cols, weights = [], [], []
    for a, b, w in avail.edges(data="weight"):
        rows.append(index[a])
        cols.append(index[b])
        weights.append(w)
    size = len(order)
    return order, index, csr_matrix((weights, (rows, cols)), shape=(size, size))


def _add_path(avail: nx.Graph, euler: nx.MultiGraph, path: list[int]) -> None:
    for a, b in itertools.pairwise(path):
        euler.add_edge(a, b, seg=avail[a][b]["seg"])


def _join_pieces(
    avail: nx.Graph, euler: nx.MultiGraph, pieces: list[set[int]], describe: Any
) -> float:
    # Minimum spanning tree over the pieces, on shortest paths between them.
    owner = {n: k for k, piece in enumerate(pieces) for n in piece}
    between = nx.Graph()
    for k, piece in enumerate(pieces):
        dist, paths = nx.multi_source_dijkstra(avail, piece, weight="weight")
        best: dict[int, tuple[float, int]] = {}
        for node, d in dist.items():
            other = owner.get(node)
            if other is not None and other != k and (other not in best or d < best[other][0]):
                best[other] = (d, node)
        for other, (d, node) in best.items():
            if not between.has_edge(k, other) or between[k][other]["weight"] > d:
                between.add_edge(k, other, weight=d, path=paths[node])
    between.add_nodes_from(range(len(pieces)))
    if not nx.is_connected(between):
        parts = list(nx.connected_components(between))
        a = next(iter(pieces[next(iter(parts[0]))]))
        b = next(iter(pieces[next(iter(parts[1]))]))
        raise InputError(
            "the streets to cover fall apart into pieces no street connects "
            f"({len(parts)} parts; e.g. near {describe(a)} and near {describe(b)}): "
            "give a network that connects them or cover each part separately",
            field="network",
        )
    cost = 0.0
    for _, _, data in nx.minimum_spanning_edges(between, weight="weight", data=True):
        _add_path(avail, euler, data["path"])
        cost += data["weight"]
    return cost


def _circuit(
    euler: nx.MultiGraph | nx.MultiDiGraph, u: np.ndarray, start: int | None
) -> list[tuple[int, bool]]:
    source = start if start is not None and start in euler else None
    steps = []
    for a, b, key in nx.eulerian_circuit(euler, source=source, keys=True):
        seg = int(euler[a][b][key]["seg"])
        # A loop (u == v) is walked forward.
        steps.append((seg, int(u[seg]) == a))
    return steps


# -- directed and mixed ------------------------------------------------------


def _directed(
    u: np.ndarray,
    v: np.ndarray,
    length: np.ndarray,
    oneway: np.ndarray,
    required: np.ndarray,
    start: int | None,
    describe: Any,
) -> Tour:
    cost = np.maximum(np.round(length * _SCALE).astype(np.int64), 1)
    avail = nx.DiGraph()
    for i in np.argsort(-length):
        a, b = int(u[i]), int(v[i])
        avail.add_edge(a, b, weight=int(cost[i]), seg=int(i))
        if not oneway[i]:
            avail.add_edge(b, a, weight=int(cost[i]), seg=int(i))
    req = np.flatnonzero(required)
    two_way = [int(i) for i in req if not oneway[i]]
    method = "mixed" if two_way else "directed"
    flow_net = nx.DiGraph()
    flow_net.add_edges_from(avail.edges(data=True))
    balance: dict[int, int] = {}
    for i in req:
        balance[int(u[i])] = balance.get(int(u[i]), 0) + 1  # out
        balance[int(v[i])] = balance.get(int(v[i]), 0) - 1  # in
    for i in two_way:
        # v→flip→u: two units reverse the arbitrary u→v orientation for free.
        flip = ("flip", i)
        flow_net.add_edge(int(v[i]), flip, weight=0, capacity=2)
        flow_net.add_edge(flip, int(u[i]), weight=0, capacity=2)
    for node in flow_net.nodes:
        # networkx: negative demand sends. A node entered more often than
        # left must send deadheading out of it.
        flow_net.nodes[node]["demand"] = balance.get(node, 0) if isinstance(node, int) else 0
    try:
        flow_cost, flow = nx.network_simplex(flow_net, demand="demand", capacity="capacity")
    except nx.NetworkXUnfeasible:
        raise InputError(
            "the one-way streets cannot all be driven in one closed route: some cannot be "
            "left or reached (check the one-way data or cover on foot with --mode walk)",
            field="network",
        ) from None
    euler, extra = _balanced(flow, avail, u, v, oneway, req)
    street = float(length[req].sum())
    bound = street + flow_cost / _SCALE
    pieces = [set(c) for c in nx.weakly_connected_components(euler)]
    if len(pieces) > 1:
        method += "+rural"
        tree = _join_directed(avail, euler, pieces, describe)
        bound = max(bound, street + tree / 2 / _SCALE)
    total = sum(float(length[d["seg"]]) for _, _, d in euler.edges(data=True))
    steps = _circuit(euler, u, start)
    exact = len(pieces) == 1 and extra == 0
    return Tour(steps, total if exact else bound, exact, method)


def _balanced(
    flow: dict[Any, dict[Any, int]],
    avail: nx.DiGraph,
    u: np.ndarray,
    v: np.ndarray,
    oneway: np.ndarray,
    req: np.ndarray,
) -> tuple[nx.MultiDiGraph, int]:
    # The required streets, oriented as the flow says, plus the deadheading.
    euler = nx.MultiDiGraph()
    extra = 0
    for i in req:
        flips = 0
        if not oneway[i]:
            flips = flow[int(v[i])].get(("flip", int(i)), 0)
        a, b = (int(v[i]), int(u[i])) if flips == 2 else (int(u[i]), int(v[i]))
        euler.add_edge(a, b, seg=int(i))
        if flips == 1:
            euler.add_edge(int(v[i]), int(u[i]), seg=int(i))
            extra += 1
    for a, targets in flow.items():
        if not isinstance(a, int):
            continue
        for b, units in targets.items():
            if isinstance(b, int):
                for _ in range(units):
                    euler.add_edge(a, b, seg=avail[a][b]["seg"])
    return euler, extra


def _join_directed(
    avail: nx.DiGraph, euler: nx.MultiDiGraph, pieces: list[set[int]], describe: Any
) -> float:
    # Each tree edge is driven there and back, so balance is kept.
    owner = {n: k for k, piece in enumerate(pieces) for n in piece}
    between = nx.Graph()
    routes: dict[tuple[int, int], list[int]] = {}
    for k, piece in enumerate(pieces):
        dist, paths = nx.multi_source_dijkstra(avail, piece, weight="weight")
        for node, d in dist.items():
            other = owner.get(node)
            if other is None or other == k:
                continue
            key = (k, other)
            if key not in routes or d < nx.path_weight(avail, routes[key], "weight"):
                routes[key] = paths[node]
    for (a, b), path in routes.items():
        # There and back between the same two nodes keeps every node balanced.
        try:
            back = nx.dijkstra_path(avail, path[-1], path[0], weight="weight")
        except nx.NetworkXNoPath:
            continue
        w = nx.path_weight(avail, path, "weight") + nx.path_weight(avail, back, "weight")
        if not between.has_edge(a, b) or between[a][b]["weight"] > w:
            between.add_edge(a, b, weight=w, there=path, back=back)
    between.add_nodes_from(range(len(pieces)))
    if not nx.is_connected(between):
        parts = list(nx.connected_components(between))
        a = next(iter(pieces[next(iter(parts[0]))]))
        b = next(iter(pieces[next(iter(parts[1]))]))
        raise InputError(
            "the streets to cover fall apart into pieces no street connects both ways "
            f"({len(parts)} parts; e.g. near {describe(a)} and near {describe(b)})",
            field="network",
        )
    cost = 0.0
    for _, _, data in nx.minimum_spanning_edges(between, weight="weight", data=True):
        for path in (data["there"], data["back"]):
            for a, b in itertools.pairwise(path):
                euler.add_edge(a, b, seg=avail[a][b]["seg"])
        cost += data["weight"]
    return cost
