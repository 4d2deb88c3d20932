"""Incidents on the two-grid city: the three responsible people of each grid and a desk.

Adds to :func:`tests.fixtures_access.load_two_grids` a community police
officer per beat and a cadre for the community, so an incident in grid A
has all three (三员): 李甲 (grid worker of A), 民警甲 (beat X) and 干部丙
(the community). A :class:`Desk` calls the incident service with caches
that see every change at once (no refresh interval).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from gis.access import SYSTEM, Jurisdiction, JurisdictionResolver, Principal, Role
from gis.incidents import IncidentDraft, IncidentLocation, IntakeResult, service
from gis.locate import LocateService
from gis.repository import Database
from gis.revisions import RevisionClock
from gis.staff import add_staff
from tests.fixtures_access import BEAT_X, BEAT_Y, COMMUNITY, GRID_A, GRID_B

#: Points inside micro-grid A1 / B1 (and beats X / Y); after
#: :func:`tests.fixtures_access.move_edge` IN_A lies in grid B, STAYS_A still in A.
IN_A = (118.505, 24.94)
STAYS_A = (118.501, 24.94)
IN_B = (118.53, 24.94)
#: Outside every unit of the two-grid city.
NOWHERE = (110.0, 30.0)
T0 = datetime(2026, 12, 1, 2, 0, tzinfo=UTC)  # 10:00 China time


def add_responsible(db: Database) -> None:
    """Add a police officer per beat and a cadre for the community (grid workers exist)."""
    add_staff(db, layer="police", unit_code=BEAT_X, role="community_police", name="民警甲")
    add_staff(db, layer="police", unit_code=BEAT_Y, role="community_police", name="民警乙")
    add_staff(db, layer="governance", unit_code=COMMUNITY, role="cadre", name="干部丙")


def draft(
    point: tuple[float, float] | None = IN_A,
    *,
    category: str = "0101",
    datum: str = "cgcs2000",
    accuracy_m: float | None = None,
    address: str | None = None,
    event_time: datetime = T0,
    description: str = "占道经营 stall on the pavement",
    contact: str | None = "张女士 13800000000",
) -> IncidentDraft:
    """Return a draft of the 12345 hotline."""
    location = None
    if point is not None:
        location = IncidentLocation(
            x=point[0],
            y=point[1],
            datum=datum,  # type: ignore[arg-type]
            accuracy_m=accuracy_m,
        )
    return IncidentDraft(
        channel="12345",
        category=category,
        description=description,
        location=location,
        address=address,
        event_time=event_time,
        reporter_contact=contact,
    )


def person(role: str, units: tuple[str, ...], name: str | None = None) -> Principal:
    """Return a signed-in user of ``role`` bound to ``units``."""
    return Principal(kind="user", name=name or role, role=Role(role), units=units)


WORKER_A = person("grid_worker", (f"governance:{GRID_A}",), "li")
WORKER_B = person("grid_worker", (f"governance:{GRID_B}",), "wang")
POLICE_X = person("police", (f"police:{BEAT_X}",), "officer")
CADRE = person("cadre", (f"governance:{COMMUNITY}",), "cadre")
DISPATCHER = person("dispatcher", ("governance:350502",), "desk")


@dataclass
class Desk:
    """The incident service on one database, with caches that never lag behind."""

    db: Database
    clock: RevisionClock = field(init=False)
    locator: LocateService = field(init=False)
    resolver: JurisdictionResolver = field(init=False)

    def __post_init__(self) -> None:
        self.clock = RevisionClock(self.db, refresh_seconds=0)
        self.locator = LocateService(self.db, clock=self.clock)
        self.resolver = JurisdictionResolver(self.db, clock=self.clock)

    def seen(self, principal: Principal) -> Jurisdiction:
        """Return the jurisdiction of ``principal`` now."""
        return self.resolver.jurisdiction(principal)

    def intake(
        self, principal: Principal = SYSTEM, new: IncidentDraft | None = None, **kw: Any
    ) -> IntakeResult:
        """Take in ``new`` (default: :func:`draft`) at ``now`` = T0 unless given."""
        kw.setdefault("now", T0)
        return service.intake(
            self.db,
            principal,
            new or draft(),
            locator=self.locator,
            **kw,
        )

    def call(self, name: str, principal: Principal, *args: Any, **kw: Any) -> Any:
        """Call a service function as ``principal`` (its jurisdiction and the desk's locator)."""
        function = getattr(service, name)
        if name in ("transition", "relocation_report", "relocate"):
            kw.setdefault("locator", self.locator)
        return function(self.db, principal, *args, jurisdiction=self.seen(principal), **kw)
