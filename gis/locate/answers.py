"""Typed locate answers: frozen dataclasses with ``redacted(viewer)`` and ``to_dict()``.

:class:`LocateAnswer` holds one :class:`LayerAnswer` per layer, each with one
:class:`LevelAnswer` per level (a unit's code and name, or the
:class:`Nearest` unit, or the :class:`Candidate` units of an uncertainty
circle), the people responsible and, for an address, the
:class:`AddressAnswer`. ``to_dict()`` is the JSON form of ``POST
/api/v1/geocode`` (the OpenAPI schema ``GeocodeAnswer``); ``redacted()``
cuts an answer to what a caller may see (a :class:`Viewer`, e.g.
:class:`gis.access.Jurisdiction`).
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any, Protocol

import numpy as np
from numpy.typing import NDArray

from gis.address import Match
from gis.staff import StaffMember

__all__ = [
    "OUTSIDE_JURISDICTION",
    "AddressAnswer",
    "Candidate",
    "LayerAnswer",
    "LevelAnswer",
    "LocateAnswer",
    "LocateInput",
    "Nearest",
    "Viewer",
]

#: The status of a place outside the caller's jurisdiction (whatever lies there).
OUTSIDE_JURISDICTION = "outside_jurisdiction"


class Viewer(Protocol):
    """What a caller may see (:class:`gis.access.Jurisdiction` is one): answers are cut to it."""

    @property
    def unrestricted(self) -> bool:
        """Everything, everywhere (administrators)."""
        ...

    @property
    def whole(self) -> frozenset[str]:
        """Layers whose every unit is seen entirely."""
        ...

    def sees(self, layer: str, code: str | None) -> bool:
        """Whether a unit's code and name are visible."""
        ...

    def sees_wholly(self, layer: str, code: str | None) -> bool:
        """Whether a unit is seen entirely (its staff)."""
        ...

    def codes(self, layer: str) -> Collection[str] | None:
        """Return the visible codes of a layer (None: all)."""
        ...

    def covers(self, lon: float, lat: float) -> bool:
        """Whether a CGCS2000 point lies in the caller's area."""
        ...

    def covers_points(
        self, lon: NDArray[np.float64], lat: NDArray[np.float64]
    ) -> NDArray[np.bool_] | None:
        """Which CGCS2000 points lie in the caller's area (None: all)."""
        ...


@dataclass(frozen=True, slots=True)
class Candidate:
    """A unit overlapped by an uncertainty circle, with its share of the circle."""

    code: str
    name: str | None
    share: float

    def to_dict(self) -> dict[str, object]:
        """Return the JSON form."""
        return {"code": self.code, "name": self.name, "share": self.share}


@dataclass(frozen=True, slots=True)
class Nearest:
    """The nearest unit of a point that no unit covers."""

    code: str
    name: str | None
    distance_m: float

    def to_dict(self) -> dict[str, object]:
        """Return the JSON form."""
        return {"code": self.code, "name": self.name, "distance_m": self.distance_m}


@dataclass(frozen=True, slots=True)
class LevelAnswer:
    """The answer at one level: the unit (or none), and why.

    ``status`` is ``ok``, ``outside``, ``ambiguous`` or ``restricted`` (a unit
    the caller may not see: no code, no name). ``candidates`` is None when
    no circle was given (the key is then left out of the JSON form).
    """

    level: str
    code: str | None
    name: str | None
    status: str
    boundary_distance_m: float | None = None
    nearest: Nearest | None = None
    candidates: tuple[Candidate, ...] | None = None

    def to_dict(self) -> dict[str, object]:
        """Return the JSON form."""
        data: dict[str, object] = {
            "level": self.level,
            "code": self.code,
            "name": self.name,
            "status": self.status,
            "boundary_distance_m": self.boundary_distance_m,
        }
        if self.nearest is not None:
            data["nearest"] = self.nearest.to_dict()
        if self.candidates is not None:
            data["candidates"] = [c.to_dict() for c in self.candidates]
        return data

    def redacted(self, layer: str, viewer: Viewer) -> LevelAnswer:
        """Cut to what ``viewer`` may see: a hidden unit keeps its level only."""
        candidates = self.candidates
        if candidates is not None:
            shown = tuple(c for c in candidates if viewer.sees(layer, c.code))
            candidates = shown if len(shown) != len(candidates) else candidates
        if self.code is None:
            if self.nearest is None and candidates is self.candidates:
                return self
            return LevelAnswer(
                self.level, None, None, self.status, self.boundary_distance_m, None, candidates
            )
        if viewer.sees(layer, self.code):
            if candidates is self.candidates:
                return self
            return LevelAnswer(
                self.level,
                self.code,
                self.name,
                self.status,
                self.boundary_distance_m,
                self.nearest,
                candidates,
            )
        return LevelAnswer(self.level, None, None, "restricted", None, None, candidates)


