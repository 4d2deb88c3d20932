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
from pathlib import Path
from typing import Any

__all__ = ["SAMPLE_CITY", "sample_city_manifest"]

SAMPLE_CITY = Path(__file__).parent / "licheng"


def sample_city_manifest() -> dict[str, Any]:
    """Return the sample city's ``manifest.json`` as a dict.

    Returns
    -------
    dict
        ``{"name", "crs", "valid_from", "layers": [{"name", "title", "levels":
        [{"name", "title", "file"}]}]}``; ``file`` paths are relative to
        :data:`SAMPLE_CITY`.
    """
    return json.loads((SAMPLE_CITY / "manifest.json").read_text(encoding="utf-8"))
