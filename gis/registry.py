"""Boundary registry services: check, import, export and query grid layers.

Every function takes keyword arguments after the first and works through a
:class:`gis.repository.Database`; none knows about HTTP or the terminal.
Imports are transactions: a file with problems, or any failure half-way,
leaves the database as it was.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from datetime import date, datetime
from functools import partial
from pathlib import Path
from typing import Any

import geopandas as gpd

from gis.access.audit import append_audit, record
from gis.access.principal import SYSTEM, Principal
from gis.crs import CoordinateSystem, parse_crs
from gis.errors import ConflictError, InputError, NotFoundError, ValidationFailedError
from gis.io import FieldMap, read_units, write_units
from gis.layers import BUILTIN_LAYERS, LayerSpec, LevelSpec, level_spec_for
from gis.repair import Repair, repair_slivers
from gis.repository import Database, ImportSummary, LayerSummary
from gis.times import parse_time
from gis.unitframe import merge_multipart_units
from gis.validate import Problem, Tolerances, ValidationReport, validate_units

__all__ = [
    "ImportResult",
    "check_file",
    "define_layer",
    "export_layer",
    "import_file",
    "import_manifest",
    "list_layers",
    "parse_time",
    "unit_detail",
    "units_page",
]

Step = Callable[[str], None]
Progress = Callable[[int, int], None]
#: Dates without a time are midnight in China Standard Time (UTC+8).


@dataclass
class ImportResult:
    """What an import did: the change summary, the validation report, the repairs."""

    summary: ImportSummary
    report: ValidationReport
    repairs: list[Repair] = field(default_factory=list)


def check_file(
    path: str | Path,
    *,
    fields: FieldMap | None = None,
    crs: str | None = None,
    level: str | None = None,
    parent_path: str | Path | None = None,
    parent_fields: FieldMap | None = None,
    parent_crs: str | None = None,
    tolerances: Tolerances | None = None,
    step: Step | None = None,
) -> ValidationReport:
    """Validate a boundary file (optionally against a parent file) without importing.

    Raises
    ------
    InputError
        When a file cannot be used at all (see :func:`gis.io.read_units`).
    """
    announce = step or (lambda _name: None)
    announce("read")
    units = read_units(path, fields=fields, crs=crs)
    parents = None
    if parent_path is not None:
        parents = read_units(parent_path, fields=parent_fields, crs=parent_crs)
    layer, level_spec = level_spec_for(level)
    return validate_units(
        units,
        parents=parents,
        layer=layer,
        level=level_spec or level,
        tolerances=tolerances,
        progress=announce,
    )


def import_file(
    db: Database,
    *,
    path: str | Path,
    layer: str,
    level: str,
    fields: FieldMap | None = None,
    crs: str | CoordinateSystem | None = None,
    valid_from: str | date | datetime | None = None,
    repair: bool = False,
    tolerances: Tolerances | None = None,
    step: Step | None = None,
    on_progress: Progress | None = None,
    actor: Principal = SYSTEM,
) -> ImportResult:
    """Validate a file against the stored parent level and store it as a new version.

    All or nothing: when the data has problems, :class:`ValidationFailedError`
    carries the report and nothing is written. The import is audited as
    ``actor``'s, in the same transaction.
    """
    units = read_units(path, fields=fields, crs=crs)
    return import_units(
        db,
        units=units,
        layer=layer,
        level=level,
        source=str(path),
        valid_from=valid_from,
        repair=repair,
        tolerances=tolerances,
        step=step,
        on_progress=on_progress,
        actor=actor,
    )


def import_units(
    db: Database,
    *,
    units: gpd.GeoDataFrame,
    layer: str,
    level: str,
    source: str,
    valid_from: str | date | datetime | None = None,
    repair: bool = False,
    tolerances: Tolerances | None = None,
    step: Step | None = None,
    on_progress: Progress | None = None,
    actor: Principal = SYSTEM,
) -> ImportResult:
    """Import a unit frame (see :func:`import_file`).

    Validation reads a snapshot and runs outside any write transaction, so a
    long check never holds the write lock; the short write transaction then
    re-checks that no boundary changed meanwhile (else it validates again).
    """
    when = parse_time(valid_from)
    tolerances = tolerances or Tolerances()
    announce = step or (lambda _name: None)
    units, joins = merge_multipart_units(units)
    for _attempt in range(_WRITE_ATTEMPTS):
        plan = _plan_import(
            db,
            units=units,
            layer=layer,
            level=level,
            when=when,
            source=source,
            repair=repair,
            tolerances=tolerances,
            announce=announce,
        )
        announce("write")
        with db.transaction() as repo:
            if plan.layer_exists:
                repo.lock_layer(layer=layer)  # writers of this layer wait here, in turn
            if repo.revision() != plan.revision:
                continue  # someone changed boundaries while we validated: again
            if not plan.layer_exists:
                repo.ensure_layer(plan.spec)  # a built-in layer's first import
            summary = repo.replace_units(
                layer=layer,
                level=level,
                units=plan.units,
                valid_from=when,
                source=source,
                scope_parents=plan.scope,
                on_progress=on_progress,
            )
            append_audit(
                repo,
                actor=actor,
                action="boundaries.import",
                target=f"layer:{layer}:{level}",
                detail={
                    "source": Path(source).name,
                    "import_id": summary.import_id,
                    **summary.counts(),
                },
            )
        break
    else:
        raise ConflictError(
            f"{layer}:{level}: boundaries kept changing while this import was validated; "
            "try again"
        )
    report, repairs = plan.report, plan.repairs
    report.warnings.extend(
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
    return ImportResult(summary=summary, report=report, repairs=repairs)


_WRITE_ATTEMPTS = 3


@dataclass
class _ImportPlan:
    """A validated import, and the boundaries revision it was validated against."""

    revision: int
    spec: LayerSpec
    layer_exists: bool
    units: gpd.GeoDataFrame
    scope: list[str] | None
    report: ValidationReport
    repairs: list[Repair]


def _plan_import(
    db: Database,
    *,
    units: gpd.GeoDataFrame,
    layer: str,
    level: str,
    when: datetime,
    source: str,
    repair: bool,
    tolerances: Tolerances,
    announce: Step,
) -> _ImportPlan:
    with db.reader() as repo:
        revision = repo.revision()
        known = layer in {summary.name for summary in repo.list_layers()}
        spec = BUILTIN_LAYERS[layer] if not known and layer in BUILTIN_LAYERS else None
        spec = spec or repo.layer_spec(name=layer)
        level_spec = _level(spec, level)
        parent_level = spec.parent_level(level)
        parents = None
        scope = None
        if parent_level is not None:
            parents = repo.units_frame(layer=layer, level=parent_level.name, at=when)
            if parents.empty:
                raise InputError(
                    f"layer {layer!r} has no {parent_level.name} units valid at "
                    f"{when.isoformat()}: import the {parent_level.name} level first",
                    field="level",
                )
            units = _fill_parent_codes(units, parents)
            scope = sorted({str(c) for c in units["parent_code"].dropna()})
        existing = repo.units_frame(layer=layer, level=level, at=when)
    neighbours = _neighbours(existing, units, scope)
    announce("validate")
    check = partial(
        validate_units,
        parents=parents,
        layer=spec,
        level=level_spec,
        neighbours=neighbours,
        tolerances=tolerances,
        progress=announce,
    )
    report = check(units)
    repairs: list[Repair] = []
    if repair and report.warnings:
        units, repairs = repair_slivers(units, report.warnings, parents=parents)
        if repairs:
            report = check(units)
    if not report.ok:
        raise ValidationFailedError(
            f"{source}: {len(report.problems)} problem(s); nothing was imported",
            report=report,
        )
    return _ImportPlan(
        revision=revision,
        spec=spec,
        layer_exists=known,
        units=units, scope=scope, report=report, repairs=repairs
    )


def import_manifest(
    db: Database,
    *,
    manifest: str | Path,
    step: Step | None = None,
    on_progress: Progress | None = None,
    actor: Principal = SYSTEM,
) -> list[ImportResult]:
    """Import every level of every layer a manifest lists (e.g. the sample city).

    The manifest is JSON: ``{"valid_from", "layers": [{"name", "title",
    "levels": [{"name", "title", "file"}]}]}``, files relative to it.
    """
    path = Path(manifest)
    try:
        description = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise InputError(f"{path}: not a readable manifest ({error})", field="manifest") from None
    results = []
    for layer in description["layers"]:
        builtin = BUILTIN_LAYERS.get(layer["name"])
        if builtin is None:
            spec = LayerSpec(
                name=layer["name"],
                title=layer.get("title", ""),
                levels=tuple(LevelSpec(lv["name"], lv.get("title", "")) for lv in layer["levels"]),
            )
            define_layer(db, spec=spec, actor=actor)
        for level in layer["levels"]:
            if step is not None:
                step(f"{layer['name']}:{level['name']}")
            results.append(
                import_file(
                    db,
                    path=path.parent / level["file"],
                    layer=layer["name"],
                    level=level["name"],
                    valid_from=description.get("valid_from"),
                    on_progress=on_progress,
                    actor=actor,
                )
            )
    return results


def export_layer(
    db: Database,
    *,
    layer: str,
    out: str | Path,
    fmt: str,
    level: str | None = None,
    crs: str | None = None,
    at: str | date | datetime | None = None,
    actor: Principal = SYSTEM,
) -> int:
    """Write a layer's units valid at ``at`` (default now) to a file; return the count.

    The export is audited as ``actor``'s.
    """
    if crs is not None:
        parse_crs(crs)  # fail before touching the database
    with db.reader() as repo:
        spec = repo.layer_spec(name=layer)
        if level is not None:
            _level(spec, level)
        frame = repo.units_frame(layer=layer, level=level, at=parse_time(at))
    if frame.empty:
        raise NotFoundError(
            f"layer {layer!r} has no units{f' at level {level!r}' if level else ''}"
        )
    write_units(frame, out, fmt=fmt, crs=crs)
    record(
        db,
        actor=actor,
        action="units.export",
        target=f"layer:{layer}",
        detail={"format": fmt, "level": level, "units": len(frame), "file": Path(out).name},
    )
    return len(frame)


def define_layer(db: Database, *, spec: LayerSpec, actor: Principal = SYSTEM) -> LayerSpec:
    """Create a user-defined layer (or confirm an identical one exists); audited."""
    if not spec.levels:
        raise InputError(f"layer {spec.name!r} needs at least one level", field="levels")
    names = [level.name for level in spec.levels]
    if len(set(names)) != len(names):
        raise InputError(f"layer {spec.name!r} repeats a level: {', '.join(names)}", field="levels")
    with db.transaction() as repo:
        repo.ensure_layer(spec)
        append_audit(
            repo,
            actor=actor,
            action="layer.define",
            target=f"layer:{spec.name}",
            detail={"levels": [level.name for level in spec.levels]},
        )
        return repo.layer_spec(name=spec.name)


def list_layers(db: Database, *, at: str | datetime | None = None) -> list[LayerSummary]:
    """Return every layer with its levels and unit counts."""
    with db.reader() as repo:
        return repo.list_layers(at=parse_time(at) if at else None)


def level_counts(
    db: Database, *, layer: str, codes: Collection[str], at: str | datetime | None = None
) -> dict[str, int]:
    """Count, per level, the units of ``codes`` valid at ``at`` (a jurisdiction's share)."""
    when = parse_time(at)
    with db.reader() as repo:
        spec = repo.layer_spec(name=layer)
        return {
            level.name: repo.count_units(layer=layer, level=level.name, at=when, codes=list(codes))
            for level in spec.levels
        }


def units_page(
    db: Database,
    *,
    layer: str,
    level: str | None = None,
    parent: str | None = None,
    bbox: tuple[float, float, float, float] | None = None,
    at: str | datetime | None = None,
    limit: int = 100,
    offset: int = 0,
    codes: Collection[str] | None = None,
) -> tuple[gpd.GeoDataFrame, int]:
    """Return one page of a layer's units and the total number matching.

    ``codes`` limits the page to those units (a caller's jurisdiction).
    """
    when = parse_time(at)
    with db.reader() as repo:
        spec = repo.layer_spec(name=layer)
        if level is not None:
            _level(spec, level)
        only = sorted(codes) if codes is not None else None
        frame = repo.units_frame(
            layer=layer,
            level=level,
            parent=parent,
            bbox=bbox,
            at=when,
            limit=limit,
            offset=offset,
            codes=only,
        )
        total = repo.count_units(
            layer=layer, level=level, parent=parent, bbox=bbox, at=when, codes=only
        )
    return frame, total


def unit_detail(
    db: Database, *, code: str, layer: str | None = None, at: str | datetime | None = None
) -> dict[str, Any]:
    """Return a unit with its ancestors (top first) and its children.

    Raises
    ------
    NotFoundError
        When no unit has the code at that time (or codes clash across layers
        and no layer is given).
    """
    when = parse_time(at)
    with db.reader() as repo:
        found = repo.units_frame(layer=layer, codes=[code], at=when)
        if found.empty:
            raise NotFoundError(
                f"no unit {code!r}" + (f" in layer {layer!r}" if layer else ""), field="code"
            )
        if len(found) > 1:
            layers = ", ".join(sorted(found["layer"]))
            raise NotFoundError(
                f"code {code!r} exists in several layers ({layers}): name one", field="layer"
            )
        unit = found.iloc[0]
        ancestors: list[Any] = []
        parent = unit["parent_code"]
        while parent:
            row = repo.units_frame(layer=unit["layer"], codes=[parent], at=when)
            if row.empty:
                break
            ancestors.insert(0, row.iloc[0])
            parent = row.iloc[0]["parent_code"]
        children = repo.units_frame(layer=unit["layer"], parent=code, at=when)
    return {"unit": unit, "ancestors": ancestors, "children": children}


def _level(spec: LayerSpec, level: str) -> LevelSpec:
    try:
        return spec.level(level)
    except KeyError:
        names = ", ".join(lv.name for lv in spec.levels)
        raise NotFoundError(
            f"layer {spec.name!r} has no level {level!r}; its levels are {names}", field="level"
        ) from None


def _neighbours(
    existing: gpd.GeoDataFrame, units: gpd.GeoDataFrame, scope: list[str] | None
) -> gpd.GeoDataFrame | None:
    # Stored units that stay after this import: those under other parents.
    if existing.empty or scope is None:
        return None
    codes = set(units["code"].dropna().astype(str))
    keep = ~existing["parent_code"].isin(scope) & ~existing["code"].isin(codes)
    return existing[keep] if keep.any() else None


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
