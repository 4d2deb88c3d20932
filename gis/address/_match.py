"""Rank standard addresses for a loosely written address, and say when the best is certain.

Rules (scores in 0-1, rounded to 3 decimals):

- The road (街路巷) anchors everything: candidates come only from the
  query's road, or from roads sharing at least :data:`ROAD_SIMILARITY` of
  their character bigrams (Dice), whose scores are scaled by 0.8 × the
  similarity so they stay at most 0.8. No similar road: no candidate.
- Road and door number equal: 1.0, less a penalty for each component that
  disagrees (district 0.25, street 0.15, building 0.3, unit 0.2...) and a
  small one for each component the standard address has and the query lacks
  (building 0.1...), so an address given only to its door number does not
  pick one of several buildings with certainty. Components the query has
  below the standard address's deepest one (unit, floor and room of a
  building address) cost nothing and are listed in ``below``.
- Door number differs: ``0.3 + 0.4 / (1 + |Δ| / 10)`` (0.7 for the same main
  number with another sub-number, 0.5 ten doors away), one candidate per
  number, nearest numbers first. No door number on one side: 0.5.
- The best candidate is ``certain`` when its score is at least
  :data:`CERTAIN_SCORE` and beats the second by at least
  :data:`CERTAIN_MARGIN`; callers must confirm any other answer.

The index maps each road to its records by main door number (sorted, for
the nearest numbers by bisection) and each character bigram to the roads
containing it, so a query touches one road's records, not the table.
"""

from __future__ import annotations

import bisect
from collections.abc import Hashable, Iterable, Mapping
from dataclasses import dataclass, replace
from typing import Any, Final

from gis.address._context import ADMIN_LEVELS, AdminContext
from gis.address._parse import ParsedAddress, parse_address

__all__ = ["CERTAIN_MARGIN", "CERTAIN_SCORE", "ROAD_SIMILARITY", "AddressIndex", "Match"]

#: A best match scoring at least this ...
CERTAIN_SCORE: Final = 0.9
#: ... and this much more than the second is ``certain``.
CERTAIN_MARGIN: Final = 0.1
#: Least Dice similarity of character bigrams for another road to be a candidate.
ROAD_SIMILARITY: Final = 0.6
#: At most this many similar roads are searched when the query's road is unknown.
MAX_SIMILAR_ROADS: Final = 3

_BELOW_NUMBER: Final = ("building", "unit", "floor", "room")
# A different division with the same road and number is another place; a
# different community is often just the resident not knowing the boundary.
_ADMIN_MISMATCH: Final = {
    "province": 0.25, "city": 0.25, "district": 0.25, "street": 0.15, "community": 0.1
}  # fmt: skip
_MISMATCH: Final = {"building": 0.3, "unit": 0.2, "floor": 0.15, "room": 0.2}
_MISSING: Final = {"building": 0.1, "unit": 0.05, "floor": 0.03, "room": 0.05}
_NO_NUMBER: Final = 0.5
_FUZZY_ROAD_SCALE: Final = 0.8
_EPSILON: Final = 1e-9  # scores are rounded; compare margins with a little slack


@dataclass(frozen=True, slots=True)
class Match:
    """A standard address ranked for a query.

    Attributes
    ----------
    key : hashable
        The record's key.
    score : float
        0-1; above 0.8 only when road and door number match.
    address : str
        The standard address as given.
    standard : ParsedAddress
        Its components.
    matched, mismatched : tuple of str
        Components present in both and equal / different.
    missing : tuple of str
        Components of the standard address the query lacks.
    below : tuple of str
        Components of the query below the standard address's deepest one
        (unit, floor, room of a building address), not checked.
    certain : bool
        True only for the best candidate, when it scores at least
        :data:`CERTAIN_SCORE` and :data:`CERTAIN_MARGIN` more than the next.
    """

    key: Hashable
    score: float
    address: str
    standard: ParsedAddress
    matched: tuple[str, ...] = ()
    mismatched: tuple[str, ...] = ()
    missing: tuple[str, ...] = ()
    below: tuple[str, ...] = ()
    certain: bool = False

    def to_dict(self) -> dict[str, Any]:
        """Return the JSON form (components of the standard address under ``components``)."""
        return {
            "key": self.key,
            "score": self.score,
            "address": self.address,
            "components": self.standard.components(),
            "matched": list(self.matched),
            "mismatched": list(self.mismatched),
            "missing": list(self.missing),
            "below": list(self.below),
            "certain": self.certain,
        }


@dataclass(frozen=True, slots=True)
class _Record:
    key: Hashable
    address: str
    parsed: ParsedAddress
    number: tuple[bool, int, str, int] | None


