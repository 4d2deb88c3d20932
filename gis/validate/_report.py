"""Problems, reports and tolerances shared by every validation rule."""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import shapely
from pyproj import CRS
from shapely.geometry.base import BaseGeometry

from gis.crs import STORAGE_CRS, transformer

__all__ = ["RULES", "Problem", "Tolerances", "ValidationReport"]

#: Every rule a problem can name (the ``tongge check`` JSON contract).
RULES = (
    "invalid_geometry",
    "overlap",
    "gap",
    "outside_parent",
    "parent_not_covered",
    "duplicate_code",
    "code_not_under_parent",
    "unknown_parent",
    "missing_code",
    "crs_missing",
    "wrong_geometry_type",
    "crs_mismatch",
    "datum_offset",
    "children_not_nested",
)


@dataclass(frozen=True)
class Tolerances:
    """How small a discrepancy may be before it is a problem rather than a warning.

    A discrepancy (overlap, gap, part outside a parent, part of a parent not
    covered) is a *sliver* when its area is under ``sliver_area_m2`` **or**
    its mean width (2 x area / perimeter) is under ``sliver_width_m``. Slivers
    are reported as warnings; nothing is ever dropped silently.

    Attributes
    ----------
    sliver_area_m2 : float
        Default 1 m²: well under one parking space, far over float noise.
    sliver_width_m : float
        Default 0.05 m: thinner than survey accuracy of boundary data.
    """

    sliver_area_m2: float = 1.0
    sliver_width_m: float = 0.05

    def is_sliver(self, geometry: BaseGeometry) -> bool:
        """Return whether a projected (metre) geometry is below the tolerances."""
        area = float(geometry.area)
        if area < self.sliver_area_m2:
            return True
        perimeter = float(geometry.length)
        return perimeter > 0 and 2.0 * area / perimeter < self.sliver_width_m


@dataclass(frozen=True)
class Problem:
    """One thing wrong with the data, located and measured.

    Attributes
    ----------
    rule : str
        One of :data:`RULES` (warnings may also use ``code_format``,
        ``sliver`` or ``no_children``).
    codes : tuple of str
        The units involved, most relevant first.
    lon, lat : float or None
        A point on the problem in CGCS2000 degrees.
    area_m2 : float or None
        Area of the problem in m², computed in a projected CRS.
    message : str
        What is wrong, for people.
    geometry : shapely geometry or None
        The problem's shape in EPSG:4490, for maps (not part of the JSON).
    """

    rule: str
    codes: tuple[str, ...]
    lon: float | None
    lat: float | None
    area_m2: float | None
    message: str
    geometry: BaseGeometry | None = field(default=None, compare=False, repr=False)

    def to_dict(self) -> dict[str, Any]:
        """Return the JSON form used by ``tongge check --format json``."""
        return {
            "rule": self.rule,
            "codes": list(self.codes),
            "lon": self.lon,
            "lat": self.lat,
            "area_m2": self.area_m2,
            "message": self.message,
        }


@dataclass
class ValidationReport:
    """The outcome of validating a set of units: problems and warnings."""

    problems: list[Problem] = field(default_factory=list)
    warnings: list[Problem] = field(default_factory=list)
    unit_count: int = 0

    @property
    def ok(self) -> bool:
        """Whether there is no problem (warnings do not count)."""
        return not self.problems

    def rules(self) -> set[str]:
        """Return the rules that have at least one problem."""
        return {problem.rule for problem in self.problems}

    def extend(self, other: ValidationReport) -> None:
        """Add the problems and warnings of another report."""
        self.problems.extend(other.problems)
        self.warnings.extend(other.warnings)

    def to_dict(self) -> dict[str, Any]:
        """Return ``{"ok", "problems", "warnings", "unit_count"}`` as plain JSON types."""
        return {
            "ok": self.ok,
            "unit_count": self.unit_count,
            "problems": [problem.to_dict() for problem in self.problems],
            "warnings": [warning.to_dict() for warning in self.warnings],
        }


class Locator:
    """Measures storage-CRS geometries in metres and turns them into located problems.

    Topology is computed in EPSG:4490, where boundaries are defined and stored
    (a straight edge in degrees is not straight once projected); only the
    resulting pieces are projected, to measure them.
    """

    def __init__(self, projected: CRS, tolerances: Tolerances) -> None:
        self.projected = projected
        self.tolerances = tolerances
        self._to_projected = transformer(STORAGE_CRS, projected)
        self.slivers: dict[tuple[str, tuple[str, ...]], list[BaseGeometry]] = {}

    def project(self, geometry: BaseGeometry) -> BaseGeometry:
        """Project an EPSG:4490 geometry to the local metre CRS."""
        return shapely.transform(
            geometry, lambda xy: np.column_stack(self._to_projected.transform(xy[:, 0], xy[:, 1]))
        )

    def area(self, geometry: BaseGeometry) -> float:
        """Area in m² of an EPSG:4490 geometry."""
        return float(shapely.area(self.project(geometry))) if not geometry.is_empty else 0.0

    def is_sliver(self, geometry: BaseGeometry) -> bool:
        """Whether an EPSG:4490 geometry is below the tolerances."""
        return self.tolerances.is_sliver(self.project(geometry))

    def problem(
        self,
        rule: str,
        codes: Iterable[str],
        geometry: BaseGeometry,
        message: str,
        *,
        measure: bool = True,
    ) -> Problem:
        """Build a problem located at a point on ``geometry`` (EPSG:4490)."""
        point = shapely.point_on_surface(geometry) if not geometry.is_empty else None
        lon, lat = (round(point.x, 7), round(point.y, 7)) if point is not None else (None, None)
        area = round(self.area(geometry), 3) if measure else None
        return Problem(
            rule=rule,
            codes=tuple(codes),
            lon=lon,
            lat=lat,
            area_m2=area,
            message=message,
            geometry=geometry,
        )


def add_discrepancy(
    report: ValidationReport,
    locator: Locator,
    rule: str,
    codes: Sequence[str],
    geometry: BaseGeometry,
    message: str,
    *,
    sliver_key: Sequence[str] | None = None,
) -> None:
    """Record an areal discrepancy: a problem, or a sliver kept for a grouped warning.

    Slivers are grouped per rule and ``sliver_key`` (default ``codes``) so that
    thousands of float-noise fragments along one boundary become one warning.
    """
    if geometry.is_empty or geometry.area <= 0:
        return
    if locator.is_sliver(geometry):
        key = (rule, tuple(sliver_key if sliver_key is not None else codes))
        locator.slivers.setdefault(key, []).extend(shapely.get_parts(geometry))
    else:
        report.problems.append(locator.problem(rule, codes, geometry, message))


def flush_slivers(report: ValidationReport, locator: Locator) -> None:
    """Turn the grouped slivers into one warning per rule and units."""
    for (rule, codes), parts in sorted(locator.slivers.items()):
        geometry = shapely.multipolygons(parts)
        measured = locator.project(geometry)
        area = float(shapely.area(measured))
        width = 2.0 * area / float(shapely.length(measured)) if area else math.nan
        warning = locator.problem(
            rule,
            codes,
            geometry,
            f"{len(parts)} sliver(s) under the tolerance, {area:.3g} m² in all, mean width "
            f"{width:.2g} m ({rule.replace('_', ' ')} of {', '.join(map(repr, codes))})",
        )
        report.warnings.append(warning)
    locator.slivers.clear()
