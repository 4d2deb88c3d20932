"""Importing a level as a new dated version, keeping the whole layer consistent.

One pipeline for every boundary change that arrives as data (a file, a
proposal): the steps run in this order, each once.

1. **Read** (files only): declared fields; our own export columns dropped;
   other columns are attributes only with ``keep_attributes``.
2. **Snapshot** (a read transaction): the layer's levels at ``valid_from``,
   the change counters, every code each level ever used.
3. **Plausibility**: a file far from the layer (or its parents) is a CRS
   mix-up (``crs_mismatch``), not hundreds of overlaps.
4. **Scope**: the whole level, the parents the file covers, or (``partial``)
   exactly the stored units the file names, whose union it must equal.
5. **Validate** against the parents and the units that stay; refuse on any
   problem. Slivers are repaired on request (``repair``).
6. **Only what changed**: a unit equal to its stored version after
   normalisation (coordinates within 1e-9°, ~0.1 mm) keeps it exactly.
7. **Node** the level's new state: shared edges bit-identical.
8. **Cascade**: each level below must nest in the new state; refuse
   (``children_not_nested``) or, with ``cascade``, cut children along the new
   edges (:func:`gis.coverage.cascade_children`), level by level down.
9. **Places**: the buildings whose unit changes at the lowest level, with
   their households (the re-assignment diff).
10. **Write** (a short write transaction): re-check the counters (else start
    again from 2), store every touched level, the moves and the audit entry,
    all or nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from gis.access.audit import append_audit
from gis.access.principal import SYSTEM, Principal
from gis.assign import assign_buildings, diff
from gis.coverage import CascadeMode, NodingFix, cascade_children, node_level
from gis.crs import STORAGE_CRS, CoordinateSystem, local_projected_crs
from gis.errors import ConflictError, InputError, NotFoundError, ValidationFailedError
from gis.io import FieldMap, read_units
from gis.layers import BUILTIN_LAYERS, LayerSpec, LevelSpec
from gis.repository import Database, ImportSummary, Repository
from gis.times import TimeLike, isoformat_local, parse_time
from gis.types import Progress, Step
from gis.unitframe import merge_multipart_units
from gis.units._repair import Repair, repair_slivers
from gis.validate import Problem, Tolerances, ValidationReport, validate_units
from gis.validate._coverage import same_shape
from gis.validate._report import Locator

__all__ = ["MOVE_COLUMNS", "ImportResult", "import_file", "import_units", "mismatch_report"]



#: Columns of the re-assignment diff (one row per building that changes unit).
MOVE_COLUMNS = [
    "key",
    "level",
    "from_unit",
    "to_unit",
    "changed_level",
    "from_code",
    "to_code",
    "households",
    "persons",
]
#: Columns :func:`gis.io.write_units` adds that are bookkeeping, not attributes.
EXPORT_COLUMNS = ("layer", "level", "valid_from", "valid_to")
_METRES_PER_DEGREE = 111_320.0
_WRITE_ATTEMPTS = 3
#: A file further than this from the layer or its parents is in another CRS.
_PLAUSIBLE_DISTANCE_M = 20_000.0


@dataclass
class ImportResult:
    """What an import did (or, with ``dry_run``, would do).

    Attributes
    ----------
    summary : ImportSummary
        The imported level: created, updated, retired, unchanged codes.
    report : ValidationReport
        Warnings (the import had no problems, or it was refused).
    repairs : list of Repair
        Slivers fixed on request.
    fixes : list of NodingFix
        Units whose edges were noded to match their neighbours.
    cascaded : list of ImportSummary
        Every level below that changed to follow the new edges.
    moves : DataFrame
        Buildings whose unit changes (:data:`MOVE_COLUMNS`), all of them.
    ignored_columns : list of str
        File columns not stored (pass ``keep_attributes`` to keep them).
    dry_run : bool
        Nothing was written.
    """

    summary: ImportSummary
    report: ValidationReport
    repairs: list[Repair] = field(default_factory=list)
    fixes: list[NodingFix] = field(default_factory=list)
    cascaded: list[ImportSummary] = field(default_factory=list)
    moves: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=MOVE_COLUMNS))
    ignored_columns: list[str] = field(default_factory=list)
    dry_run: bool = False

    @property
    def versions(self) -> int:
        """New unit versions stored (created + updated, every level)."""
        return sum(len(s.created) + len(s.updated) for s in [self.summary, *self.cascaded])

    def to_dict(self) -> dict[str, Any]:
        """Return the JSON form (every move, every fix)."""
        return {
            "layer": self.summary.layer,
            "level": self.summary.level,
            "valid_from": self.summary.valid_from.isoformat(),
            "dry_run": self.dry_run,
            **self.summary.counts(),
            "created_codes": self.summary.created,
            "updated_codes": self.summary.updated,
            "retired_codes": self.summary.retired,
            "cascaded": [
                {
                    "level": s.level,
                    **s.counts(),
                    "created_codes": s.created,
                    "updated_codes": s.updated,
                    "retired_codes": s.retired,
                }
                for s in self.cascaded
            ],
            "moved_buildings": len(self.moves),
            "moved_households": int(self.moves["households"].sum()) if len(self.moves) else 0,
            "moves": _records(self.moves),
            "fixes": [vars(f) for f in self.fixes],
            "repairs": [vars(r) for r in self.repairs],
            "ignored_columns": self.ignored_columns,
            "warnings": [w.to_dict() for w in self.report.warnings],
        }


def import_file(
    db: Database,
    *,
    path: str | Path,
    layer: str,
    level: str,
    fields: FieldMap | None = None,
    crs: str | CoordinateSystem | None = None,
    valid_from: TimeLike = None,
    repair: bool = False,
    cascade: CascadeMode | None = None,
    partial: bool = False,
    keep_attributes: bool = False,
    dry_run: bool = False,
    tolerances: Tolerances | None = None,
    step: Step | None = None,
    on_progress: Progress | None = None,
    actor: Principal = SYSTEM,
    label: str | None = None,
    encoding: str | None = None,
) -> ImportResult:
    """Validate a file against the stored layer and store it as a new version.

    All or nothing: when the data has problems, :class:`ValidationFailedError`
    carries the report and nothing is written. Columns other than the code,
    name, parent and kind are not stored unless ``keep_attributes`` (one
    warning lists them); the stored attributes of each unit are kept.
    ``encoding`` is the text encoding of a CSV or Shapefile (default: found
    from the bytes; an ``encoding`` warning says which when not UTF-8). See
    :func:`import_units` for the rest.
    """
    try:
        units = read_units(path, fields=fields, crs=crs, label=label, encoding=encoding)
    except InputError as error:
        if error.rule != "crs_mismatch":
            raise
        raise ValidationFailedError(
            f"{label or path}: {error.message}", report=mismatch_report(error)
        ) from None
    units, ignored = _attributes_policy(units, keep=keep_attributes)
    result = import_units(
        db,
        units=units,
        layer=layer,
        level=level,
        source=label or str(path),
        valid_from=valid_from,
        repair=repair,
        cascade=cascade,
        partial=partial,
        keep_attributes=keep_attributes,
        dry_run=dry_run,
        tolerances=tolerances,
        step=step,
        on_progress=on_progress,
        actor=actor,
    )
    result.ignored_columns = ignored
    note = encoding_note(units)
    if note is not None:
        result.report.warnings.append(note)
    if ignored:
        result.report.warnings.append(
            Problem(
                "ignored_columns",
                (),
                None,
                None,
                None,
                f"columns not stored: {', '.join(ignored[:20])} (they are not code, name, "
                "parent or kind; pass --keep-attributes to store them as attributes)",
            )
        )
    return result


def encoding_note(frame: pd.DataFrame) -> Problem | None:
    """Return the ``encoding`` warning saying how the file's text was read, when not UTF-8."""
    text = frame.attrs.get("encoding")
    if text is None or not text.notable:
        return None
    return Problem("encoding", (), None, None, None, f"text read as {text.describe()}")


