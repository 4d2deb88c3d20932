"""The "same grid" (同格) check between two layers: civil grids in police beats.

Civil grids, police beats and township work areas are run as one grid
system: each grid lies in exactly one beat, and each beat is a union of whole
grids inside one station and one community (or of whole communities). These
functions compare two layers given as GeoDataFrames — layer A (grids, with
parents such as communities) and layer B (beats, with parents such as
stations) — with no database:

- :func:`shares` - for every A unit, the B units overlapping it, with area
  and household shares;
- :func:`check_alignment` - the violations, located and measured
  (:data:`KINDS`), slivers under the tolerances counted, not reported,
  boundary noise (thin or light pieces, :class:`NoiseTolerance`) listed per
  pair, not violations, and a whole layer drawn on a GCJ-02/BD-09 basemap
  reported as a datum offset;
- :func:`propose_alignment` - the least change of layer B that restores
  nesting (whole grids move, beats and stations are rebuilt as unions of
  whole grids), re-checked and validated;
- :mod:`gis.alignment.service` - the same on stored layers: :func:`align`,
  :func:`propose`, :func:`apply_alignment` (a folium map of a report is
  :func:`gis.maps.alignment_map`).

Topology is computed in CGCS2000 (EPSG:4490), where boundaries are defined
and shared vertices stay shared; areas in m² in the local CGCS2000
Gauss-Kruger zone; locations are CGCS2000 lon/lat.

Examples
--------
>>> import geopandas as gpd
>>> from shapely import box
>>> grids = gpd.GeoDataFrame({"code": ["g1", "g2"]}, crs="EPSG:4490",
...     geometry=[box(118.600, 24.900, 118.601, 24.901), box(118.601, 24.900, 118.602, 24.901)])
>>> beats = gpd.GeoDataFrame({"code": ["b1"]}, crs="EPSG:4490",
...     geometry=[box(118.600, 24.900, 118.602, 24.901)])
>>> check_alignment(grids, beats).aligned
True
"""

from gis.alignment._check import KINDS, AlignmentReport, Violation, check_alignment
from gis.alignment._noise import DEFAULT_NOISE, NO_NOISE, Noise, NoiseTolerance
from gis.alignment._propose import Move, Proposal, propose_alignment
from gis.alignment._shares import shares
from gis.alignment.service import (
    AlignmentState,
    LayerLevel,
    align,
    alignment_report,
    apply_alignment,
    apply_reviewed,
    noise_tolerance,
    parse_layer_level,
    propose,
)

__all__ = [
    "DEFAULT_NOISE",
    "KINDS",
    "NO_NOISE",
    "AlignmentReport",
    "AlignmentState",
    "LayerLevel",
    "Move",
    "Noise",
    "NoiseTolerance",
    "Proposal",
    "Violation",
    "align",
    "alignment_report",
    "apply_alignment",
    "apply_reviewed",
    "check_alignment",
    "noise_tolerance",
    "parse_layer_level",
    "propose",
    "propose_alignment",
    "shares",
]
