"""Who may call which endpoint: the one permission table of the API.

Every route must appear here (``check_routes`` refuses to build an
application otherwise), so that a new endpoint cannot be born unprotected.
Where a permission applies - which units - is the jurisdiction's business,
checked inside the route.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from gis.access import Permission, Principal
from gis.errors import ForbiddenError

__all__ = ["ENDPOINTS", "KEY_PARAMETER", "PUBLIC", "Rule", "check_routes", "permission_for"]

P = Permission


@dataclass(frozen=True)
class Rule:
    """A permission the caller's role must hold; None: any signed-in caller."""

    permission: Permission | None

    def check(self, principal: Principal) -> None:
        """Raise ForbiddenError unless ``principal`` may call the endpoint."""
        if self.permission is not None:
            principal.require(self.permission)


SIGNED_IN = Rule(None)

#: Endpoints anyone may call, signed in or not.
PUBLIC: frozenset[tuple[str, str]] = frozenset(
    {
        ("GET", "/health"),
        ("GET", "/health/ready"),
        ("POST", "/api/v1/auth/token"),
        # Open311: discovery and the categories are not sensitive.
        ("GET", "/open311/v2/discovery.{format}"),
        ("GET", "/open311/v2/services.{format}"),
        ("GET", "/open311/v2/services/{service_code}.{format}"),
    }
)

#: Endpoints whose key may come as the ``api_key`` query or form parameter
#: (Open311 GeoReport v2): the route authenticates and checks the rule of
#: :data:`ENDPOINTS` itself (``api.routers.open311``), not the guard.
KEY_PARAMETER: frozenset[tuple[str, str]] = frozenset(
    {
        ("POST", "/open311/v2/requests.{format}"),
        ("GET", "/open311/v2/requests.{format}"),
        ("GET", "/open311/v2/requests/{service_request_id}.{format}"),
        ("GET", "/open311/v2/tokens/{token}.{format}"),
    }
)

