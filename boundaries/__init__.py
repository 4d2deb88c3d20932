"""Bundled sample city: 鲤城区 Licheng District, Quanzhou (real outline, synthetic grids).

The data live in ``licheng/`` (GeoJSON in EPSG:4490 plus ``manifest.json``) and
are described in ``README.md`` beside this file. They are rebuilt by
``build_sample_city.py``; nothing is computed or read at import time.

Examples
--------
>>> from boundaries import SAMPLE_CITY, sample_city_manifest
>>> sample_city_manifest()["crs"]
'EPSG:4490'
>>> (SAMPLE_CITY / "governance" / "county.geojson").is_file()
True
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from gis.address import AdminContext

__all__ = [
    "SAMPLE_CITY",
    "SAMPLE_STREETS",
    "sample_city_context",
    "sample_city_listing",
    "sample_city_manifest",
]

SAMPLE_CITY = Path(__file__).parent / "licheng"
#: The synthetic street network (EPSG:4490 lines: ``key``, ``name``, ``class``),
#: written by ``build_sample_streets.py``.
SAMPLE_STREETS = SAMPLE_CITY / "streets.geojson"


def sample_city_manifest() -> dict[str, Any]:
    """Return the sample city's ``manifest.json`` as a dict.

    Returns
    -------
    dict
        ``{"name", "synthetic", "source", "crs", "valid_from", "layers":
        [{"name", "title", "levels": [{"name", "title", "file"}]}]}``; ``file``
        paths are relative to :data:`SAMPLE_CITY`; ``synthetic`` is true (the
        data are generated, ``source`` says how).
    """
    return json.loads((SAMPLE_CITY / "manifest.json").read_text(encoding="utf-8"))


def sample_city_listing(relative: str) -> list[dict[str, Any]]:
    """Return the records of one of the sample city's JSON listings.

    The listings (``police/misalignments.json``, ``places/cut_buildings.json``,
    ``places/outside_buildings.json``) are ``{"synthetic": true, "source":
    "...", "items": [...]}``, like every file of the sample city saying what
    it is; this returns ``items``.

    Parameters
    ----------
    relative : str
        Path under :data:`SAMPLE_CITY`.

    Examples
    --------
    >>> [m["kind"] for m in sample_city_listing("police/misalignments.json")][:1]
    ['grid_split_across_beats']
    """
    data = json.loads((SAMPLE_CITY / relative).read_text(encoding="utf-8"))
    items: list[dict[str, Any]] = data["items"]
    return items


def sample_city_context(*, roads: Iterable[str] = ()) -> AdminContext:
    """Return the context of the bundled sample city, 福建省泉州市鲤城区.

    Streets and communities come from ``boundaries/licheng/governance``
    (real names, 8 streets and 81 communities).

    Parameters
    ----------
    roads : iterable of str
        Known road names to add.

    Returns
    -------
    AdminContext

    Examples
    --------
    >>> from boundaries import sample_city_context
    >>> context = sample_city_context()
    >>> sorted(u.name for u in context.units if u.level == "street")[:3]
    ['临江街道', '常泰街道', '开元街道']
    """
    rows: list[dict[str, Any]] = []
    for layer in ("county", "street", "community"):
        path = Path(SAMPLE_CITY) / "governance" / f"{layer}.geojson"
        features = json.loads(path.read_text(encoding="utf-8"))["features"]
        rows.extend(feature["properties"] for feature in features)
    return AdminContext.from_divisions(rows, province="福建省", city="泉州市", roads=roads)