@dataclass(frozen=True, slots=True)
class LayerAnswer:
    """The answer in one layer: one :class:`LevelAnswer` per level, top level first."""

    status: str  # ok | outside | ambiguous | restricted
    units: tuple[LevelAnswer, ...]
    boundary_distance_m: float | None = None
    nearest: Nearest | None = None

    @classmethod
    def of(cls, answers: Sequence[LevelAnswer]) -> LayerAnswer:
        """Combine the levels' answers (the lowest level decides ``outside``)."""
        lowest = answers[-1]
        if "ambiguous" in [a.status for a in answers]:  # (cheaper than any() per request)
            status = "ambiguous"
        elif lowest.code is None:
            status = "outside"
        else:
            status = "ok"
        return cls(
            status=status,
            units=tuple(answers),
            boundary_distance_m=lowest.boundary_distance_m,
            nearest=lowest.nearest,
        )

    def to_dict(self) -> dict[str, object]:
        """Return the JSON form."""
        return {
            "status": self.status,
            "units": [unit.to_dict() for unit in self.units],
            "boundary_distance_m": self.boundary_distance_m,
            "nearest": None if self.nearest is None else self.nearest.to_dict(),
        }

    def redacted(self, layer: str, viewer: Viewer) -> LayerAnswer:
        """Cut to what ``viewer`` may see (``restricted`` when the lowest unit is hidden)."""
        units = tuple(unit.redacted(layer, viewer) for unit in self.units)
        status, distance = self.status, self.boundary_distance_m
        if not units or units[-1].status == "restricted":
            status, distance = "restricted", None
        nearest = self.nearest
        if nearest is not None and not viewer.sees(layer, nearest.code):
            nearest = None
        return LayerAnswer(
            status=status, units=units, boundary_distance_m=distance, nearest=nearest
        )


@dataclass(frozen=True, slots=True)
class LocateInput:
    """The request as received (raw coordinates kept), echoed in the answer."""

    x: float | None = None
    y: float | None = None
    crs: str | None = None
    accuracy_m: float | None = None
    address: str | None = None
    at: str | None = None

    def to_dict(self) -> dict[str, object]:
        """Return the JSON form: ``address`` and ``at``, or the point's fields."""
        if self.address is not None:
            return {"address": self.address, "at": self.at}
        return {
            "x": self.x,
            "y": self.y,
            "crs": self.crs,
            "accuracy_m": self.accuracy_m,
            "at": self.at,
        }


@dataclass(frozen=True, slots=True)
class AddressAnswer:
    """How an address was understood and matched (standard address → building).

    ``candidates`` are the ranked matches (:class:`gis.address.Match`);
    ``best`` the one located (None: no match, or not shown).
    """

    input: str
    parsed: Mapping[str, str]
    candidates: tuple[Match, ...] = ()
    best: Match | None = None

    def to_dict(self) -> dict[str, object]:
        """Return the JSON form."""
        data: dict[str, object] = {
            "input": self.input,
            "parsed": dict(self.parsed),
            "candidates": [m.to_dict() for m in self.candidates],
        }
        if self.best is not None:
            data["building_key"] = self.best.key
            data["matched"] = self.best.address
            data["score"] = self.best.score
            data["certain"] = self.best.certain
        return data


