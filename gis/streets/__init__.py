"""Streets (街路巷): street centre lines with a name and a class, a layer of their own.

Users import their own network (GeoPackage, GeoJSON, any vector format of
:mod:`gis.files`, or OpenStreetMap PBF through pyrosm); the sample city
ships its synthetic one (``boundaries/licheng/streets.geojson``). Edits
cut along them (:func:`gis.edits.auto_split`), snapping and patrol plans
follow them.
"""

from gis.streets._service import (
    STREET_EXPORT_FORMATS,
    StreetsImport,
    export_streets,
    import_streets,
    read_streets,
    streets_frame,
    streets_geojson,
)

__all__ = [
    "STREET_EXPORT_FORMATS",
    "StreetsImport",
    "export_streets",
    "import_streets",
    "read_streets",
    "streets_frame",
    "streets_geojson",
]