def import_units(
    db: Database,
    *,
    units: gpd.GeoDataFrame,
    layer: str,
    level: str,
    source: str,
    valid_from: TimeLike = None,
    repair: bool = False,
    cascade: CascadeMode | None = None,
    partial: bool = False,
    keep_attributes: bool = True,
    dry_run: bool = False,
    levels_below: Mapping[str, gpd.GeoDataFrame] | None = None,
    tolerances: Tolerances | None = None,
    step: Step | None = None,
    on_progress: Progress | None = None,
    actor: Principal = SYSTEM,
    precondition: Callable[[Repository], None] | None = None,
    on_written: Callable[[Repository, ImportResult], None] | None = None,
    exact: bool = False,
) -> ImportResult:
    """Store a unit frame as the state of a level from ``valid_from`` on.

    Parameters
    ----------
    units : GeoDataFrame
        ``code``, ``name``, ``parent_code``, ``kind``, ``attributes`` and
        geometry, in EPSG:4490.
    cascade : {"new", "merge"}, optional
        What happens to units of the levels below that the new edges cut:
        refused (default, rule ``children_not_nested``), cut with the moved
        part becoming a new unit of the receiving parent (``new``) or joining
        its neighbouring unit there (``merge``).
    partial : bool
        ``units`` replace only the stored units with the same codes; their
        union must equal those units' union.
    keep_attributes : bool
        Store ``units``' attributes; otherwise each unit keeps its stored ones.
    dry_run : bool
        Do everything but write (an impact preview).
    levels_below : mapping of level name to GeoDataFrame, optional
        The new state of levels below, given whole instead of cascaded
        (validated against the new parents; all stored in one transaction).
    precondition : callable, optional
        Called with the repository inside the write transaction, the layer
        locked, before anything is written: it raises to refuse (an edit
        re-checks that the unit versions it was computed on are current).
    exact : bool
        Store geometries exactly as given: a unit differing from its stored
        version only by vertices on straight edges is a change too (an edit's
        revert restores the very vertices).
    on_written : callable, optional
        Called with the repository and the result inside the write
        transaction, after the units and moves are written (an edit stores its
        change set there: all or nothing).

    Raises
    ------
    ValidationFailedError
        With the report, when anything is wrong; nothing is written.
    ConflictError
        When boundaries or places kept changing while this was validated.
    """
    when = parse_time(valid_from)
    tolerances = tolerances or Tolerances()
    announce = step or (lambda _name: None)
    units, joins = merge_multipart_units(units)
    for _attempt in range(_WRITE_ATTEMPTS):
        plan = _plan(
            db,
            units=units,
            layer=layer,
            level=level,
            when=when,
            source=source,
            repair=repair,
            cascade=cascade,
            partial=partial,
            keep_attributes=keep_attributes,
            tolerances=tolerances,
            announce=announce,
            levels_below=levels_below,
            exact=exact,
        )
        if dry_run:
            result = plan.preview()
            break
        announce("write")
        with db.transaction() as repo:
            if plan.layer_exists:
                repo.lock_layer(layer=layer)  # writers of this layer wait here, in turn
            if _counters(repo) != plan.counters:
                continue  # someone changed boundaries or places meanwhile: again
            if not plan.layer_exists:
                repo.ensure_layer(plan.spec)  # a built-in layer's first import
            if precondition is not None:
                precondition(repo)
            result = plan.write(repo, actor=actor, on_progress=on_progress)
            _flag_routes(repo, result, source=source)
            if on_written is not None:
                on_written(repo, result)
        break
    else:
        raise ConflictError(
            f"{layer}:{level}: boundaries or places kept changing while this import was "
            "validated; try again"
        )
    if result.fixes:
        # Noded on the way in: listed as fixes, no longer something to warn about.
        result.report.warnings = [w for w in result.report.warnings if w.rule != "unnoded_edge"]
    result.report.warnings.extend(
        Problem(
            "multi_part_unit",
            (j.code,),
            None,
            None,
            None,
            f"{j.parts} features joined into one multi-part unit {j.code!r}",
        )
        for j in joins
    )
    return result


