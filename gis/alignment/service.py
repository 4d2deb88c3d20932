"""Same-grid (同格) service: check two stored layers against each other, apply the fix.

Thin glue between the registry and :mod:`gis.alignment`: it loads the two
levels (and their parent levels) valid at a time, takes household counts from
the units' attributes as weights, and, when asked, stores the proposal as a
new dated version of layer B (its parent level first, so that the new units
validate against their new parents).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

import geopandas as gpd
import pandas as pd
import shapely

from gis.access.jurisdiction import Jurisdiction
from gis.access.principal import SYSTEM, Principal
from gis.alignment import (
    DEFAULT_NOISE,
    AlignmentReport,
    NoiseTolerance,
    Proposal,
    check_alignment,
    propose_alignment,
)
from gis.alignment._stale import stale_edges, stale_references
from gis.errors import ForbiddenError, InputError, StaleVersionError
from gis.layers import LayerSpec
from gis.repository import Database
from gis.times import isoformat_local, parse_time
from gis.units import ImportResult, import_units, layer_spec
from gis.validate import ValidationReport

_log = logging.getLogger(__name__)

__all__ = [
    "AlignmentState",
    "LayerLevel",
    "align",
    "alignment_report",
    "apply_alignment",
    "apply_reviewed",
    "noise_tolerance",
    "parse_layer_level",
]

_WEIGHT = "households"


@dataclass(frozen=True)
class LayerLevel:
    """A ``layer:level`` reference such as ``governance:grid``."""

    layer: str
    level: str

    def __str__(self) -> str:
        return f"{self.layer}:{self.level}"


@dataclass
class AlignmentState:
    """The loaded layers and the alignment report between them."""

    a: LayerLevel
    b: LayerLevel
    a_units: gpd.GeoDataFrame
    b_units: gpd.GeoDataFrame
    a_parents: gpd.GeoDataFrame | None
    b_parents: gpd.GeoDataFrame | None
    b_parent_level: str | None
    report: AlignmentReport
    at: datetime
    weights: gpd.GeoDataFrame | str | None = None
    noise: NoiseTolerance | None = None


def noise_tolerance(
    *,
    width_m: float = DEFAULT_NOISE.width_m,
    household_share: float = DEFAULT_NOISE.household_share,
    area_share: float = DEFAULT_NOISE.area_share,
) -> NoiseTolerance:
    """Build boundary-noise thresholds from user input (a clear error naming the bad one).

    Examples
    --------
    >>> noise_tolerance(width_m=5).width_m
    5.0
    """
    for name, value, top in (
        ("noise_width_m", width_m, None),
        ("noise_household_share", household_share, 1.0),
        ("noise_area_share", area_share, 1.0),
    ):
        if not isinstance(value, int | float) or value != value or value < 0:
            raise InputError(f"{name} must be a number >= 0, not {value!r}", field=name)
        if top is not None and value > top:
            raise InputError(f"{name} is a share: at most {top}, not {value!r}", field=name)
        if value == float("inf"):
            raise InputError(f"{name} must be finite", field=name)
    return NoiseTolerance(
        width_m=float(width_m), household_share=float(household_share), area_share=float(area_share)
    )


def parse_layer_level(text: str) -> LayerLevel:
    """Parse ``layer:level``.

    Examples
    --------
    >>> parse_layer_level("police:beat")
    LayerLevel(layer='police', level='beat')
    """
    layer, _, level = text.partition(":")
    if not layer or not level:
        raise InputError(f"{text!r} must be LAYER:LEVEL, e.g. governance:grid", field="layer")
    return LayerLevel(layer, level)


def align(
    db: Database,
    *,
    a: LayerLevel | str = "governance:grid",
    b: LayerLevel | str = "police:beat",
    at: str | date | datetime | None = None,
    noise: NoiseTolerance | None = None,
) -> AlignmentState:
    """Check that every unit of ``a`` lies in one unit of ``b`` (and parents nest too).

    ``noise`` sets the boundary-noise thresholds (:class:`NoiseTolerance`).
    Units of ``b`` whose ``attributes`` name codes of ``a`` or its parents
    (``grid_code(s)``, ``community_code(s)``) that are not valid at ``at``
    are listed in ``report.stale``, with when the code was retired.
    """
    a_ref = a if isinstance(a, LayerLevel) else parse_layer_level(a)
    b_ref = b if isinstance(b, LayerLevel) else parse_layer_level(b)
    when = parse_time(at, field="at")
    for ref in (a_ref, b_ref):  # both names first: a typo is not "no units"
        _level_of(db, ref)
    a_units, a_parents, _ = _load(db, a_ref, when)
    b_units, b_parents, b_parent_level = _load(db, b_ref, when)
    weights = _weights(db, a_ref, a_units, when)
    report = check_alignment(
        a_units,
        b_units,
        a_parents=a_parents,
        b_parents=b_parents,
        weights=weights,
        weight_column=_WEIGHT if isinstance(weights, gpd.GeoDataFrame) else None,
        noise=noise,
    )
    report.stale = _stale(db, a_ref, b_units, a_units, a_parents, when)
    return AlignmentState(
        a_ref,
        b_ref,
        a_units,
        b_units,
        a_parents,
        b_parents,
        b_parent_level,
        report,
        when,
        weights,
        report.noise_tolerance,
    )


def alignment_report(
    db: Database,
    *,
    a: LayerLevel | str = "governance:grid",
    b: LayerLevel | str = "police:beat",
    at: str | date | datetime | None = None,
    proposal: bool = False,
    jurisdiction: Jurisdiction | None = None,
    noise: NoiseTolerance | None = None,
) -> dict[str, Any]:
    """Return the JSON report of :func:`align` (and the proposal, when asked), as one may see it.

    With a restricted ``jurisdiction`` only violations, noise and stale
    references whose units it may all see are reported, with messages
    rebuilt from those codes; no city-wide counts, slivers or proposal (they
    describe other units).
    """
    state = align(db, a=a, b=b, at=at, noise=noise)
    body = state.report.to_dict()
    keys = ("aligned", "counts", "violations", "slivers", "noise", "datum_offset", "stale")
    result = {key: body.get(key) for key in keys}
    if jurisdiction is not None and not jurisdiction.unrestricted:
        return _restricted(result, jurisdiction, state.a.layer, state.b.layer)
    if proposal and (not state.report.aligned or state.report.noise):
        result["proposal"] = propose(state).to_dict()
    return result


def _restricted(result: dict[str, Any], seen: Jurisdiction, a: str, b: str) -> dict[str, Any]:
    violations = [
        v
        for v in result["violations"]
        if all(seen.sees(a, code) for code in v["a_codes"])
        and all(seen.sees(b, code) for code in v["b_codes"])
    ]
    for v in violations:
        v["a_parent_codes"] = [c for c in v["a_parent_codes"] if seen.sees(a, c)]
        v["b_parent_codes"] = [c for c in v["b_parent_codes"] if seen.sees(b, c)]
        v["codes"] = [c for c in v["codes"] if seen.sees(a, c) or seen.sees(b, c)]
        # The full message may name neighbouring units: rebuild it from what is visible.
        v["message"] = f"{v['kind']}: {', '.join(v['a_codes'] + v['b_codes'])}"
    counts: dict[str, int] = {}
    for violation in violations:
        counts[violation["kind"]] = counts.get(violation["kind"], 0) + 1
    noise = [
        n
        for n in result["noise"] or []
        if n["level"] == "units"
        and n["a_code"] is not None
        and n["b_code"] is not None
        and seen.sees(a, n["a_code"])
        and seen.sees(b, n["b_code"])
    ]
    stale = [s for s in result["stale"] or [] if seen.sees(b, s["b_code"])]
    return {
        "aligned": not violations and not stale and result["datum_offset"] is None,
        "counts": counts,
        "violations": violations,
        "slivers": None,
        "noise": noise,
        "datum_offset": result["datum_offset"],
        "stale": stale,
    }


def propose(state: AlignmentState) -> Proposal:
    """Return the least change of layer B that restores nesting.

    Never fails on data that passed import: when no proposal can be made,
    the answer says why (``unresolved``) and is not ``aligned``.
    """
    try:
        return propose_alignment(
            state.a_units,
            state.b_units,
            a_parents=state.a_parents,
            b_parents=state.b_parents,
            weights=state.weights,
            weight_column=_WEIGHT if isinstance(state.weights, gpd.GeoDataFrame) else None,
            noise=state.noise,
        )
    except (ValueError, KeyError, IndexError, shapely.errors.GEOSException) as error:
        _log.exception("no same-grid proposal for %s in %s", state.a, state.b)
        return Proposal(
            b_units=state.b_units.iloc[0:0],
            moves=[],
            impact=pd.DataFrame(),
            report=state.report,
            validation=ValidationReport(unit_count=0),
            unresolved=[
                f"no proposal could be computed ({type(error).__name__}: "
                f"{str(error).splitlines()[0][:200]}); the report above still holds"
            ],
        )


def apply_alignment(
    db: Database,
    *,
    state: AlignmentState,
    proposal: Proposal,
    valid_from: str | date | datetime,
    actor: Principal = SYSTEM,
) -> list[ImportResult]:
    """Store the proposal as a new dated version of layer B (parents first).

    Raises
    ------
    InputError
        When the proposal does not restore alignment (nothing is stored).
    """
    if not proposal.aligned:
        raise InputError(
            "the proposal does not restore alignment: "
            + ("; ".join(proposal.unresolved) or "see its report"),
            field="proposal",
        )
    if proposal.b_parents is not None and state.b_parent_level is not None:
        # Stations and beats change together, in one transaction.
        return [
            import_units(
                db,
                units=_unit_frame(proposal.b_parents),
                layer=state.b.layer,
                level=state.b_parent_level,
                source=f"same-grid proposal {state.a}",
                valid_from=valid_from,
                levels_below={state.b.level: _unit_frame(proposal.b_units)},
                actor=actor,
            )
        ]
    return [
        import_units(
            db,
            units=_unit_frame(proposal.b_units),
            layer=state.b.layer,
            level=state.b.level,
            source=f"same-grid proposal {state.a}",
            valid_from=valid_from,
            actor=actor,
        )
    ]


def apply_reviewed(
    db: Database,
    *,
    a: LayerLevel | str,
    b: LayerLevel | str,
    valid_from: str | date | datetime,
    moves: list[str],
    noise: NoiseTolerance | None = None,
    actor: Principal = SYSTEM,
    jurisdiction: Jurisdiction | None = None,
) -> dict[str, Any]:
    """Apply the proposal a reviewer saw: recompute it now, store it if it is still the same.

    Parameters
    ----------
    a, b : LayerLevel or str
        The two levels, as for :func:`align`.
    valid_from : str, date or datetime
        When the new version of layer B takes effect.
    moves : list of str
        The codes of the A units the reviewed proposal moved (its ``moves``'
        ``a_code``): when today's proposal moves others, nothing is stored.
    noise : NoiseTolerance, optional
        The boundary-noise thresholds the report was made with.
    actor : Principal
        Who applies it (audited with the import).
    jurisdiction : Jurisdiction, optional
        The caller's: the proposal rewrites layer B everywhere, so only an
        unrestricted caller may apply it.

    Returns
    -------
    dict
        ``applied``, ``proposal`` (as :meth:`Proposal.to_dict`) and
        ``imports`` (the stored versions, as ``ImportResult.to_dict``).

    Raises
    ------
    ForbiddenError
        For a caller bound to some units.
    StaleVersionError
        When the layers changed and the proposal now moves other units.
    InputError
        When there is nothing to apply, or the proposal does not restore
        alignment (nothing is stored).
    """
    if jurisdiction is not None and not jurisdiction.unrestricted:
        raise ForbiddenError(
            "a same-grid proposal rewrites the whole layer: only a caller bound to no units "
            "may apply it"
        )
    state = align(db, a=a, b=b, noise=noise)
    if state.report.aligned and not state.report.noise:
        raise InputError(f"{state.a} already nests in {state.b}: nothing to apply", field="moves")
    plan = propose(state)
    now = sorted(m.a_code for m in plan.moves)
    if now != sorted(moves):
        raise StaleVersionError(
            "the layers changed since the proposal was shown: it now moves "
            f"{', '.join(now) or 'nothing'}; review it again",
            codes=sorted(set(now) ^ set(moves)),
        )
    results = apply_alignment(db, state=state, proposal=plan, valid_from=valid_from, actor=actor)
    return {
        "applied": True,
        "proposal": plan.to_dict(),
        "imports": [result.to_dict() for result in results],
    }


def _level_of(db: Database, ref: LayerLevel) -> LayerSpec:
    spec = layer_spec(db, layer=ref.layer)
    try:
        spec.level(ref.level)
    except KeyError:
        names = ", ".join(lv.name for lv in spec.levels)
        raise InputError(
            f"layer {ref.layer!r} has no level {ref.level!r} ({names})", field="level"
        ) from None
    return spec


def _load(
    db: Database, ref: LayerLevel, when: datetime
) -> tuple[gpd.GeoDataFrame, gpd.GeoDataFrame | None, str | None]:
    spec = _level_of(db, ref)
    with db.reader() as repo:
        units = repo.units_frame(layer=ref.layer, level=ref.level, at=when)
        parent = spec.parent_level(ref.level)
        parents = repo.units_frame(layer=ref.layer, level=parent.name, at=when) if parent else None
    if units.empty:
        raise InputError(f"{ref} has no units at {isoformat_local(when)}", field="layer")
    return _with_weights(units), _with_weights(parents), parent.name if parent else None


def _stale(
    db: Database,
    ref: LayerLevel,
    b_units: gpd.GeoDataFrame,
    a_units: gpd.GeoDataFrame,
    a_parents: gpd.GeoDataFrame | None,
    when: datetime,
) -> list[dict[str, object]]:
    valid = set(a_units["code"].astype(str))
    if a_parents is not None:
        valid |= set(a_parents["code"].astype(str))
    with db.reader() as repo:
        own = repo.units_frame(layer=ref.layer, level=ref.level, all_versions=True)
        parent = repo.layer_spec(name=ref.layer).parent_level(ref.level)
        above = (
            repo.units_frame(layer=ref.layer, level=parent.name, all_versions=True)
            if parent
            else own.iloc[0:0]
        )
    history = pd.concat([own, above], ignore_index=True)
    found = stale_references(b_units, valid=valid, history=history, at=when)
    # Edges of grids that no longer exist, which B still follows.
    return found + stale_edges(b_units, a_units=a_units, history=own, at=when)


def _weights(
    db: Database, ref: LayerLevel, units: gpd.GeoDataFrame, when: datetime
) -> gpd.GeoDataFrame | str | None:
    # Households decide where a split grid goes. Best: the level below (micro-
    # grids) counted where they lie; else the grid's own count spread by area.
    with db.reader() as repo:
        child = repo.layer_spec(name=ref.layer).child_level(ref.level)
        below = repo.units_frame(layer=ref.layer, level=child.name, at=when) if child else None
    below = _with_weights(below)
    if below is not None and _WEIGHT in below:
        return below[[_WEIGHT, below.geometry.name]]
    return _WEIGHT if _WEIGHT in units else None


def _with_weights(frame: gpd.GeoDataFrame | None) -> gpd.GeoDataFrame | None:
    if frame is None or frame.empty:
        return None
    counts = frame["attributes"].map(lambda a: (a or {}).get(_WEIGHT))
    if counts.notna().all():
        frame = frame.assign(**{_WEIGHT: pd.to_numeric(counts)})
    return frame


def _unit_frame(frame: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    columns = ["code", "name", "parent_code", "kind", "attributes"]
    out = frame[[c for c in columns if c in frame] + [frame.geometry.name]].copy()
    for column in columns:
        if column not in out:
            out[column] = None
    return gpd.GeoDataFrame(out, geometry=frame.geometry.name, crs=frame.crs)
