"""Boundary noise: where two separately digitised layers disagree by a sliver, not by ground.

Two departments digitise the same edge twice — along a road's centre line
and along the walls behind it, or with a shaky hand — and every shared edge
leaves thin slivers of each grid in the neighbouring beat. Such a piece is
*noise*, not a violation, when it is thin (narrower than
:attr:`NoiseTolerance.width_m`) **or** light (under
:attr:`NoiseTolerance.household_share` of the grid's households and under
:attr:`NoiseTolerance.area_share` of its area). A violation needs real ground
on the other side: wide, and with households (or, when households are
known, a real share of the area).

The defaults come from the noise study in ``tests/test_alignment_noise.py``:
the sample city's police layer moved by smooth random displacements of 0.5,
1, 3 and 5 m rms leaves pieces up to ~10 m wide (mean width, 2 x area /
perimeter); at 8 m rms (peaks of ~20 m) up to ~17 m over 20 seeds, and where such a peak
lies across a long straight beat edge on a main road a strip ~15 m wide and
a few hundred metres long takes in the homes along that road (up to ~13 %
of a grid's households). The seeded misalignments are 54 m or more wide and
hold 21 % or more of their grid's area and 22 % or more of its households.
The width threshold (20 m) sits between the two, and is what two honest
drawings of one edge along a main road differ by: the road's centre line
and its red line or the walls behind it (主干路 red lines are 40 m or more).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import shapely
from numpy.typing import NDArray

from gis.alignment._shares import Overlaps, widths_m
from gis.alignment._units import Floats, Indices, lonlat, polygonal

__all__ = ["DEFAULT_NOISE", "NO_NOISE", "Classified", "Noise", "NoiseTolerance", "classify"]

# Sums of separately measured pieces differ from the whole by float error
# (~1e-6 m² for a grid); a remainder this small is arithmetic, not ground.
FLOAT_NOISE_M2 = 1e-3


@dataclass(frozen=True)
class NoiseTolerance:
    """When a piece of ground shared by two units is digitising noise rather than a violation.

    Attributes
    ----------
    width_m : float
        Pieces narrower than this (mean width 2 x area / perimeter of their
        widest polygon, in metres, in the local Gauss-Kruger zone) are noise.
        Default 20 m: half a main road's red-line width, the most two honest
        drawings of one edge differ by (centre line against walls).
    household_share : float
        Pieces holding under this share of the unit's households **and**
        under ``area_share`` of its area are noise. Default 2 %. Without
        households (no weights, or a unit without any) only the width counts.
    area_share : float
        See ``household_share``. Default 15 %.
    """

    width_m: float = 20.0
    household_share: float = 0.02
    area_share: float = 0.15

    def __post_init__(self) -> None:
        for name in ("width_m", "household_share", "area_share"):
            value = getattr(self, name)
            if not np.isfinite(value) or value < 0:
                raise ValueError(f"noise {name} must be a number >= 0, not {value!r}")
        if self.household_share > 1 or self.area_share > 1:
            raise ValueError("noise shares must be at most 1")

    def is_noise(
        self, width: Floats, area_share: Floats, household_share: Floats | None
    ) -> NDArray[np.bool_]:
        """Return which pieces are noise: thin, or light in households and area."""
        thin = width < self.width_m
        if household_share is None:
            return thin
        # Without household counts (no weights) only the width can tell. A
        # unit whose households are known to be none (NaN share: a hospital
        # campus, a park) moves no household, so its area share decides: a
        # wide sliver along its edge is noise, a real part of it is not.
        few = np.nan_to_num(household_share, nan=0.0) < self.household_share
        return thin | (few & (area_share < self.area_share))

    def to_dict(self) -> dict[str, float]:
        """Return the thresholds as plain JSON types."""
        return {
            "width_m": self.width_m,
            "household_share": self.household_share,
            "area_share": self.area_share,
        }


#: The default thresholds (20 m, 2 %, 15 %): what the API and the CLI offer.
DEFAULT_NOISE = NoiseTolerance()

#: Thresholds that make nothing noise (the strict check).
NO_NOISE = NoiseTolerance(width_m=0.0, household_share=0.0, area_share=0.0)


@dataclass(frozen=True)
class Noise:
    """Boundary noise between one pair of units: ground that is not worth a violation.

    Attributes
    ----------
    a_code, b_code : str or None
        The two units (grid and beat, or community and station); ``None``
        for ground in no unit of that layer.
    area_m2 : float
        The noisy ground, in m².
    width_m : float
        Its width: the mean width (2 x area / perimeter) of its widest polygon.
    area_share : float
        Share of the A unit (of the B unit when ``a_code`` is ``None``).
    household_share : float or None
        Share of the A unit's households, when known.
    level : str
        ``units`` (grids and beats) or ``parents`` (communities and stations).
    lon, lat : float or None
        A CGCS2000 point on it.
    """

    a_code: str | None
    b_code: str | None
    area_m2: float
    width_m: float
    area_share: float
    household_share: float | None
    level: str
    lon: float | None
    lat: float | None

    def to_dict(self) -> dict[str, Any]:
        """Return the noise as plain JSON types."""
        return {
            "a_code": self.a_code,
            "b_code": self.b_code,
            "level": self.level,
            "area_m2": round(self.area_m2, 3),
            "width_m": round(self.width_m, 3),
            "area_share": round(self.area_share, 6),
            "household_share": None
            if self.household_share is None or np.isnan(self.household_share)
            else round(self.household_share, 6),
            "lon": self.lon,
            "lat": self.lat,
        }


@dataclass
class Classified:
    """The ground of two layers sorted into real shares, slivers and noise.

    Attributes
    ----------
    rows : ndarray of int
        The pairs that hold real ground (over the tolerances, not noise).
    a_out, b_out : ndarray of float
        Area of each A (B) unit outside every unit of the other layer, m².
    a_out_real, b_out_real : ndarray of bool
        Whether that ground is real.
    noise : list of Noise
        The noisy pairs and uncovered pieces.
    sliver_areas : list of float
        Areas under the sliver tolerances (counted, not listed).
    """

    rows: Indices
    a_out: Floats
    b_out: Floats
    a_out_real: NDArray[np.bool_]
    b_out_real: NDArray[np.bool_]
    noise: list[Noise] = field(default_factory=list)
    sliver_areas: list[float] = field(default_factory=list)


def classify(
    ov: Overlaps,
    *,
    tolerance_share: float,
    tolerance_m2: float,
    noise: NoiseTolerance,
    level: str = "units",
    a_examined: NDArray[np.bool_] | None = None,
    b_examined: NDArray[np.bool_] | None = None,
) -> Classified:
    """Sort the pairs of ``ov`` into real ground, slivers and boundary noise.

    The largest pair of each A unit is always real: a unit is never all noise.
    ``a_examined`` / ``b_examined`` (default: all) are the units whose ground
    outside the other layer is examined: the others' is taken as not real
    (and their noise is not listed).
    """
    share = ov.share
    over = (ov.area >= tolerance_m2) & (share >= tolerance_share)
    slivers = ov.area[~over].tolist()
    first = np.r_[True, ov.ai[1:] != ov.ai[:-1]] if len(ov.ai) else np.zeros(0, bool)
    width = ov.width if ov.width is not None else np.full(len(ov.ai), np.inf)
    noisy = over & ~first & noise.is_noise(width, share, ov.household_share)
    found: list[Noise] = []
    hh_share = ov.household_share
    noisy_rows = np.flatnonzero(noisy)
    where = _points_on(ov.pieces[noisy_rows])
    for p, (lon, lat) in zip(noisy_rows.tolist(), where, strict=True):
        found.append(
            Noise(
                a_code=str(ov.a.codes[ov.ai[p]]),
                b_code=str(ov.b.codes[ov.bi[p]]),
                area_m2=float(ov.area[p]),
                width_m=float(width[p]),
                area_share=float(share[p]),
                household_share=None if hh_share is None else float(hh_share[p]),
                level=level,
                lon=lon,
                lat=lat,
            )
        )
    rows = np.flatnonzero(over & ~noisy)

    a_out = ov.a_uncovered_m2()
    a_ratio = _div(a_out, ov.a_area)
    a_over = (a_out >= tolerance_m2) & (a_ratio >= tolerance_share)
    slivers += a_out[~a_over & (a_out > FLOAT_NOISE_M2)].tolist()
    a_hh = None
    if ov.households is not None and ov.a_households is not None:
        inside = np.bincount(ov.ai, weights=ov.households, minlength=len(ov.a))
        a_hh = np.full(len(ov.a), np.nan)
        np.divide(ov.a_households - inside, ov.a_households, out=a_hh, where=ov.a_households > 0)
    a_look = a_over if a_examined is None else a_over & a_examined
    a_real = _uncovered(ov, a_look, a_out, a_ratio, a_hh, noise, found, level=level, of_a=True)

    b_out = ov.b_uncovered_m2()
    b_ratio = _div(b_out, ov.b_area)
    b_over = (b_out >= tolerance_m2) & (b_ratio >= tolerance_share)
    slivers += b_out[~b_over & (b_out > FLOAT_NOISE_M2)].tolist()
    # Ground in no A unit holds none of A's households: it counts by area.
    b_hh = None if a_hh is None else np.zeros(len(ov.b))
    b_look = b_over if b_examined is None else b_over & b_examined
    b_real = _uncovered(ov, b_look, b_out, b_ratio, b_hh, noise, found, level=level, of_a=False)
    found.sort(key=lambda n: (n.level, n.a_code or "", n.b_code or ""))
    return Classified(rows, a_out, b_out, a_real, b_real, found, slivers)


def _uncovered(
    ov: Overlaps,
    over: NDArray[np.bool_],
    out_m2: Floats,
    ratio: Floats,
    hh_share: Floats | None,
    noise: NoiseTolerance,
    found: list[Noise],
    *,
    level: str,
    of_a: bool,
) -> NDArray[np.bool_]:
    """Which units' uncovered ground is real; the noisy ones are added to ``found``."""
    real = over.copy()
    units = np.flatnonzero(over)
    if not len(units):
        return real
    layer, keys = (ov.a, ov.ai) if of_a else (ov.b, ov.bi)
    ground = np.empty(len(units), dtype=object)
    for j, u in enumerate(units.tolist()):
        held = ov.pieces[keys == u]

        def rest(unit: shapely.Geometry = layer.geoms[u], held: Any = held) -> shapely.Geometry:
            return polygonal(
                shapely.difference(unit, shapely.union_all(held)) if len(held) else unit
            )

        ground[j] = rest() if ov.reuse is None else ov.reuse.ground(layer.geoms[u], held, rest)
    reuse = ov.reuse
    projected = ov.metric.project(ground) if reuse is None else reuse.project(ov.metric, ground)
    width = widths_m(projected)
    shares = None if hh_share is None else hh_share[units]
    noisy = noise.is_noise(width, ratio[units], shares)
    real[units[noisy]] = False
    for j in np.flatnonzero(noisy).tolist():
        u = int(units[j])
        lon, lat = lonlat(ground[j])
        found.append(
            Noise(
                a_code=str(layer.codes[u]) if of_a else None,
                b_code=None if of_a else str(layer.codes[u]),
                area_m2=float(out_m2[u]),
                width_m=float(width[j]),
                area_share=float(ratio[u]),
                household_share=None if shares is None else float(shares[j]),
                level=level,
                lon=lon,
                lat=lat,
            )
        )
    return real


def _points_on(pieces: NDArray[np.object_]) -> list[tuple[float | None, float | None]]:
    """Return a lon/lat on the largest polygon of each piece (vectorised: noise is many)."""
    out: list[tuple[float | None, float | None]] = [(None, None)] * len(pieces)
    if not len(pieces):
        return out
    parts, owner = shapely.get_parts(pieces, return_index=True)
    keep = shapely.get_type_id(parts) == 3
    parts, owner = parts[keep], owner[keep]
    order = np.lexsort((-shapely.area(parts), owner))
    parts, owner = parts[order], owner[order]
    first = np.r_[True, owner[1:] != owner[:-1]] if len(owner) else np.zeros(0, bool)
    points = shapely.point_on_surface(parts[first])
    xs, ys = np.round(shapely.get_x(points), 7), np.round(shapely.get_y(points), 7)
    for i, x, y in zip(owner[first].tolist(), xs.tolist(), ys.tolist(), strict=True):
        out[i] = (x, y)
    return out


def _div(num: Floats, den: Floats) -> Floats:
    out = np.zeros(len(num))
    np.divide(num, den, out=out, where=den > 0)
    return out