def mismatch_report(error: InputError) -> ValidationReport:
    """Turn a CRS mix-up found while reading into a report's ``crs_mismatch`` problem."""
    report = ValidationReport(unit_count=0)
    report.problems.append(
        Problem(
            "crs_mismatch",
            (),
            error.details.get("lon"),
            error.details.get("lat"),
            None,
            error.message,
        )
    )
    return report


# -- the plan ---------------------------------------------------------------------


@dataclass
class _LevelState:
    """One level before and after the change."""

    name: str
    before: gpd.GeoDataFrame
    after: gpd.GeoDataFrame
    summary: ImportSummary


@dataclass
class _Plan:
    layer: str
    level: str
    when: datetime
    source: str
    spec: LayerSpec
    layer_exists: bool
    counters: tuple[int, int]
    report: ValidationReport
    repairs: list[Repair]
    fixes: list[NodingFix]
    levels: list[_LevelState]  # the imported level first, then the cascaded ones
    moves: pd.DataFrame

    def preview(self) -> ImportResult:
        return ImportResult(
            summary=self.levels[0].summary,
            report=self.report,
            repairs=self.repairs,
            fixes=self.fixes,
            cascaded=[s.summary for s in self.levels[1:] if _touched(s.summary)],
            moves=self.moves,
            dry_run=True,
        )

    def write(
        self, repo: Repository, *, actor: Principal, on_progress: Progress | None
    ) -> ImportResult:
        stored: list[ImportSummary] = []
        for state in self.levels:
            if state is not self.levels[0] and not _touched(state.summary):
                continue
            stored.append(
                repo.replace_units(
                    layer=self.layer,
                    level=state.name,
                    units=state.after,
                    valid_from=self.when,
                    source=self.source,
                    scope_parents=None,
                    on_progress=on_progress if state is self.levels[0] else None,
                    # The levels below that followed belong to the first import.
                    part_of=stored[0].import_id if stored else None,
                )
            )
        main = stored[0]
        if len(self.moves):
            repo.places.store_moves(import_id=main.import_id, layer=self.layer, moves=self.moves)
        append_audit(
            repo,
            actor=actor,
            action="boundaries.import",
            target=f"layer:{self.layer}:{self.level}",
            detail={
                "source": Path(self.source).name,
                "import_id": main.import_id,
                **main.counts(),
                "cascaded": {s.level: s.counts() for s in stored[1:]},
                "moved_buildings": len(self.moves),
            },
        )
        return ImportResult(
            summary=main,
            report=self.report,
            repairs=self.repairs,
            fixes=self.fixes,
            cascaded=stored[1:],
            moves=self.moves,
        )


