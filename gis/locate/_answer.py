"""Per-level answers: the unit at a point, or the best unit for an uncertainty circle."""

from __future__ import annotations

import numpy as np
import shapely

from gis.locate._indexes import LevelIndex
from gis.locate.answers import Candidate, LevelAnswer, Nearest

#: Shares closer than this (10 percentage points) make a circle ambiguous.
AMBIGUITY_MARGIN = 0.10


def answer_point(
    level: LevelIndex, row: int, point: shapely.Point, *, measure: bool = True
) -> LevelAnswer:
    """Answer for an exact point; ``row`` is the index lookup (-1 for none).

    ``measure`` adds the distance to the unit's boundary (``None`` otherwise).
    """
    if row >= 0:
        distance = float(shapely.distance(point, level.boundaries[row])) if measure else None
        return LevelAnswer(
            level=level.level,
            code=str(level.codes[row]),
            name=_name(level.names[row]),
            status="ok",
            boundary_distance_m=None if distance is None else round(distance, 2),
        )
    nearest, distance = level.tree.query_nearest(point, return_distance=True, all_matches=False)
    if len(nearest) == 0:
        return LevelAnswer(level=level.level, code=None, name=None, status="outside")
    i = int(nearest[0])
    return LevelAnswer(
        level=level.level,
        code=None,
        name=None,
        status="outside",
        nearest=Nearest(
            code=str(level.codes[i]),
            name=_name(level.names[i]),
            distance_m=round(float(distance[0]), 2),
        ),
    )


def answer_circle(
    level: LevelIndex, row: int, point: shapely.Point, radius_m: float
) -> LevelAnswer:
    """Answer for a location with an uncertainty radius (the NG9-1-1 ECRF rule).

    The unit that contains the whole circle wins; else the unit with the
    largest share of it. Shares within :data:`AMBIGUITY_MARGIN` of each other
    make the answer ``ambiguous`` (the largest still wins, flagged).
    """
    exact = answer_point(level, row, point)
    circle = shapely.buffer(point, radius_m, quad_segs=16)
    hits = level.tree.query(circle, predicate="intersects")
    if len(hits) == 0:
        return exact
    areas = shapely.area(shapely.intersection(level.metric[hits], circle))
    shares = areas / float(circle.area)
    order = np.argsort(-shares, kind="stable")
    candidates = [
        Candidate(
            str(level.codes[hits[i]]), _name(level.names[hits[i]]), round(float(shares[i]), 4)
        )
        for i in order
        if shares[i] > 0
    ]
    if not candidates:
        return exact
    containing = [
        c
        for c, i in zip(candidates, order, strict=False)
        if shapely.covers(level.metric[hits[i]], circle)
    ]
    winner = containing[0] if containing else candidates[0]
    ambiguous = (
        not containing
        and len(candidates) > 1
        and candidates[0].share - candidates[1].share < AMBIGUITY_MARGIN
    )
    row_of = {str(level.codes[h]): int(h) for h in hits}
    distance = float(shapely.distance(point, level.boundaries[row_of[winner.code]]))
    return LevelAnswer(
        level=level.level,
        code=winner.code,
        name=winner.name,
        status="ambiguous" if ambiguous else "ok",
        boundary_distance_m=round(distance, 2),
        candidates=tuple(candidates),
    )


def _name(value: object) -> str | None:
    return None if value is None or (isinstance(value, float) and value != value) else str(value)
