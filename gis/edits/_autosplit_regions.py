"""Regions of an automatic split: N contiguous, balanced, compact groups of atoms.

Candidates from recursive bisection and from region growing, each improved
by moves and swaps of boundary atoms that never disconnect a part; the
cheapest is kept. See :mod:`gis.edits._autosplit` for the whole pipeline.
"""

from __future__ import annotations

import heapq
import math
from collections import deque
from dataclasses import dataclass
from typing import Any

import numpy as np

from gis.edits._autosplit_atoms import Arrangement

__all__ = ["Regions", "partition"]

_SHAPE_WEIGHT = 0.3  # weight of the mean 1/Polsby-Popper against the balance terms
_EXCESS_WEIGHT = 10.0  # weight of the excess over the tolerance (linear and squared)
_DEVIATION_WEIGHT = 1.0  # weight of the squared deviation from the mean
_MAX_PASSES = 60


@dataclass
class Regions:
    """A partition: each atom's part (0..N-1) and its cost (lower is better)."""

    label: np.ndarray
    cost: float


def partition(arr: Arrangement, n: int, tolerance: float, seeds: int) -> Regions:
    """Return the cheapest contiguous partition of the atoms into ``n`` parts found.

    Parameters
    ----------
    arr : Arrangement
        The atoms, their weights and adjacency.
    n : int
        Number of parts.
    tolerance : float
        Allowed relative deviation from the mean weight.
    seeds : int
        Region-growing seedings tried besides the recursive bisection.

    Returns
    -------
    Regions
    """
    # Candidates: recursive bisection by sweeps, and region growing from
    # k-means++ seeds; each improved by local search, the cheapest kept.
    starts = [_bisection(arr, n)]
    for seed in range(max(0, seeds)):
        rng = np.random.default_rng(seed)
        centres = _kmeans(arr.xy, arr.weights + 1e-9, n, rng, lloyd=seed == 0)
        starts.append(_grow(arr, centres, n))
    best: Regions | None = None
    for label in starts:
        if len(set(label.tolist())) < n:
            continue
        _improve(arr, label, n, tolerance)
        cost = _cost(arr, label, n, tolerance)
        if best is None or cost < best.cost:
            best = Regions(label, cost)
    assert best is not None  # region growing always yields n parts
    return best


def _bisection(arr: Arrangement, n: int) -> np.ndarray:
    label = np.full(arr.size, -1)
    parts = _split(arr, list(range(arr.size)), n)
    for k, part in enumerate(parts):
        label[part] = k
    return label


def _split(arr: Arrangement, nodes: list[int], n: int) -> list[list[int]]:
    if n == 1:
        return [nodes]
    if len(nodes) < n:  # cannot be cut in n: the candidate is dropped
        return [nodes] + [[] for _ in range(n - 1)]
    k = n // 2
    first, second = _bisect(arr, nodes, k / n, (k, n - k))
    return _split(arr, first, k) + _split(arr, second, n - k)


def _bisect(
    arr: Arrangement, nodes: list[int], share: float, sizes: tuple[int, int]
) -> tuple[list[int], list[int]]:
    node_set = set(nodes)
    total = float(arr.weights[nodes].sum())
    scale = math.sqrt(float(arr.area[nodes].sum()))
    goal = share * total
    best: tuple[float, list[int], list[int]] | None = None
    for step in range(16):
        angle = step * math.pi / 8
        region = _sweep(arr, node_set, np.array([math.cos(angle), math.sin(angle)]), goal)
        pieces = _components(arr, node_set - region)
        if not pieces:
            continue
        rest = max(pieces, key=len)
        for stray in pieces:
            if stray is not rest:
                region |= stray
        if len(region) < sizes[0] or len(rest) < sizes[1]:
            continue
        error = abs(float(arr.weights[list(region)].sum()) - goal) / max(total, 1e-9)
        cut = sum(
            arr.neighbours[i].get(j, 0.0) for i in region for j in arr.neighbours[i] if j in rest
        )
        score = error + 0.02 * cut / max(scale, 1e-9)
        if best is None or score < best[0] - 1e-12:
            best = (score, sorted(region), sorted(rest))
    if best is None:
        half = len(nodes) * sizes[0] // (sizes[0] + sizes[1])
        return nodes[:half], nodes[half:]
    return best[1], best[2]


def _sweep(arr: Arrangement, nodes: set[int], direction: np.ndarray, goal: float) -> set[int]:
    # Grow a connected region from the extreme atom along ``direction`` up to ``goal``.
    proj = {i: float(arr.xy[i] @ direction) for i in nodes}
    start = min(nodes, key=lambda i: (proj[i], i))
    heap = [(proj[start], start)]
    seen = {start}
    region: set[int] = set()
    total = 0.0
    while heap:
        _, i = heapq.heappop(heap)
        w = float(arr.weights[i])
        if region and total + w > goal and (total + w - goal) > (goal - total):
            break
        region.add(i)
        total += w
        if total >= goal:
            break
        for j in arr.neighbours[i]:
            if j in nodes and j not in seen:
                seen.add(j)
                heapq.heappush(heap, (proj[j], j))
    return region