def _plan(
    db: Database,
    *,
    units: gpd.GeoDataFrame,
    layer: str,
    level: str,
    when: datetime,
    source: str,
    repair: bool,
    cascade: CascadeMode | None,
    partial: bool,
    keep_attributes: bool,
    tolerances: Tolerances,
    announce: Step,
    levels_below: Mapping[str, gpd.GeoDataFrame] | None = None,
    exact: bool = False,
) -> _Plan:
    announce("read")
    with db.reader() as repo:
        counters = _counters(repo)
        known = layer in {summary.name for summary in repo.list_layers()}
        if not known and layer not in BUILTIN_LAYERS:
            raise NotFoundError(f"no layer {layer!r}", field="layer")
        spec = repo.layer_spec(name=layer) if known else BUILTIN_LAYERS[layer]
        level_spec = _level(spec, level)
        parent_level = spec.parent_level(level)
        parents = (
            repo.units_frame(layer=layer, level=parent_level.name, at=when)
            if parent_level is not None
            else None
        )
        existing = repo.units_frame(layer=layer, level=level, at=when)
        below = spec.levels[spec.rank(level) + 1 :]
        children = {lv.name: repo.units_frame(layer=layer, level=lv.name, at=when) for lv in below}
        taken = {
            lv.name: set(repo.units_frame(layer=layer, level=lv.name, all_versions=True)["code"])
            for lv in below
        }
        layer_units = repo.units_frame(layer=layer, at=when) if known else None
    if parent_level is not None and (parents is None or parents.empty):
        raise InputError(
            f"layer {layer!r} has no {parent_level.name} units valid at "
            f"{isoformat_local(when)}: import the {parent_level.name} level first",
            field="level",
        )
    units = _unit_columns(units)
    projected = _projected(units, existing)
    locator = Locator(projected, tolerances)
    report = ValidationReport(unit_count=len(units))
    _check_plausible(units, parents if parents is not None else layer_units, locator, report)
    if report.problems:
        raise ValidationFailedError(
            f"{source}: the file is not where the layer is; nothing was imported", report=report
        )
    if parents is not None:
        units = _fill_parent_codes(units, parents)
    if not keep_attributes:
        units = _stored_attributes(units, existing)

    # Scope: which stored units the file replaces; the others stay.
    if partial:
        named = existing["code"].isin(set(units["code"].dropna().astype(str)))
        replaced, staying = existing[named], existing[~named]
        _check_partial_union(units, replaced, locator, report)
    else:
        scope = (
            sorted({str(c) for c in units["parent_code"].dropna()}) if parents is not None else None
        )
        in_scope = (
            existing["parent_code"].isin(scope)
            if scope is not None
            else pd.Series(True, index=existing.index)
        )
        named = existing["code"].isin(set(units["code"].dropna().astype(str)))
        staying = existing[~in_scope & ~named]

    # The level's new state: unchanged units keep their stored geometry exactly,
    # and edges are noded first, so that validation takes GEOS' fast coverage
    # path. When noding had to move more than slivers (or cannot run on the
    # data), the data as sent is validated instead, to say what is wrong.
    if not exact:
        units = _keep_unchanged(units, existing, tolerances=tolerances)
    before_validation = report  # plausibility and partial-import problems so far
    units, after, fixes, repairs, checked = _node_and_validate(
        staying,
        units,
        parents=parents,
        spec=spec,
        level_spec=level_spec,
        tolerances=tolerances,
        projected=projected,
        repair=repair,
        announce=announce,
    )
    report = _merge(before_validation, checked)
    if not report.ok or after is None:
        raise ValidationFailedError(
            f"{source}: {len(report.problems)} problem(s); nothing was imported", report=report
        )
    summary = _summary(layer, level, when, existing, after)
    levels = [_LevelState(level, existing, after, summary)]

    # The levels below follow (or the import is refused).
    announce("cascade")
    parents_before, parents_after = existing, after
    for lv in below:
        kids = children[lv.name]
        given = (levels_below or {}).get(lv.name)
        if given is not None:
            # The caller gives this level's new state (e.g. a same-grid
            # proposal re-draws stations and beats together): it must nest.
            new_kids = _fill_parent_codes(_unit_columns(given), parents_after)
            if not exact:
                new_kids = _keep_unchanged(new_kids, kids, tolerances=tolerances)
            new_kids, kid_fixes = node_level(new_kids, tolerances=tolerances, projected=projected)
            nested = validate_units(
                new_kids, parents=parents_after, layer=spec, level=lv, tolerances=tolerances
            )
            report.problems.extend(nested.problems)
            fixes.extend(kid_fixes)
            levels.append(
                _LevelState(lv.name, kids, new_kids, _summary(layer, lv.name, when, kids, new_kids))
            )
            parents_before, parents_after = kids, new_kids
            continue
        if kids.empty or not _touched(levels[-1].summary):
            break
        cascaded = cascade_children(
            kids,
            parents_before=parents_before,
            parents_after=parents_after,
            mode=cascade,
            level_name=lv.name,
            taken_codes=taken[lv.name],
            tolerances=tolerances,
            projected=projected,
        )
        report.problems.extend(cascaded.problems)
        if cascade is None or cascaded.problems:
            break
        new_kids, kid_fixes = node_level(
            cascaded.children, tolerances=tolerances, projected=projected
        )
        fixes.extend(kid_fixes)
        levels.append(
            _LevelState(lv.name, kids, new_kids, _summary(layer, lv.name, when, kids, new_kids))
        )
        parents_before, parents_after = kids, new_kids
    if report.problems:
        report.problems.sort(key=lambda p: (p.rule, p.codes))
        raise ValidationFailedError(
            f"{source}: {len(report.problems)} problem(s) with the levels below; nothing was "
            "imported (--cascade new|merge lets them follow)",
            report=report,
        )

    announce("places")
    deepest = spec.rank(levels[-1].name)
    deeper_units = any(
        not children[lv.name].empty for lv in spec.levels[deepest + 1 :] if lv.name in children
    )
    moves = _moves(db, levels, deeper_units=deeper_units)
    return _Plan(
        layer=layer,
        level=level,
        when=when,
        source=source,
        spec=spec,
        layer_exists=known,
        counters=counters,
        report=report,
        repairs=repairs,
        fixes=fixes,
        levels=levels,
        moves=moves,
    )


