"""Boundary registry services: check, import, export and query grid layers.

Every function takes keyword arguments after the first and works through a
:class:`gis.repository.Database`; none knows about HTTP or the terminal.
Imports are transactions: a file with problems, or any failure half-way,
leaves the database as it was.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Collection
from datetime import date, datetime
from pathlib import Path
from typing import Any

import geopandas as gpd
import pandas as pd

from gis.access.audit import append_audit, record
from gis.access.jurisdiction import Jurisdiction
from gis.access.principal import SYSTEM, Principal
from gis.crs import parse_crs
from gis.errors import InputError, NotFoundError
from gis.io import FieldMap, read_units, write_units
from gis.layers import BUILTIN_LAYERS, LayerSpec, LevelSpec, level_spec_for
from gis.repository import Database, LayerSummary
from gis.times import parse_time
from gis.types import Progress, Step
from gis.units._import import (
    MOVE_COLUMNS,
    ImportResult,
    encoding_note,
    import_file,
    import_units,
    mismatch_report,
)
from gis.units._overlaps import unit_overlaps
from gis.validate import Tolerances, ValidationReport, validate_units

__all__ = [
    "MOVE_COLUMNS",
    "ImportResult",
    "check_file",
    "define_layer",
    "export_layer",
    "import_file",
    "import_history",
    "import_manifest",
    "import_moves",
    "import_units",
    "layer_spec",
    "level_spec",
    "list_layers",
    "parse_time",
    "unit_detail",
    "unit_overlaps",
    "units_page",
]

#: Dates without a time are midnight in China Standard Time (UTC+8).


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
    encoding: str | None = None,
) -> ValidationReport:
    """Validate a boundary file (optionally against a parent file) without importing.

    ``encoding`` is the text encoding of a CSV or Shapefile (default: found
    from the bytes); when not UTF-8 an ``encoding`` warning says which.

    Raises
    ------
    InputError
        When a file cannot be used at all (see :func:`gis.io.read_units`).
    """
    announce = step or (lambda _name: None)
    announce("read")
    try:
        units = read_units(path, fields=fields, crs=crs, encoding=encoding)
        parents = None
        if parent_path is not None:
            parents = read_units(parent_path, fields=parent_fields, crs=parent_crs)
    except InputError as error:
        if error.rule != "crs_mismatch":
            raise
        # A CRS mix-up is a problem of the data (exit 1), with what was seen.
        return mismatch_report(error)
    layer, spec = level_spec_for(level)
    if level is not None and spec is None:
        raise InputError(
            f"level {level!r} is not a level of a built-in layer ({', '.join(_builtin_levels())}); "
            "for a layer of your own leave out --level",
            field="level",
        )
    report = validate_units(
        units,
        parents=parents,
        layer=layer,
        level=spec or level,
        tolerances=tolerances,
        progress=announce,
    )
    note = encoding_note(units)
    if note is not None:
        report.warnings.insert(0, note)
    return report


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
    "levels": [{"name", "title", "file"}]}]}``, files relative to it. A
    manifest (or one of its layers) with ``"synthetic": true`` and a
    ``"source"`` note marks its imports so: the layer's summary
    (:func:`list_layers`, ``GET /layers``) then says the data are synthetic
    for as long as any of these units is valid.
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
        synthetic = layer.get("synthetic", description.get("synthetic", False))
        source = layer.get("source", description.get("source"))
        if not isinstance(synthetic, bool) or not (source is None or isinstance(source, str)):
            raise InputError(
                f"{path}: 'synthetic' must be true or false and 'source' a text", field="manifest"
            )
        for level in layer["levels"]:
            if step is not None:
                step(f"{layer['name']}:{level['name']}")
            result = import_file(
                db,
                path=path.parent / level["file"],
                layer=layer["name"],
                level=level["name"],
                valid_from=description.get("valid_from"),
                keep_attributes=True,  # a manifest's files are complete (households...)
                on_progress=on_progress,
                actor=actor,
            )
            if synthetic and result.summary.import_id is not None:
                with db.transaction() as repo:
                    repo.mark_provenance(
                        import_id=result.summary.import_id, synthetic=True, source=source
                    )
            results.append(result)
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
        frame = repo.units_frame(layer=layer, level=level, at=parse_time(at, field="at"))
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


def layer_spec(db: Database, *, layer: str) -> LayerSpec:
    """Return a stored layer's definition; NotFoundError naming ``layer`` otherwise."""
    with db.reader() as repo:
        return repo.layer_spec(name=layer)


