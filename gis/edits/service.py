"""The edit service: a layer's state read from the database, previews, applying, history."""

from __future__ import annotations

from datetime import datetime

from gis.edits._model import UNIT_COLUMNS, LayerState
from gis.errors import NotFoundError
from gis.repository import Database, Repository

__all__ = ["load_state", "read_state"]


def load_state(db: Database, *, layer: str, at: datetime | None = None) -> LayerState:
    """Read the current units of every level of ``layer``, the codes used and the places.

    Parameters
    ----------
    db : Database
        Where the layer is stored.
    layer : str
        The layer's name.
    at : datetime, optional
        The instant whose units are current (default: now).
    """
    with db.reader() as repo:
        return read_state(repo, layer=layer, at=at)


def read_state(repo: Repository, *, layer: str, at: datetime | None = None) -> LayerState:
    """Read a layer's state inside an open repository transaction (see :func:`load_state`)."""
    if layer not in {summary.name for summary in repo.list_layers()}:
        raise NotFoundError(f"no layer {layer!r}", field="layer")
    spec = repo.layer_spec(name=layer)
    levels = {}
    taken = {}
    for level in spec.levels:
        frame = repo.units_frame(layer=layer, level=level.name, at=at)
        levels[level.name] = frame[[*UNIT_COLUMNS, frame.geometry.name]].reset_index(drop=True)
        every = repo.units_frame(layer=layer, level=level.name, all_versions=True)
        taken[level.name] = set(every["code"].astype(str))
    buildings = repo.places.buildings_frame()
    pois = repo.places.pois_table()
    return LayerState(
        spec=spec,
        levels=levels,
        taken=taken,
        buildings=buildings[
            [
                "key",
                "households",
                "persons",
                "entrance_lon",
                "entrance_lat",
                buildings.geometry.name,
            ]
        ],
        pois=pois,
    )