# -- steps --------------------------------------------------------------------------


def _counters(repo: Repository) -> tuple[int, int]:
    counters = repo.revisions()
    return counters.get("boundaries", 0), counters.get("places", 0)


def _unit_columns(units: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    frame = units.to_crs(STORAGE_CRS) if units.crs is not None else units
    frame = frame.copy()
    for column, default in (("name", None), ("parent_code", None), ("kind", "comprehensive")):
        if column not in frame:
            frame[column] = default
    if "attributes" not in frame:
        frame["attributes"] = [{} for _ in range(len(frame))]
    frame["attributes"] = [a if isinstance(a, dict) else {} for a in frame["attributes"]]
    columns = ["code", "name", "parent_code", "kind", "attributes"]
    return gpd.GeoDataFrame(
        frame[columns], geometry=frame.geometry.values, crs=STORAGE_CRS, index=frame.index
    )


def _attributes_policy(
    units: gpd.GeoDataFrame, *, keep: bool
) -> tuple[gpd.GeoDataFrame, list[str]]:
    # Our own export's bookkeeping columns are never attributes; other extra
    # columns are, only when asked for.
    cleaned = [
        {k: v for k, v in (a or {}).items() if k not in EXPORT_COLUMNS} for a in units["attributes"]
    ]
    ignored = sorted({k for a in cleaned for k in a}) if not keep else []
    units = units.copy()
    units["attributes"] = cleaned if keep else [{} for _ in cleaned]
    return units, ignored


def _stored_attributes(units: gpd.GeoDataFrame, existing: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    stored = dict(zip(existing["code"].astype(str), existing["attributes"], strict=True))
    units = units.copy()
    units["attributes"] = [dict(stored.get(str(c)) or {}) for c in units["code"]]
    return units


def _check_plausible(
    units: gpd.GeoDataFrame,
    reference: gpd.GeoDataFrame | None,
    locator: Locator,
    report: ValidationReport,
) -> None:
    """Refuse a file far from where the layer (or its parents) lies: a CRS mix-up."""
    if reference is None or reference.empty or units.empty:
        return
    geometries = units.geometry.values
    usable = ~shapely.is_missing(geometries) & ~shapely.is_empty(geometries)
    if not usable.any():
        return
    mine = shapely.envelope(shapely.union_all(shapely.envelope(geometries[usable])))
    theirs = shapely.envelope(shapely.union_all(shapely.envelope(reference.geometry.values)))
    distance = float(shapely.distance(locator.project(mine), locator.project(theirs)))
    if distance <= _PLAUSIBLE_DISTANCE_M:
        return
    a, b = shapely.centroid(mine), shapely.centroid(theirs)
    report.problems.append(
        Problem(
            "crs_mismatch",
            (),
            round(a.x, 7),
            round(a.y, 7),
            None,
            f"the units lie {distance / 1000:,.1f} km from the layer's current extent "
            f"(offset Δlon {a.x - b.x:+.4f}°, Δlat {a.y - b.y:+.4f}°): the file's coordinates "
            "are probably in another CRS than it says; declare the right one with --crs",
        )
    )


def _check_partial_union(
    units: gpd.GeoDataFrame,
    replaced: gpd.GeoDataFrame,
    locator: Locator,
    report: ValidationReport,
) -> None:
    mine = shapely.union_all(units.geometry.values)
    theirs = shapely.union_all(replaced.geometry.values) if len(replaced) else shapely.Polygon()
    codes = tuple(sorted(map(str, units["code"].dropna())))[:10]
    for rule, piece, what in (
        ("overlap", shapely.difference(mine, theirs), "reaches beyond the units it replaces"),
        ("gap", shapely.difference(theirs, mine), "leaves ground of the units it replaces bare"),
    ):
        piece = _polygonal(piece)
        if piece.is_empty or locator.is_sliver(piece):
            continue
        area = locator.area(piece)
        report.problems.append(
            locator.problem(
                rule,
                codes,
                piece,
                f"a partial import must cover exactly the units it replaces: it {what} "
                f"({area:,.0f} m²)",
            )
        )


def _node_and_validate(
    staying: gpd.GeoDataFrame,
    units: gpd.GeoDataFrame,
    *,
    parents: gpd.GeoDataFrame | None,
    spec: LayerSpec,
    level_spec: LevelSpec,
    tolerances: Tolerances,
    projected: Any,
    repair: bool,
    announce: Step,
) -> tuple[
    gpd.GeoDataFrame,
    gpd.GeoDataFrame | None,
    list[NodingFix],
    list[Repair],
    ValidationReport,
]:
    """Node and validate the level's new state (staying units first), repairing if asked.

    Returns the units (repaired or as sent), the noded state (None when
    noding cannot or should not run), its fixes, the sliver repairs and the
    validation report: of the noded state when it is valid, else of the data
    as sent, to say what is wrong.
    """
    announce("node")
    after, fixes = _node(staying, units, tolerances=tolerances, projected=projected)
    announce("validate")
    repairs: list[Repair] = []
    checked = None
    if after is not None:
        noded = _validator(
            parents,
            spec,
            level_spec,
            after.iloc[: len(staying)],
            tolerances,
            announce,
            noded=True,
        )
        checked = noded(after.iloc[len(staying) :])
        if repair and checked.warnings:
            # Slivers noding cannot close (along the parent's edge) are repaired.
            repaired, repairs = repair_slivers(
                after.iloc[len(staying) :], checked.warnings, parents=parents
            )
            if repairs:
                after, fixes = _node(staying, repaired, tolerances=tolerances, projected=projected)
                checked = noded(after.iloc[len(staying) :]) if after is not None else None
    if checked is None or not checked.ok:
        raw = _validator(parents, spec, level_spec, staying, tolerances, announce)
        checked = raw(units)
        if repair and checked.warnings:
            units, repairs = repair_slivers(units, checked.warnings, parents=parents)
            if repairs:
                checked = raw(units)
                after, fixes = _node(staying, units, tolerances=tolerances, projected=projected)
    return units, after, fixes, repairs, checked


def _node(
    staying: gpd.GeoDataFrame,
    units: gpd.GeoDataFrame,
    *,
    tolerances: Tolerances,
    projected: Any,
) -> tuple[gpd.GeoDataFrame | None, list[NodingFix]]:
    """Node the level's new state (staying units first); None when it cannot or should not.

    Noding only closes what is under the tolerances: a fix that moves more
    ground means overlaps or gaps for people to resolve, so validation of
    the data as sent must report them.
    """
    geometries = np.asarray(units.geometry.values, dtype=object)
    polygonal = np.isin(shapely.get_type_id(geometries), (3, 6))
    if not (polygonal.all() and shapely.is_valid(geometries).all()):
        return None, []
    if units["code"].isna().any() or units["code"].duplicated().any():
        return None, []
    candidate = _concat(staying, units)
    try:
        noded, fixes = node_level(candidate, tolerances=tolerances, projected=projected)
    except shapely.errors.GEOSException:
        return None, []
    if any(fix.area_m2 > tolerances.sliver_area_m2 for fix in fixes):
        return None, []
    return noded, fixes


def _validator(
    parents: gpd.GeoDataFrame | None,
    spec: LayerSpec,
    level_spec: LevelSpec,
    staying: gpd.GeoDataFrame,
    tolerances: Tolerances,
    announce: Step,
    *,
    noded: bool = False,
) -> Callable[[gpd.GeoDataFrame], ValidationReport]:
    def check(units: gpd.GeoDataFrame) -> ValidationReport:
        return validate_units(
            units,
            parents=parents,
            layer=spec,
            level=level_spec,
            neighbours=staying if len(staying) else None,
            tolerances=tolerances,
            progress=announce,
            noded=noded,
        )

    return check


def _merge(first: ValidationReport, second: ValidationReport) -> ValidationReport:
    second.problems[:0] = first.problems
    second.warnings[:0] = first.warnings
    return second


def _flag_routes(repo: Repository, result: ImportResult, *, source: str) -> None:
    # Patrol routes of a unit whose boundary this import changed or retired
    # need re-planning, however the change came (edits flag theirs the same way).
    moved = [
        code for s in [result.summary, *result.cascaded] for code in (*s.updated, *s.retired)
    ]
    if moved:
        repo.routes.mark_stale(
            layer=result.summary.layer,
            codes=moved,
            reason=f"import ({source}) changed or retired the unit",
        )


def _keep_unchanged(
    units: gpd.GeoDataFrame, existing: gpd.GeoDataFrame, *, tolerances: Tolerances
) -> gpd.GeoDataFrame:
    """Give units that are their stored version (see :func:`same_shape`) the stored geometry."""
    if existing.empty:
        return units
    stored = dict(zip(existing["code"].astype(str), existing.geometry.values, strict=True))
    codes = units["code"].astype(str).to_numpy()
    olds = np.array([stored.get(c) for c in codes], dtype=object)
    news = np.asarray(units.geometry.values, dtype=object)
    known = np.array([o is not None for o in olds])
    same = np.zeros(len(units), dtype=bool)
    if known.any():
        same[known] = same_shape(
            olds[known], news[known], within=tolerances.sliver_width_m / _METRES_PER_DEGREE
        )
    if not same.any():
        return units
    units = units.copy()
    units[units.geometry.name] = gpd.GeoSeries(
        np.where(same, olds, news), index=units.index, crs=units.crs
    )
    return units


def _concat(staying: gpd.GeoDataFrame, units: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    columns = ["code", "name", "parent_code", "kind", "attributes"]
    parts = [
        gpd.GeoDataFrame(f[columns], geometry=f.geometry.values, crs=STORAGE_CRS)
        for f in (staying, units)
        if len(f)
    ]
    if not parts:
        return units
    return gpd.GeoDataFrame(pd.concat(parts, ignore_index=True), crs=STORAGE_CRS)


def _summary(
    layer: str,
    level: str,
    when: datetime,
    before: gpd.GeoDataFrame,
    after: gpd.GeoDataFrame,
) -> ImportSummary:
    """Summarise what writing ``after`` over ``before`` does (as the repository will)."""
    summary = ImportSummary(layer=layer, level=level, valid_from=when)
    old_codes = _column(before, "code").astype(str)
    new_codes = _column(after, "code").astype(str)
    position = {code: i for i, code in enumerate(old_codes)}
    found = np.array([position.get(code, -1) for code in new_codes], dtype=np.int64)
    known = found >= 0
    same = np.zeros(len(after), dtype=bool)
    if known.any():
        rows = found[known]
        same_fields = np.ones(int(known.sum()), dtype=bool)
        for column in ("name", "parent_code"):
            old = _column(before, column)[rows]
            new = _column(after, column)[known]
            same_fields &= np.array([a == b for a, b in zip(old, new, strict=True)], dtype=bool)
        old_kind = _column(before, "kind")[rows]
        new_kind = [k or "comprehensive" for k in _column(after, "kind")[known]]
        same_fields &= np.array([a == b for a, b in zip(old_kind, new_kind, strict=True)])
        old_attributes = _column(before, "attributes")[rows]
        new_attributes = _column(after, "attributes")[known]
        same_fields &= np.array(
            [(a or {}) == (b or {}) for a, b in zip(old_attributes, new_attributes, strict=True)]
        )
        geometry = shapely.equals_exact(
            np.asarray(before.geometry.values, dtype=object)[rows],
            np.asarray(after.geometry.values, dtype=object)[known],
            tolerance=0.0,
        )
        same[known] = same_fields & geometry
    summary.created = list(new_codes[~known])
    summary.unchanged = list(new_codes[same])
    summary.updated = list(new_codes[known & ~same])
    kept = set(new_codes)
    summary.retired = [code for code in old_codes if code not in kept]
    return summary


def _column(frame: gpd.GeoDataFrame, name: str) -> np.ndarray:
    if name not in frame:
        return np.array([None] * len(frame), dtype=object)
    values = frame[name].to_numpy(dtype=object)
    # Missing text is None, never NaN (NaN != NaN would make every unit "changed").
    return np.array(
        [None if isinstance(v, float) and np.isnan(v) else v for v in values], dtype=object
    )


def _touched(summary: ImportSummary) -> bool:
    return bool(summary.created or summary.updated or summary.retired)


def _moves(db: Database, levels: list[_LevelState], *, deeper_units: bool) -> pd.DataFrame:
    """List the buildings whose unit changes, at the lowest level (where buildings hang).

    ``levels`` are the touched levels, top first; when a level below the last
    one has units (it did not have to change), nothing moves: the buildings'
    units and their parents stay.
    """
    deepest = levels[-1]
    if deeper_units or not _touched(deepest.summary):
        return pd.DataFrame(columns=MOVE_COLUMNS)
    summary = deepest.summary
    before, after = deepest.before, deepest.after
    changed = set(summary.created) | set(summary.updated) | set(summary.retired)
    touched = [
        *before.geometry.values[before["code"].astype(str).isin(changed).to_numpy()],
        *after.geometry.values[after["code"].astype(str).isin(changed).to_numpy()],
    ]
    area = shapely.union_all(touched)
    with db.reader() as repo:
        minx, miny, maxx, maxy = area.bounds
        buildings = repo.places.buildings_frame(bbox=(minx, miny, maxx, maxy))
    if buildings.empty:
        return pd.DataFrame(columns=MOVE_COLUMNS)
    buildings = buildings[buildings.intersects(area)].reset_index(drop=True)
    if buildings.empty:
        return pd.DataFrame(columns=MOVE_COLUMNS)
    entrance = gpd.points_from_xy(buildings["entrance_lon"], buildings["entrance_lat"], crs=4490)
    buildings["entrance"] = [
        None if p is None or p.is_empty or np.isnan(p.x) else p for p in entrance
    ]
    # Only the units around the touched ground can receive these buildings.
    near = shapely.buffer(shapely.envelope(area), 0.01)
    old = assign_buildings(buildings, before[before.intersects(near)], entrance="entrance").frame
    new = assign_buildings(buildings, after[after.intersects(near)], entrance="entrance").frame
    moved = diff(old, new)
    if moved.empty:
        return pd.DataFrame(columns=MOVE_COLUMNS)
    counts = buildings.set_index("key")[["households", "persons"]]
    moved = moved.join(counts, on="key")
    moved["level"] = deepest.name
    moved["households"] = moved["households"].fillna(0).astype(int)
    moved["persons"] = moved["persons"].fillna(0).astype(int)
    top = levels[0]
    moved["changed_level"] = top.name
    moved["from_code"] = _ancestors(moved["from_unit"], levels, "before")
    moved["to_code"] = _ancestors(moved["to_unit"], levels, "after")
    return moved[MOVE_COLUMNS].reset_index(drop=True)


def _ancestors(codes: pd.Series, levels: list[_LevelState], side: str) -> list[str | None]:
    """Return the unit of the changed (top) level above each lowest-level unit."""
    maps = [
        dict(
            zip(
                _column(state.before if side == "before" else state.after, "code").astype(str),
                _column(state.before if side == "before" else state.after, "parent_code"),
                strict=True,
            )
        )
        for state in reversed(levels[1:])
    ]
    found: list[str | None] = []
    for code in codes.to_numpy(dtype=object):
        current = None if code is None or (isinstance(code, float) and np.isnan(code)) else code
        for parents in maps:
            if current is None:
                break
            parent = parents.get(str(current))
            current = None if parent is None else str(parent)
        found.append(None if current is None else str(current))
    return found


def _records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    return [
        {k: (None if isinstance(v, float) and np.isnan(v) else v) for k, v in row.items()}
        for row in frame.astype(object).to_dict("records")
    ]


def _projected(*frames: gpd.GeoDataFrame) -> Any:
    for frame in frames:
        if frame is not None and len(frame):
            bounds = frame.geometry.total_bounds
            if np.all(np.isfinite(bounds)):
                return local_projected_crs((bounds[0] + bounds[2]) / 2, (bounds[1] + bounds[3]) / 2)
    return local_projected_crs(118.6, 24.9)


def _polygonal(geometry: Any) -> Any:
    from gis.validate._coverage import polygonal

    return polygonal(geometry)


def _level(spec: LayerSpec, level: str) -> LevelSpec:
    try:
        return spec.level(level)
    except KeyError:
        names = ", ".join(lv.name for lv in spec.levels)
        raise NotFoundError(
            f"layer {spec.name!r} has no level {level!r}; its levels are {names}", field="level"
        ) from None


def _fill_parent_codes(units: gpd.GeoDataFrame, parents: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    # Files often omit the parent: take the longest parent code the unit's code
    # extends, else the parent holding the unit's interior point.
    missing = units["parent_code"].isna()
    if not missing.any():
        return units
    filled = units.copy()
    codes = sorted(parents["code"].astype(str), key=len, reverse=True)
    points = filled.geometry.representative_point()
    for index in filled.index[missing]:
        code = str(filled.at[index, "code"])
        parent = next((p for p in codes if code.startswith(p) and len(code) > len(p)), None)
        if parent is None:
            hits = parents[parents.geometry.covers(points[index])]
            parent = str(hits.iloc[0]["code"]) if len(hits) else None
        filled.at[index, "parent_code"] = parent
    return filled