@dataclass(frozen=True, slots=True)
class LocateAnswer:
    """Where a point (or an address) is, in every layer at once.

    ``lon``/``lat`` (CGCS2000) and ``at`` are None for an address that was
    not located. ``status``: ``ok``, ``outside``, ``ambiguous``,
    ``unmatched`` (an address), ``outside_jurisdiction`` or
    ``before_first_version`` (``at`` earlier than any stored boundary
    version: ``first_version`` says when the first starts, ``message`` why).
    """

    input: LocateInput
    status: str
    layers: Mapping[str, LayerAnswer]
    responsible: tuple[StaffMember, ...] = ()
    lon: float | None = None
    lat: float | None = None
    at: str | None = None
    address: AddressAnswer | None = None
    first_version: str | None = None
    message: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """Return the JSON form (the ``GeocodeAnswer`` schema; key order kept)."""
        layers = {name: layer.to_dict() for name, layer in self.layers.items()}
        responsible = [member.to_dict() for member in self.responsible]
        if self.lon is None:
            data: dict[str, Any] = {"input": self.input.to_dict(), "status": self.status}
            if self.address is not None:
                data["address"] = self.address.to_dict()
            data["layers"] = layers
            data["responsible"] = responsible
            return data
        data = {
            "input": self.input.to_dict(),
            "lon": self.lon,
            "lat": self.lat,
            "crs": "EPSG:4490",
            "at": self.at,
            "status": self.status,
            "layers": layers,
            "responsible": responsible,
        }
        if self.first_version is not None:
            data["first_version"] = self.first_version
        if self.message is not None:
            data["message"] = self.message
        if self.address is not None:
            data["address"] = self.address.to_dict()
        return data

    def outside_jurisdiction(self) -> LocateAnswer:
        """Return the answer for a place outside the caller's jurisdiction: nothing about it.

        The same keys and values whether the place lies in another unit or in
        none: the caller's own input (and, for coordinates, the point it
        converts to), the status, no layers, no people; for an address its
        parsed components only (not where it was found).
        """
        address = self.address
        if address is not None:
            return LocateAnswer(
                input=self.input,
                status=OUTSIDE_JURISDICTION,
                layers={},
                address=AddressAnswer(input=address.input, parsed=address.parsed),
            )
        return LocateAnswer(
            input=self.input,
            status=OUTSIDE_JURISDICTION,
            layers={},
            lon=self.lon,
            lat=self.lat,
            at=self.at,
        )

    def redacted(self, viewer: Viewer) -> LocateAnswer:
        """Cut the answer down to ``viewer``'s jurisdiction.

        A place outside the caller's area answers :meth:`outside_jurisdiction`.
        Inside it, a unit the caller may not see keeps its level but loses
        code, name and distances (status ``restricted``); candidates and
        nearest units it may not see are dropped, people are named only for
        units seen entirely, and other addresses matching are not listed.
        """
        if viewer.unrestricted or (self.layers and viewer.whole.issuperset(self.layers)):
            return self
        if self.lon is None or self.lat is None:
            # An address not located: its parsed form only.
            if self.address is None or not self.address.candidates:
                return self
            return replace(self, address=replace(self.address, candidates=()))
        if not viewer.covers(self.lon, self.lat):
            return self.outside_jurisdiction()
        return self.cut_inside(viewer)

    def cut_inside(self, viewer: Viewer) -> LocateAnswer:
        """Cut an answer whose place ``viewer``'s area is known to hold (see :meth:`redacted`)."""
        if viewer.unrestricted or (self.layers and viewer.whole.issuperset(self.layers)):
            return self
        address = self.address
        if address is not None and address.candidates:
            address = AddressAnswer(address.input, address.parsed, (), address.best)
        return LocateAnswer(
            input=self.input,
            status=self.status,
            layers={name: layer.redacted(name, viewer) for name, layer in self.layers.items()},
            responsible=tuple(
                m for m in self.responsible if viewer.sees_wholly(m.layer, m.unit_code)
            ),
            lon=self.lon,
            lat=self.lat,
            at=self.at,
            address=address,
            first_version=self.first_version,
            message=self.message,
        )