def _components(arr: Arrangement, nodes: set[int]) -> list[set[int]]:
    left = set(nodes)
    pieces = []
    while left:
        start = left.pop()
        piece = {start}
        queue = deque([start])
        while queue:
            i = queue.popleft()
            for j in arr.neighbours[i]:
                if j in left:
                    left.discard(j)
                    piece.add(j)
                    queue.append(j)
        pieces.append(piece)
    return pieces


def _kmeans(
    xy: np.ndarray, w: np.ndarray, n: int, rng: np.random.Generator, *, lloyd: bool
) -> np.ndarray:
    # k-means++ seeding weighted by households, then a few weighted Lloyd steps.
    first = rng.choice(len(xy), p=w / w.sum())
    centres = [xy[first]]
    for _ in range(1, n):
        d2 = np.min([((xy - c) ** 2).sum(axis=1) for c in centres], axis=0) * w
        pick = rng.choice(len(xy), p=d2 / d2.sum()) if d2.sum() > 0 else rng.integers(len(xy))
        centres.append(xy[pick])
    c = np.array(centres, dtype=float)
    for _ in range(10 if lloyd else 0):
        nearest = np.argmin(((xy[:, None, :] - c[None, :, :]) ** 2).sum(axis=2), axis=1)
        for k in range(n):
            mine = nearest == k
            if w[mine].sum() > 0:
                c[k] = (xy[mine] * w[mine, None]).sum(axis=0) / w[mine].sum()
    return c


def _grow(arr: Arrangement, centres: np.ndarray, n: int) -> np.ndarray:
    # The lightest region takes its free neighbour nearest its centre (one
    # heap per region: n log n, large units included).
    label = np.full(arr.size, -1)
    distance = ((arr.xy[:, None, :] - centres[None, :, :]) ** 2).sum(axis=2)
    load = np.zeros(n)
    heaps: list[list[tuple[float, int]]] = [[] for _ in range(n)]

    def take(k: int, i: int) -> None:
        label[i] = k
        load[k] += arr.weights[i]
        for j in arr.neighbours[i]:
            if label[j] < 0:
                heapq.heappush(heaps[k], (float(distance[j, k]), j))

    for k in range(n):
        order = np.argsort(distance[:, k])
        take(k, next(int(i) for i in order if label[int(i)] < 0))
    active = set(range(n))
    while active:
        k = min(active, key=lambda r: (load[r], r))
        while heaps[k] and label[heaps[k][0][1]] >= 0:
            heapq.heappop(heaps[k])
        if not heaps[k]:
            active.discard(k)
            continue
        take(k, heapq.heappop(heaps[k])[1])
    for i in np.flatnonzero(label < 0):  # pieces of the unit nothing connects
        label[i] = int(np.argmin(distance[i]))
    return label


def _cost(arr: Arrangement, label: np.ndarray, n: int, tol: float) -> float:
    mean = arr.weights.sum() / n
    if mean <= 0:
        return 0.0
    state = _State(arr, label, n, mean, tol)
    return float(
        sum(state.balance(v) for v in state.load)
        + _SHAPE_WEIGHT
        * sum(_shape(p, a) for p, a in zip(state.perim, state.area, strict=True))
        / n
    )


def _shape(perimeter: float, area: float) -> float:
    # 1 / Polsby-Popper: 1 for a disc, larger the less compact.
    return perimeter * perimeter / (4 * math.pi * area) if area > 0 else 1e6


def _improve(arr: Arrangement, label: np.ndarray, n: int, tol: float) -> None:
    mean = arr.weights.sum() / n
    if mean <= 0:
        return
    state = _State(arr, label, n, mean, tol)
    for _ in range(_MAX_PASSES):
        # Single moves first; when none helps, swaps of two atoms across an
        # edge between parts (heavy buildings often leave no single move).
        if not state.move_pass() and not state.swap_pass():
            break


