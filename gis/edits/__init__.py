"""Planners redraw boundaries: topology-safe edit operations returning change sets.

Every operation (:func:`transfer`, :func:`reshape`, :func:`split`,
:func:`merge`, :func:`carve`, :func:`retire`) takes a layer's current state
(:class:`LayerState`) and the planner's intent and returns a
:class:`ChangeSet` — the new geometry of every affected unit at every level,
the codes created, changed and retired — or raises
:class:`gis.errors.EditRefusedError` with located problems. Nothing is written
here: the same change set is previewed and applied. :func:`auto_split`
re-partitions a unit into N balanced, contiguous, compact parts cut along
streets and between buildings.

Results lie on one precision grid (:data:`GRID_SIZE`, 1e-7°) and are noded
with their neighbours, so shared edges stay bit-identical; the levels below
follow the new edges by the cascade rule (``new``/``merge``).
"""

from gis.edits._autosplit import AutoSplitResult, auto_split
from gis.edits._model import (
    GRID_SIZE,
    OPERATIONS,
    SNAP_TOLERANCE_M,
    ChangeSet,
    EditOptions,
    LayerState,
    LevelChange,
    problem_geojson,
    unit_etag,
)
from gis.edits._ops import carve, merge, reshape, retire, split, transfer

__all__ = [
    "GRID_SIZE",
    "OPERATIONS",
    "SNAP_TOLERANCE_M",
    "AutoSplitResult",
    "ChangeSet",
    "EditOptions",
    "LayerState",
    "LevelChange",
    "auto_split",
    "carve",
    "merge",
    "problem_geojson",
    "reshape",
    "retire",
    "split",
    "transfer",
    "unit_etag",
]