#: (method, path template) -> rule, for every other endpoint.
ENDPOINTS: dict[tuple[str, str], Rule] = {
    ("GET", "/api/v1/auth/me"): SIGNED_IN,
    ("POST", "/api/v1/auth/password"): SIGNED_IN,
    ("GET", "/api/v1/layers"): Rule(P.UNITS_READ),
    ("GET", "/api/v1/layers/{layer}/units"): Rule(P.UNITS_READ),
    ("GET", "/api/v1/layers/{layer}/export"): Rule(P.UNITS_EXPORT),
    ("GET", "/api/v1/layers/{layer}/imports"): Rule(P.UNITS_READ),
    ("GET", "/api/v1/layers/{layer}/imports/{import_id}/moves"): Rule(P.PLACES_READ),
    ("POST", "/api/v1/layers/{layer}/edits"): Rule(P.BOUNDARIES_EDIT),
    ("GET", "/api/v1/layers/{layer}/changesets"): Rule(P.UNITS_READ),
    ("GET", "/api/v1/layers/{layer}/changesets/{changeset_id}"): Rule(P.UNITS_READ),
    ("POST", "/api/v1/layers/{layer}/changesets/{changeset_id}/revert"): Rule(P.BOUNDARIES_EDIT),
    ("POST", "/api/v1/layers/{layer}/changesets/{changeset_id}/apply"): Rule(P.BOUNDARIES_EDIT),
    ("DELETE", "/api/v1/layers/{layer}/changesets/{changeset_id}"): Rule(P.BOUNDARIES_EDIT),
    ("GET", "/api/v1/units/{code}"): Rule(P.UNITS_READ),
    ("GET", "/api/v1/units/{code}/overlaps"): Rule(P.UNITS_READ),
    ("GET", "/api/v1/units/{code}/buildings"): Rule(P.PLACES_READ),
    ("GET", "/api/v1/units/{code}/households"): Rule(P.HOUSEHOLDS_READ),
    ("GET", "/api/v1/units/{code}/households/export"): Rule(P.HOUSEHOLDS_EXPORT),
    ("GET", "/api/v1/buildings/{key}"): Rule(P.PLACES_READ),
    ("GET", "/api/v1/staff"): Rule(P.STAFF_READ),
    ("POST", "/api/v1/staff"): Rule(P.STAFF_WRITE),
    ("DELETE", "/api/v1/staff/{staff_id}"): Rule(P.STAFF_WRITE),
    ("POST", "/api/v1/geocode"): Rule(P.GEOCODE),
    ("POST", "/api/v1/geocode/batch"): Rule(P.GEOCODE_BATCH),
    ("GET", "/api/v1/alignment"): Rule(P.ALIGNMENT_READ),
    ("POST", "/api/v1/alignment/apply"): Rule(P.ALIGNMENT_APPLY),
    ("GET", "/api/v1/tiles/{layer}/{level}/{z}/{x}/{y}.mvt"): Rule(P.UNITS_READ),
    ("GET", "/api/v1/tiles/places/{z}/{x}/{y}.mvt"): Rule(P.UNITS_READ),
    ("GET", "/api/v1/map/config"): SIGNED_IN,
    ("GET", "/api/v1/workload"): Rule(P.WORKLOAD_READ),
    ("POST", "/api/v1/patrol/plan"): Rule(P.PATROL),
    ("POST", "/api/v1/patrol/check"): Rule(P.PATROL),
    ("POST", "/api/v1/patrol/score"): Rule(P.PATROL),
    # Lists household keys: personal data (planners plan streets, not visits).
    ("POST", "/api/v1/patrol/schedule"): Rule(P.HOUSEHOLDS_READ),
    ("POST", "/api/v1/patrol/routes"): Rule(P.PATROL),
    ("GET", "/api/v1/patrol/routes"): Rule(P.PATROL),
    ("GET", "/api/v1/patrol/routes/{route_id}"): Rule(P.PATROL),
    ("DELETE", "/api/v1/patrol/routes/{route_id}"): Rule(P.PATROL),
    ("GET", "/api/v1/patrol/routes/{route_id}/export"): Rule(P.PATROL),
    ("GET", "/api/v1/incidents/categories"): SIGNED_IN,
    ("POST", "/api/v1/incidents"): Rule(P.INCIDENTS_REPORT),
    ("GET", "/api/v1/incidents"): Rule(P.INCIDENTS_READ),
    ("GET", "/api/v1/incidents/overdue"): Rule(P.INCIDENTS_READ),
    ("POST", "/api/v1/incidents/escalate-overdue"): Rule(P.INCIDENTS_DISPATCH),
    ("GET", "/api/v1/incidents/relocation-report"): Rule(P.INCIDENTS_READ),
    ("POST", "/api/v1/incidents/relocate"): Rule(P.INCIDENTS_DISPATCH),
    ("GET", "/api/v1/incidents/{incident_id}"): Rule(P.INCIDENTS_READ),
    ("GET", "/api/v1/incidents/{incident_id}/history"): Rule(P.INCIDENTS_READ),
    ("GET", "/api/v1/incidents/{incident_id}/duplicates"): Rule(P.INCIDENTS_READ),
    # Each action's own permission (handle or dispatch) is checked by the service.
    ("POST", "/api/v1/incidents/{incident_id}/transitions"): Rule(P.INCIDENTS_HANDLE),
    ("GET", "/api/v1/admin/users"): Rule(P.ACCOUNTS_ADMIN),
    ("POST", "/api/v1/admin/users"): Rule(P.ACCOUNTS_ADMIN),
    ("GET", "/api/v1/admin/users/{username}"): Rule(P.ACCOUNTS_ADMIN),
    ("PATCH", "/api/v1/admin/users/{username}"): Rule(P.ACCOUNTS_ADMIN),
    ("POST", "/api/v1/admin/users/{username}/password"): Rule(P.ACCOUNTS_ADMIN),
    ("GET", "/api/v1/admin/api-keys"): Rule(P.ACCOUNTS_ADMIN),
    ("POST", "/api/v1/admin/api-keys"): Rule(P.ACCOUNTS_ADMIN),
    ("DELETE", "/api/v1/admin/api-keys/{key_id}"): Rule(P.ACCOUNTS_ADMIN),
    ("GET", "/api/v1/admin/audit"): Rule(P.AUDIT_READ),
    ("POST", "/open311/v2/requests.{format}"): Rule(P.INCIDENTS_REPORT),
    ("GET", "/open311/v2/requests.{format}"): Rule(P.INCIDENTS_READ),
    ("GET", "/open311/v2/requests/{service_request_id}.{format}"): Rule(P.INCIDENTS_READ),
    ("GET", "/open311/v2/tokens/{token}.{format}"): Rule(P.INCIDENTS_READ),
    ("GET", "/api/v1/incidents/evaluation"): Rule(P.INCIDENTS_READ),
}


def permission_for(method: str, path: str) -> Rule:
    """Return the rule of an endpoint; an unlisted one is refused (fail closed)."""
    rule = ENDPOINTS.get((method, path))
    if rule is None:
        raise ForbiddenError(f"no permission rule covers {method} {path}")
    return rule


def check_routes(routes: Iterable[tuple[str, str]]) -> None:
    """Raise RuntimeError unless the table lists exactly the application's routes."""
    served = set(routes)
    listed = set(ENDPOINTS) | PUBLIC
    if served != listed:
        missing = sorted(served - listed)
        stale = sorted(listed - served)
        raise RuntimeError(f"permission table out of date: unlisted {missing}, stale {stale}")