class AddressIndex:
    """Standard addresses indexed by road and door number, for :meth:`match`.

    Build it with :meth:`from_records`.

    Attributes
    ----------
    context : AdminContext
        The parsing context: the one given plus every road of the records.
    unindexed : tuple
        Keys of records with neither a road nor a community-and-number to
        anchor them; they are never matched.
    """

    def __init__(self, records: Iterable[_Record], context: AdminContext) -> None:
        self._records: list[_Record] = []
        self._by_road: dict[str, dict[int | None, list[int]]] = {}
        unindexed: list[Hashable] = []
        for record in records:
            road = _thoroughfare(record.parsed)
            if road is None:
                unindexed.append(record.key)
                continue
            main = record.number[1] if record.number else None
            self._by_road.setdefault(road, {}).setdefault(main, []).append(len(self._records))
            self._records.append(record)
        self._mains = {
            road: sorted(m for m in numbers if m is not None)
            for road, numbers in self._by_road.items()
        }
        self._bigrams: dict[str, set[str]] = {}
        for road in self._by_road:
            for gram in _bigrams(road):
                self._bigrams.setdefault(gram, set()).add(road)
        # Only true roads: a village name as a "road" would hide the community.
        self.context = context.with_roads(r.parsed.road for r in self._records if r.parsed.road)
        self.unindexed: tuple[Hashable, ...] = tuple(unindexed)

    @classmethod
    def from_records(
        cls,
        records: Iterable[Mapping[str, Any]],
        *,
        key: str = "key",
        address: str = "address",
        context: AdminContext | None = None,
    ) -> AddressIndex:
        """Index standard addresses.

        Parameters
        ----------
        records : iterable of mapping
            One per standard address (building, door or household level),
            e.g. ``frame.to_dict("records")``.
        key, address : str
            Fields holding the record's key and its standard address text.
        context : AdminContext, optional
            Known divisions, used to parse both records and queries.

        Returns
        -------
        AddressIndex

        Examples
        --------
        >>> index = AddressIndex.from_records(
        ...     [{"id": 7, "text": "鲤城区中山南路88号"}], key="id", address="text"
        ... )
        >>> len(index), index.roads
        (1, ['中山南路'])
        """
        context = context or AdminContext()
        parsed = (
            (row[key], str(row[address]), parse_address(str(row[address]), context=context))
            for row in records
        )
        return cls((_Record(k, text, p, p.number_parts) for k, text, p in parsed), context)

    def __len__(self) -> int:
        return len(self._records)

    def __repr__(self) -> str:
        return f"AddressIndex({len(self)} addresses on {len(self._by_road)} roads)"

    @property
    def roads(self) -> list[str]:
        """The indexed road names (and community names of numbered village addresses)."""
        return sorted(self._by_road)

    def parse(self, text: str) -> ParsedAddress:
        """Parse ``text`` as :meth:`match` does, knowing the index's roads and divisions."""
        return parse_address(text, context=self.context)

    def match(self, text: str, *, limit: int = 5) -> list[Match]:
        """Return up to ``limit`` standard addresses for ``text``, best first.

        Parameters
        ----------
        text : str
            An address as typed.
        limit : int
            Most candidates to return (``certain`` is decided over all of them).

        Returns
        -------
        list of Match
            Empty when no indexed road is similar to the query's road.

        Examples
        --------
        >>> index = AddressIndex.from_records(
        ...     [{"key": n, "address": f"中山南路{n}号"} for n in (80, 86, 90, 120)]
        ... )
        >>> [(m.key, m.score, m.certain) for m in index.match("中山南路86号", limit=2)]
        [(86, 1.0, True), (90, 0.586, False)]

        A wrong number gives the nearest numbers on the road, none certain:

        >>> [(m.key, m.score, m.certain) for m in index.match("中山南路88号", limit=3)]
        [(86, 0.633, False), (90, 0.633, False), (80, 0.522, False)]

        No similar road, no candidate:

        >>> index.match("温陵北路88号")
        []
        """
        if limit < 1:
            raise ValueError(f"limit must be at least 1, not {limit}")
        query = self.parse(text)
        road = _thoroughfare(query)
        if road is None:
            return []
        roads = [(road, 1.0)] if road in self._by_road else self._similar_roads(road)
        target = query.number_parts
        best: dict[tuple[Any, ...], tuple[tuple[float, float, int], Match]] = {}
        for name, similarity in roads:
            for position in self._candidates(name, target, limit):
                record = self._records[position]
                found = _score(record, query, similarity)
                distance = (
                    abs(record.number[1] - target[1]) if record.number and target else float("inf")
                )
                rank = (-found.score, distance, position)
                # One candidate per door number unless the number matched:
                # "nearest numbers", not every building at number 90.
                group: tuple[Any, ...] = (position,)
                if "number" not in found.matched:
                    admin = tuple(getattr(record.parsed, level) for level in ADMIN_LEVELS)
                    group = (name, record.parsed.number, admin)
                if group not in best or rank < best[group][0]:
                    best[group] = (rank, found)
        ranked = [found for _, found in sorted(best.values(), key=lambda item: item[0])]
        if ranked and _is_certain(ranked):
            ranked[0] = replace(ranked[0], certain=True)
        return ranked[:limit]

    def _similar_roads(self, road: str) -> list[tuple[str, float]]:
        grams = _bigrams(road)
        shared: dict[str, int] = {}
        for gram in grams:
            for other in self._bigrams.get(gram, ()):
                shared[other] = shared.get(other, 0) + 1
        scored = [
            (other, 2 * count / (len(grams) + len(_bigrams(other))))
            for other, count in shared.items()
        ]
        scored = [item for item in scored if item[1] >= ROAD_SIMILARITY]
        scored.sort(key=lambda item: (-item[1], item[0]))
        return scored[:MAX_SIMILAR_ROADS]

    def _candidates(
        self, road: str, target: tuple[bool, int, str, int] | None, limit: int
    ) -> list[int]:
        """Positions of the records worth scoring: the number, its nearest neighbours."""
        numbers = self._by_road[road]
        mains = self._mains[road]
        chosen: list[int] = []
        if target is None:
            chosen = mains[: limit + 1]
        else:
            # Walk outwards from the query's number, taking the nearest distinct
            # numbers on either side: one more than asked, for the margin.
            right = bisect.bisect_left(mains, target[1])
            left = right - 1
            if right < len(mains) and mains[right] == target[1]:
                chosen.append(mains[right])
                right += 1
            while len(chosen) < limit + 2 and (left >= 0 or right < len(mains)):
                take_left = right >= len(mains) or (
                    left >= 0 and target[1] - mains[left] <= mains[right] - target[1]
                )
                if take_left:
                    chosen.append(mains[left])
                    left -= 1
                else:
                    chosen.append(mains[right])
                    right += 1
        positions = [p for main in chosen for p in numbers[main]]
        return positions + numbers.get(None, [])


