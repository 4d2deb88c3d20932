"""Patrol routes (日巡查): street networks, postman tours, plans, exports, checks and scores.

- :func:`read_network` / :func:`network_from_frame` build a noded street
  network (metres) from a line file or an OSM PBF, walking or driving.
- :func:`plan_patrol` covers every street of a unit with closed routes: exact
  Chinese postman when undirected or directed, a documented heuristic with a
  lower bound when mixed or rural (:mod:`gis.patrol._postman`).
- :func:`plan_week` spreads a unit's weekly visits (周走访) over the working
  days, each day a route.
- :func:`check_route` checks a route file against a unit; :func:`score_track`
  scores a recorded GPS track against a plan.
- :func:`write_plan` exports GPX 1.1, KML, GeoJSON or CSV, WGS84 or GCJ-02/BD-09.
"""

from gis.patrol._check import (
    RouteCheck,
    Track,
    TrackScore,
    check_route,
    read_route,
    read_track,
    score_track,
)
from gis.patrol._export import DATUMS, EXPORT_FORMATS, plan_to_geojson, write_plan
from gis.patrol._network import Mode, StreetNetwork, network_from_frame, read_network
from gis.patrol._plan import Checkpoint, PatrolPlan, Route, plan_patrol, route_line
from gis.patrol._postman import Tour, postman_tour
from gis.patrol._schedule import ScheduleDay, WeekSchedule, plan_week

__all__ = [
    "DATUMS",
    "EXPORT_FORMATS",
    "Checkpoint",
    "Mode",
    "PatrolPlan",
    "Route",
    "RouteCheck",
    "ScheduleDay",
    "StreetNetwork",
    "Tour",
    "Track",
    "TrackScore",
    "WeekSchedule",
    "check_route",
    "network_from_frame",
    "plan_patrol",
    "plan_to_geojson",
    "plan_week",
    "postman_tour",
    "read_network",
    "read_route",
    "read_track",
    "route_line",
    "score_track",
    "write_plan",
]