class _State:
    """Labels, loads, areas and perimeters of a partition being improved in place.

    Perimeters are weighted: a cut between two atoms of one block counts
    ``_THROUGH_BLOCK`` times its length, so cuts prefer streets.
    """

    def __init__(self, arr: Arrangement, label: np.ndarray, n: int, mean: float, tol: float):
        self.arr, self.label, self.mean, self.tol, self.n = arr, label, mean, tol, n
        self.load = np.bincount(label, weights=arr.weights, minlength=n)
        self.members = [set(np.flatnonzero(label == k).tolist()) for k in range(n)]
        self.outer = np.maximum(
            arr.perimeter - np.array([sum(s.values()) for s in arr.shared]), 0.0
        )
        self.area = np.bincount(label, weights=arr.area, minlength=n).astype(float)
        self.perim = np.array([self._perimeter(k, self.members[k], label) for k in range(n)])

    def _perimeter(self, k: int, part: set[int], label: Any) -> float:
        arr = self.arr
        total = 0.0
        for i in part:
            total += self.outer[i]
            for j, length in arr.neighbours[i].items():
                if label[j] != k:
                    total += length
        return total

    def balance(self, value: float) -> float:
        d = value / self.mean - 1
        excess = max(abs(d) - self.tol, 0.0)
        # Linear as well as quadratic: leaving the tolerance by a hair is not cheap.
        return _EXCESS_WEIGHT * (excess + excess * excess) + _DEVIATION_WEIGHT * d * d

    def shape(self, perimeter: float, area: float) -> float:
        return _SHAPE_WEIGHT * _shape(perimeter, area) / self.n

    def boundary(self) -> list[int]:
        label, arr = self.label, self.arr
        return [i for i in range(arr.size) if any(label[j] != label[i] for j in arr.neighbours[i])]

    def move(self, i: int, target: int, perimeters: tuple[float, float] | None = None) -> None:
        p = int(self.label[i])
        arr = self.arr
        if perimeters is None:
            perimeters = self._moved_perimeters(i, p, target)
        self.label[i] = target
        self.members[p].discard(i)
        self.members[target].add(i)
        self.load[p] -= arr.weights[i]
        self.load[target] += arr.weights[i]
        self.area[p] -= arr.area[i]
        self.area[target] += arr.area[i]
        self.perim[p], self.perim[target] = perimeters

    def _moved_perimeters(self, i: int, p: int, q: int) -> tuple[float, float]:
        touch: dict[int, float] = {}
        for j, length in self.arr.neighbours[i].items():
            touch[int(self.label[j])] = touch.get(int(self.label[j]), 0.0) + length
        total = sum(touch.values())
        on_p, on_q = touch.get(p, 0.0), touch.get(q, 0.0)
        return (
            self.perim[p] - self.outer[i] - (total - on_p) + on_p,
            self.perim[q] + self.outer[i] + (total - on_q) - on_q,
        )

    def move_pass(self) -> bool:
        improved = False
        label, load, arr = self.label, self.load, self.arr
        for i in self.boundary():
            p = int(label[i])
            if len(self.members[p]) <= 1:
                continue
            w, a = arr.weights[i], arr.area[i]
            before_p = self.balance(load[p]) + self.shape(self.perim[p], self.area[p])
            best, target, best_perimeters = 0.0, -1, (0.0, 0.0)
            for q in {int(label[j]) for j in arr.neighbours[i]} - {p}:
                perim_p, perim_q = self._moved_perimeters(i, p, q)
                delta = (
                    self.balance(load[p] - w)
                    + self.shape(perim_p, self.area[p] - a)
                    + self.balance(load[q] + w)
                    + self.shape(perim_q, self.area[q] + a)
                    - before_p
                    - self.balance(load[q])
                    - self.shape(self.perim[q], self.area[q])
                )
                if delta < best - 1e-12:
                    best, target, best_perimeters = delta, q, (perim_p, perim_q)
            if target < 0 or not _connected(arr, self.members[p] - {i}):
                continue
            self.move(i, target, best_perimeters)
            improved = True
        return improved

    def swap_pass(self) -> bool:
        label, load, arr = self.label, self.load, self.arr
        sides: dict[tuple[int, int], set[int]] = {}
        for i in self.boundary():
            for j in arr.neighbours[i]:
                if label[j] != label[i]:
                    sides.setdefault((int(label[i]), int(label[j])), set()).add(i)
        candidates: list[tuple[float, int, int]] = []
        for (p, q), mine in sides.items():
            if p > q:
                continue
            theirs = sides.get((q, p), set())
            base = self.balance(load[p]) + self.balance(load[q])
            for a in mine:
                for b in theirs:
                    shift = arr.weights[b] - arr.weights[a]
                    delta = self.balance(load[p] + shift) + self.balance(load[q] - shift) - base
                    if delta < -1e-9:
                        candidates.append((delta, a, b))
        for _, a, b in sorted(candidates)[:200]:
            p, q = int(label[a]), int(label[b])
            new_p = (self.members[p] - {a}) | {b}
            new_q = (self.members[q] - {b}) | {a}
            if not (_connected(arr, new_p) and _connected(arr, new_q)):
                continue
            trial = dict(enumerate(label.tolist()))
            trial[a], trial[b] = q, p
            perim_p = self._perimeter(p, new_p, trial)
            perim_q = self._perimeter(q, new_q, trial)
            shift = arr.weights[b] - arr.weights[a]
            area_shift = arr.area[b] - arr.area[a]
            delta = (
                self.balance(load[p] + shift)
                + self.balance(load[q] - shift)
                + self.shape(perim_p, self.area[p] + area_shift)
                + self.shape(perim_q, self.area[q] - area_shift)
                - self.balance(load[p])
                - self.balance(load[q])
                - self.shape(self.perim[p], self.area[p])
                - self.shape(self.perim[q], self.area[q])
            )
            if delta >= -1e-9:
                continue
            self.move(a, q)
            self.move(b, p)
            self.perim[p], self.perim[q] = perim_p, perim_q
            return True
        return False


def _connected(arr: Arrangement, part: set[int]) -> bool:
    if not part:
        return False
    start = next(iter(part))
    seen = {start}
    queue = deque([start])
    while queue:
        i = queue.popleft()
        for j in arr.neighbours[i]:
            if j in part and j not in seen:
                seen.add(j)
                queue.append(j)
    return len(seen) == len(part)