def _score(record: _Record, query: ParsedAddress, road_similarity: float) -> Match:
    standard = record.parsed
    matched: list[str] = []
    mismatched: list[str] = []
    missing: list[str] = []
    below: list[str] = []
    penalty = 0.0
    for level in ADMIN_LEVELS:
        ours, theirs = getattr(query, level), getattr(standard, level)
        if ours is not None and theirs is not None:
            if ours == theirs:
                matched.append(level)
            else:
                mismatched.append(level)
                penalty += _ADMIN_MISMATCH[level]
    (matched if road_similarity == 1.0 else mismatched).append("road")
    ours_n, theirs_n = query.number_parts, record.number
    if ours_n is None or theirs_n is None:
        base = _NO_NUMBER
        if theirs_n is not None:
            missing.append("number")
        elif ours_n is not None:
            below.append("number")
    elif ours_n != theirs_n:
        base = 0.3 + 0.4 / (1 + abs(ours_n[1] - theirs_n[1]) / 10)
        mismatched.append("number")
    else:
        base = 1.0
        matched.append("number")
        present = [getattr(standard, level) is not None for level in _BELOW_NUMBER]
        depth = max((i for i, p in enumerate(present) if p), default=-1)
        for i, part in enumerate(_BELOW_NUMBER):
            ours, theirs = getattr(query, part), getattr(standard, part)
            if ours is not None and theirs is not None:
                if ours == theirs:
                    matched.append(part)
                else:
                    mismatched.append(part)
                    penalty += _MISMATCH[part]
            elif theirs is not None:
                missing.append(part)
                penalty += _MISSING[part]
            elif ours is not None and i > depth:
                below.append(part)
    score = max(base - penalty, 0.0)
    if road_similarity < 1.0:
        score *= _FUZZY_ROAD_SCALE * road_similarity
    return Match(
        key=record.key,
        score=round(score, 3),
        address=record.address,
        standard=standard,
        matched=tuple(matched),
        mismatched=tuple(mismatched),
        missing=tuple(missing),
        below=tuple(below),
    )


def _is_certain(ranked: list[Match]) -> bool:
    top = ranked[0].score
    second = ranked[1].score if len(ranked) > 1 else 0.0
    return top >= CERTAIN_SCORE - _EPSILON and top - second >= CERTAIN_MARGIN - _EPSILON


def _thoroughfare(parsed: ParsedAddress) -> str | None:
    """Return the name door numbers hang on: the road, or the village of a village address."""
    if parsed.road is not None:
        return parsed.road
    return parsed.community if parsed.number is not None else None


def _bigrams(name: str) -> set[str]:
    return {name[i : i + 2] for i in range(len(name) - 1)} or {name}
