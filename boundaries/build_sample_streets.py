r"""Export the sample city's synthetic street network as a layer of its own.

Everything written here is synthetic: the roads and lanes that
``build_sample_city.py`` draws to cut the district into blocks (regenerated
with the city's seed), joined into strokes and named exactly as
``build_sample_places.py`` names them for the addresses of the buildings.

How to run
----------
With the project's venv (numpy, shapely, pyproj, geopandas)::

    # -> licheng/streets.geojson
    /work/main/.venv/bin/python boundaries/build_sample_streets.py

    # rebuild into a temporary file and compare byte for byte
    /work/main/.venv/bin/python boundaries/build_sample_streets.py --check

Output ``licheng/streets.geojson``: EPSG:4490 LineStrings, one feature a
line, with ``key`` (``S`` + 5 digits, longest first), ``name`` (街路巷, the
name used in the addresses) and ``class`` (``arterial`` 主干路 or ``lane``
支路/巷). Coordinates are rounded to 7 decimals (~1 cm); the vertices are the
street network's own, so every line lies on the boundaries of the blocks
the micro-grids are made of.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import shapely

try:
    from boundaries import build_sample_city as city
    from boundaries import build_sample_places as places
except ModuleNotFoundError:  # run as a file without the project installed
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from boundaries import build_sample_city as city
    from boundaries import build_sample_places as places

OUTPUT = city.CITY / "streets.geojson"


def build(out: Path) -> None:
    """Regenerate, name and write the street lines to ``out``; print a summary."""
    # The places build names the roads with the first draws of its own stream:
    # the same draws here give the same names.
    rng = np.random.default_rng(places.PLACES_SEED)
    inputs = places.load()
    lines = places.strokes(inputs.faces, inputs.outline)
    roads = places.name_roads(lines, inputs.arterials, inputs.proj.point(*places.OLD_CITY), rng)
    roads = sorted(roads, key=lambda r: (-round(r.geom.length, 1), r.name, r.rank))
    features = []
    for n, road in enumerate(roads, start=1):
        geom = inputs.proj.to_storage(road.geom)
        props = {
            "key": f"S{n:05d}",
            "name": road.name,
            "class": "arterial" if road.arterial else "lane",
        }
        features.append((props, geom))
    _write(out, features)
    arterials = sum(r.arterial for r in roads)
    km = sum(r.geom.length for r in roads) / 1000
    print(f"{len(roads)} streets ({arterials} arterial pieces), {km:.1f} km -> {out}")


def _write(path: Path, features: list[tuple[dict[str, Any], Any]]) -> None:
    head = {
        "type": "FeatureCollection",
        "name": "streets",
        "crs": {
            "type": "name",
            "properties": {"name": f"urn:ogc:def:crs:EPSG::{city.STORAGE_EPSG}"},
        },
    }
    rows = [
        json.dumps(
            {
                "type": "Feature",
                "properties": props,
                "geometry": {
                    "type": "LineString",
                    "coordinates": shapely.get_coordinates(geom).tolist(),
                },
            },
            ensure_ascii=False,
            separators=(",", ":"),
        )
        for props, geom in features
    ]
    text = json.dumps(head, ensure_ascii=False, separators=(",", ":"))[:-1]
    text += ',"features":[\n' + ",\n".join(rows) + "\n]}\n"
    path.write_text(text, encoding="utf-8")


def main(argv: Sequence[str] | None = None) -> None:
    """Build ``licheng/streets.geojson`` (or check that it is reproduced)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="rebuild and compare byte for byte")
    args = parser.parse_args(argv)
    if not args.check:
        build(OUTPUT)
        return
    with tempfile.TemporaryDirectory() as folder:
        target = Path(folder) / "streets.geojson"
        build(target)
        if target.read_bytes() != OUTPUT.read_bytes():
            raise SystemExit("streets.geojson differs from a rebuild")
    print("streets.geojson is reproduced byte for byte")


if __name__ == "__main__":
    main()