def level_spec(db: Database, *, layer: str, level: str) -> LevelSpec:
    """Return a stored layer's level; NotFoundError naming ``layer`` or ``level`` otherwise."""
    return _level(layer_spec(db, layer=layer), level)


def list_layers(
    db: Database, *, at: str | datetime | None = None, jurisdiction: Jurisdiction | None = None
) -> list[LayerSummary]:
    """Return every layer with its levels and unit counts.

    With ``jurisdiction`` the counts are of the units it may see (totals
    would tell about other units).
    """
    with db.reader() as repo:
        summaries = repo.list_layers(at=parse_time(at, field="at") if at else None)
    if jurisdiction is None or jurisdiction.unrestricted:
        return summaries
    restricted = []
    for summary in summaries:
        codes = jurisdiction.codes(summary.name) or frozenset()
        counts = level_counts(db, layer=summary.name, codes=codes, at=at) if codes else {}
        levels = tuple(
            dataclasses.replace(lv, unit_count=counts.get(lv.name, 0)) for lv in summary.levels
        )
        restricted.append(dataclasses.replace(summary, levels=levels))
    return restricted


def level_counts(
    db: Database, *, layer: str, codes: Collection[str], at: str | datetime | None = None
) -> dict[str, int]:
    """Count, per level, the units of ``codes`` valid at ``at`` (a jurisdiction's share)."""
    when = parse_time(at, field="at")
    with db.reader() as repo:
        spec = repo.layer_spec(name=layer)
        return {
            level.name: repo.count_units(layer=layer, level=level.name, at=when, codes=list(codes))
            for level in spec.levels
        }


def import_history(
    db: Database,
    *,
    layer: str,
    jurisdiction: Jurisdiction | None = None,
    limit: int = 100,
    offset: int = 0,
) -> list[dict[str, Any]]:
    """Return a layer's boundary imports, newest first (each level's batch of versions).

    With ``jurisdiction`` only imports that wrote one of its visible units
    are listed, with those units alone and no layer-wide counts.
    """
    visible = None if jurisdiction is None else jurisdiction.codes(layer)
    with db.reader() as repo:
        repo.layer_spec(name=layer)
        rows = repo.imports(layer=layer, limit=limit, offset=offset)
    history = []
    for row in rows:
        codes = row["codes"] if visible is None else [c for c in row["codes"] if c in visible]
        if visible is not None and not codes:
            continue
        history.append(
            {
                "id": row["id"],
                "level": row["level"],
                "source": Path(row["source"]).name,
                "valid_from": row["valid_from"],
                "created_at": row["created_at"],
                "counts": _counts(row["summary"]) if visible is None else {"units": len(codes)},
                "codes": codes,
            }
        )
    return history


def _counts(summary: dict[str, Any]) -> dict[str, Any]:
    # An import's summary also holds where its data come from: not a count.
    return {key: value for key, value in summary.items() if key != "provenance"}


