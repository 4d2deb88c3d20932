"""The change set as written: every unit version an applied edit stored, before and after.

The import pipeline an edit goes through nodes the level once more when it
writes (:func:`gis.coverage.node_level`): a neighbour the edit did not name
can gain a vertex where a new edge meets it, and so get a new version too. A
change set must record what was stored — not only what the operation
computed — or reverting it would leave those vertices behind and refuse
(the units no longer being the versions it made).
"""

from __future__ import annotations

from typing import Any

import geopandas as gpd
import pandas as pd

from gis.edits._model import UNIT_COLUMNS, ChangeSet, LayerState, LevelChange
from gis.repository import Repository

__all__ = ["as_written"]


def as_written(repo: Repository, changeset: ChangeSet, state: LayerState, result: Any) -> ChangeSet:
    """Return ``changeset`` with every unit the import wrote, as stored (inside its transaction).

    Parameters
    ----------
    repo : Repository
        The write transaction that has just stored the new versions.
    changeset : ChangeSet
        As computed by the operation.
    state : LayerState
        The layer the change set was applied to (its units before).
    result : ImportResult
        The import that wrote it (``summary`` and ``cascaded``: the codes
        created, updated and retired at each level).
    """
    when = result.summary.valid_from
    written: dict[str, tuple[set[str], set[str]]] = {}
    for summary in [result.summary, *result.cascaded]:
        made, ended = written.setdefault(summary.level, (set(), set()))
        made.update(map(str, [*summary.created, *summary.updated]))
        ended.update(map(str, summary.retired))
    order = [change.level for change in changeset.levels]
    order += [lv.name for lv in state.spec.levels if lv.name in written and lv.name not in order]
    levels = []
    for level in order:
        change = changeset.level_change(level)
        made, ended = written.get(level, (set(), set()))
        touched = set(made) | ended
        if change is not None:
            touched |= set(change.before["code"].astype(str))
            touched |= set(change.after["code"].astype(str))
        frame = state.frame(level)
        before = frame[frame["code"].astype(str).isin(touched)]
        stored = repo.units_frame(
            layer=changeset.layer, level=level, at=when, codes=sorted(touched)
        )
        after = stored[stored["code"].astype(str).isin(touched - ended)]
        before_codes = set(before["code"].astype(str))
        after_codes = set(after["code"].astype(str))
        levels.append(
            LevelChange(
                level=level,
                before=_units(before),
                after=_units(after),
                created=tuple(sorted(after_codes - before_codes)),
                changed=tuple(sorted(after_codes & before_codes)),
                retired=tuple(sorted(before_codes - after_codes)),
            )
        )
    etags = dict(changeset.etags)
    for change in levels:
        for code in change.before["code"].astype(str):
            if code not in etags and code in state.etags:
                etags[code] = state.etags[code]
    return ChangeSet(
        op=changeset.op,
        params=changeset.params,
        layer=changeset.layer,
        level=changeset.level,
        levels=tuple(levels),
        cut_buildings=changeset.cut_buildings,
        warnings=changeset.warnings,
        etags=etags,
    )


def _units(frame: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    return gpd.GeoDataFrame(
        pd.DataFrame({c: frame[c].to_numpy(dtype=object) for c in UNIT_COLUMNS}),
        geometry=list(frame.geometry.values),
        crs=frame.crs,
    )
