"""Places: buildings (实有房屋), households (实有人口, counts only) and points of interest.

Imports are validated and all-or-nothing; buildings are assigned to the
units of a layer's lowest level by the rules of :mod:`gis.assign`,
households follow their building, and workload is counted per unit.
:class:`UnitPlaces` keeps the assignments of the current boundaries until
boundaries or places change.
"""

from gis.places._cache import BasemapPlaces, UnitPlaces, VisibleUnit
from gis.places._service import (
    PlacesImport,
    assign_places,
    import_buildings,
    import_households,
    import_pois,
    moved_by_change,
    reassignment_diff,
    unit_workload,
)

__all__ = [
    "BasemapPlaces",
    "PlacesImport",
    "UnitPlaces",
    "VisibleUnit",
    "assign_places",
    "import_buildings",
    "import_households",
    "import_pois",
    "moved_by_change",
    "reassignment_diff",
    "unit_workload",
]