def import_moves(
    db: Database, *, layer: str, import_id: int, jurisdiction: Jurisdiction | None = None
) -> pd.DataFrame:
    """Return the buildings an import moved (:data:`MOVE_COLUMNS`), all of them.

    With ``jurisdiction`` only moves from or to units it sees entirely are
    returned (places are personal data's anchor), and the unit on the other
    side is blank when it lies outside them.

    Raises
    ------
    NotFoundError
        No such import in the layer (or none of it visible).
    """
    missing = NotFoundError(f"no import {import_id} in layer {layer!r}", field="import_id")
    visible = None if jurisdiction is None else jurisdiction.wholly_codes(layer)
    with db.reader() as repo:
        written = {row["id"]: row["codes"] for row in repo.imports(layer=layer, limit=1_000_000)}
        if import_id not in written:
            raise missing
        moves = repo.places.moves(import_id=import_id)
    if visible is None:
        return moves
    codes = ["from_unit", "to_unit", "from_code", "to_code"]
    inside = moves["from_unit"].isin(visible) | moves["to_unit"].isin(visible)
    if not inside.any() and not set(written[import_id]) & set(visible):
        raise missing  # an import of other units answers like one that does not exist
    moves = moves[inside].reset_index(drop=True)
    for column in codes:
        moves[column] = moves[column].where(moves[column].isin(visible), None)
    return moves


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
    jurisdiction: Jurisdiction | None = None,
    search: str | None = None,
) -> tuple[gpd.GeoDataFrame, int]:
    """Return one page of a layer's units and the total number matching.

    With ``jurisdiction`` only the units it may see, those of other layers
    with their boundaries clipped to its area. With ``search`` only units
    whose code starts with it or whose name contains it (case-insensitive).
    """
    search = search.strip() if search else None
    codes = None if jurisdiction is None else jurisdiction.codes(layer)
    when = parse_time(at, field="at")
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
            search=search,
        )
        total = repo.count_units(
            layer=layer, level=level, parent=parent, bbox=bbox, at=when, codes=only, search=search
        )
    if jurisdiction is not None and len(frame):
        frame = frame.set_geometry(
            jurisdiction.clip(layer, frame["code"], frame.geometry.values), crs=frame.crs
        )
    return frame, total


def unit_detail(
    db: Database,
    *,
    code: str,
    layer: str | None = None,
    at: str | datetime | None = None,
    jurisdiction: Jurisdiction | None = None,
) -> dict[str, Any]:
    """Return a unit with its ancestors (top first) and its children.

    With ``jurisdiction``, a unit it may not see answers exactly like one
    that does not exist (checked before the database is asked: no timing
    oracle), ancestors and children are cut to the visible ones and a unit
    of another layer has its boundary clipped to the caller's area.

    Raises
    ------
    NotFoundError
        When no unit has the code at that time (or codes clash across layers
        and no layer is given).
    """
    missing = NotFoundError(
        f"no unit {code!r}" + (f" in layer {layer!r}" if layer else ""), field="code"
    )
    if jurisdiction is None or jurisdiction.unrestricted:
        return _detail(db, code=code, layer=layer, at=at)
    if not jurisdiction.sees_code(code, layer=layer):
        raise missing
    try:
        detail = _detail(db, code=code, layer=layer, at=at)
    except NotFoundError:
        # A clash between layers would tell that the code exists elsewhere.
        raise missing from None
    unit = detail["unit"]
    name = unit["layer"]
    if not jurisdiction.sees(name, code):
        raise missing
    unit = unit.copy()
    unit["geometry"] = jurisdiction.clip(name, [code], [unit.geometry])[0]
    children = detail["children"]
    children = children[[jurisdiction.sees(name, c) for c in children["code"]]]
    return {
        "unit": unit,
        "ancestors": [row for row in detail["ancestors"] if jurisdiction.sees(name, row["code"])],
        "children": children,
    }


def _detail(
    db: Database, *, code: str, layer: str | None = None, at: str | datetime | None = None
) -> dict[str, Any]:
    when = parse_time(at, field="at")
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


def _builtin_levels() -> list[str]:
    return list(dict.fromkeys(lv.name for spec in BUILTIN_LAYERS.values() for lv in spec.levels))


def _level(spec: LayerSpec, level: str) -> LevelSpec:
    try:
        return spec.level(level)
    except KeyError:
        names = ", ".join(lv.name for lv in spec.levels)
        raise NotFoundError(
            f"layer {spec.name!r} has no level {level!r}; its levels are {names}", field="level"
        ) from None
